"""The real songs benchmarks measure on, from Debian's Frets on Fire song packages (each song a
folder with song.ogg backing, guitar.ogg stem, notes.mid human chart and song.ini).

- ``songs_dir()``: fretsonfire-songs-muldjord, the 4 benchmark songs every reported figure uses.
  An explicit path, else ``$LOOPJAM_FOF_SONGS``, else what ``scripts/fetch-demo-song.sh`` prints.
- ``dev_songs_dir()``: fretsonfire-songs-sectoid, 4 other human-charted songs. Tune on these, report
  on the benchmark songs, so a figure never comes from constants fitted to the songs it measures.
  An explicit path, else ``$LOOPJAM_DEV_SONGS``, else ``fetch-demo-song.sh sectoid``.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

FETCH_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch-demo-song.sh"


def _songs(arg, env: str, song_set: str) -> Path:
    """``arg``, else ``$env``, else the fetch script's folder for ``song_set``."""
    if arg:
        return Path(arg)
    if os.environ.get(env):
        return Path(os.environ[env])
    out = subprocess.run(["bash", str(FETCH_SCRIPT), song_set], check=True, capture_output=True,
                         text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def songs_dir(arg: str | os.PathLike | None = None) -> Path:
    """The folder holding one sub-folder per benchmark song."""
    return _songs(arg, "LOOPJAM_FOF_SONGS", "muldjord")


def dev_songs_dir(arg: str | os.PathLike | None = None) -> Path:
    """The folder holding one sub-folder per development (tuning) song."""
    return _songs(arg, "LOOPJAM_DEV_SONGS", "sectoid")
