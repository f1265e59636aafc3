"""The real songs benchmarks measure on, from Debian's Frets on Fire song packages (each song a
folder with song.ogg backing, guitar.ogg stem, notes.mid human chart and song.ini).

- ``songs_dir()``: fretsonfire-songs-muldjord, the 4 benchmark songs every reported figure uses.
  An explicit path, else ``$LOOPJAM_FOF_SONGS``, else what ``scripts/fetch-demo-song.sh`` prints.
- ``dev_songs_dir()``: fretsonfire-songs-sectoid, 4 other human-charted songs. Tune on these, report
  on the benchmark songs, so a figure never comes from constants fitted to the songs it measures.
  An explicit path, else ``$LOOPJAM_DEV_SONGS``, else ``fetch-demo-song.sh sectoid``.
- ``song_folders(root)`` / ``song_parts(folder)``: any other folder of Frets on Fire, Clone Hero
  or YARG songs reads the same way, through the importer's own reader
  (:mod:`analyzer.formats.folder`): song folders at any depth, ``notes.mid`` or ``notes.chart``,
  stems as .ogg/.opus/.mp3/.wav/.flac in any case, the charted instrument's stem apart from
  the rest.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def song_folders(root: str | os.PathLike) -> list[Path]:
    """The song folders at or under ``root`` (any depth), sorted; SystemExit if none."""
    from analyzer.formats import FormatError, find_song_folders

    try:
        return find_song_folders(root)
    except FormatError as error:
        raise SystemExit(str(error)) from None


@dataclass(frozen=True)
class SongParts:
    """A song's human chart, and its audio in two parts: the charted instrument's stem and the
    rest, at one rate."""

    #: The human chart (:class:`analyzer.formats.HumanChart`), song.ini ``delay`` applied.
    notes: object
    #: The charted instrument's audio: zeros where the song has no separate file for it (its
    #: part is then inside the rest).
    instrument: np.ndarray
    rest: np.ndarray
    sr: int
    has_stem: bool

    @property
    def stem(self) -> str:
        """The charted instrument's stem name ("guitar")."""
        return self.notes.stem

    @property
    def mix(self) -> np.ndarray:
        """Everything, as a listener hears the song."""
        return self.instrument + self.rest


def song_parts(folder: str | os.PathLike, *, mono: bool = True,
               sr: int | None = None) -> SongParts:
    """Read a song folder's chart and decode its stems (every one the importer knows) at ``sr``
    (None: the first stem's rate).

    ``mono``: shape (n,), else (2, n) (mono stems on both channels). The parts are padded to
    the longest stem. SystemExit when the folder has no audio.
    """
    from analyzer.decode import load
    from analyzer.formats import read_song_folder

    song = read_song_folder(folder)
    if not song.stems:
        raise SystemExit(f"{song.folder}: no audio stems")
    decoded = {}
    for name, path in song.stems.items():
        y, sr = load(path, sr=sr, mono=mono)
        decoded[name] = y if mono or y.shape[0] == 2 else np.repeat(y.mean(axis=0)[None], 2, 0)
    n = max(y.shape[-1] for y in decoded.values())
    shape = (n,) if mono else (2, n)
    instrument, rest = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    stem = song.notes.stem
    for name, y in decoded.items():
        (instrument if name == stem else rest)[..., :y.shape[-1]] += y
    return SongParts(song.notes, instrument, rest, int(sr), stem in decoded)
