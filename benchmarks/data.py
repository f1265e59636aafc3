"""The real songs every benchmark measures on: Debian's fretsonfire-songs-muldjord (4 songs, each
a folder with song.ogg backing, guitar.ogg stem, notes.mid human chart and song.ini).

``songs_dir()`` finds them: an explicit path, else ``$LOOPJAM_FOF_SONGS``, else what
``scripts/fetch-demo-song.sh`` prints (it downloads them once into ``$LOOPJAM_DATA``).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

FETCH_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch-demo-song.sh"


def songs_dir(arg: str | os.PathLike | None = None) -> Path:
    """The folder holding one sub-folder per song."""
    if arg:
        return Path(arg)
    if os.environ.get("LOOPJAM_FOF_SONGS"):
        return Path(os.environ["LOOPJAM_FOF_SONGS"])
    out = subprocess.run(["bash", str(FETCH_SCRIPT)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])
