"""Stem audio kept locally beside the chart store, never uploaded.

Stem cancellation (:mod:`companion.removal.cancel`) needs the audio of the stem a chart's notes
come from (an imported song's ``guitar.ogg``, or stems separated from the user's own file). That
audio is the user's: it stays on this machine, compressed as Ogg Vorbis, one file per stem under
``<root>/<chart_id>/<name>.ogg``. Shared charts carry spectral masks only.

- :class:`StemStore` — ``put(chart_id, name, y, sr)``, ``get(chart_id, name) -> (y, sr)``,
  ``names(chart_id)``, ``remove(chart_id)``.
- :class:`StemStoreError` — unknown stem, bad name or bad audio.

Examples
--------
>>> import numpy as np
>>> store = StemStore(root=getfixture("tmp_path"))  # doctest: +SKIP
>>> store.put("abc123", "guitar", np.zeros((2, 44100), np.float32), 44100)  # doctest: +SKIP
>>> store.names("abc123")  # doctest: +SKIP
('guitar',)
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from chart_store.home import loopjam_home

__all__ = ["StemStore", "StemStoreError"]

# Names become file names: keep them to a portable, unambiguous alphabet.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Vorbis quality 0..1 in libsndfile; 0.6 is about 160-190 kbps stereo: transparent enough that the
# canceller's residual is set by the stream's codec, not by ours.
_VORBIS_QUALITY = 0.6


class StemStoreError(KeyError, ValueError):
    """An unknown stem, an invalid chart id/name, or audio that cannot be stored."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StemStore:
    """Local stem audio, keyed by chart id and stem name.

    Parameters
    ----------
    root : path-like, optional
        Folder holding the stems; default ``loopjam_home() / "stems"``. Nothing is created until
        the first :meth:`put`.
    """

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else loopjam_home() / "stems"

    def _path(self, chart_id: str, name: str | None = None) -> Path:
        for part in (chart_id,) if name is None else (chart_id, name):
            if not isinstance(part, str) or not _NAME.match(part):
                raise StemStoreError(f"invalid chart id or stem name {part!r}")
        folder = self.root / chart_id
        return folder if name is None else folder / f"{name}.ogg"

    def put(self, chart_id: str, name: str, y: np.ndarray, sr: int) -> Path:
        """Store stem ``name`` of ``chart_id``, replacing any previous one.

        Parameters
        ----------
        y : np.ndarray [shape=(n,) or (channels, n)]
            Audio, float, channels first (the :func:`analyzer.decode.load` layout).
        sr : int
            Sample rate in Hz.

        Returns
        -------
        Path of the Ogg Vorbis file written.
        """
        import soundfile as sf

        y = np.asarray(y, dtype=np.float32)
        if y.ndim not in (1, 2) or y.shape[-1] == 0 or (y.ndim == 2 and not 1 <= y.shape[0] <= 8):
            raise StemStoreError(f"stem audio must be (n,) or (channels, n), got {y.shape}")
        if not (isinstance(sr, (int, np.integer)) and 1000 <= sr <= 384000):
            raise StemStoreError(f"invalid sample rate {sr!r}")
        path = self._path(chart_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = np.clip(np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        frames = frames[:, None] if frames.ndim == 1 else frames.T
        # Write beside the target and rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(suffix=".ogg.part", dir=path.parent)
        os.close(fd)
        try:
            with sf.SoundFile(os.fsencode(tmp), "w", samplerate=int(sr), channels=frames.shape[1],
                              format="OGG", subtype="VORBIS",
                              compression_level=1.0 - _VORBIS_QUALITY) as f:
                # In blocks: libsndfile 1.2's Vorbis encoder crashes (SIGSEGV) on one long write.
                for start in range(0, frames.shape[0], 1 << 16):
                    f.write(frames[start:start + (1 << 16)])
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def get(self, chart_id: str, name: str) -> tuple[np.ndarray, int]:
        """The stem's audio as float32 ``(channels, n)`` (``(n,)`` if stored mono) and its rate."""
        import soundfile as sf

        path = self._path(chart_id, name)
        if not path.is_file():
            raise StemStoreError(f"no stem {name!r} for chart {chart_id}")
        data, sr = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
        y = data[:, 0].copy() if data.shape[1] == 1 else np.ascontiguousarray(data.T)
        return y, int(sr)

    def names(self, chart_id: str) -> tuple[str, ...]:
        """Names of the stems stored for ``chart_id``, sorted (empty if none)."""
        folder = self._path(chart_id)
        if not folder.is_dir():
            return ()
        return tuple(sorted(p.stem for p in folder.glob("*.ogg")))

    def disk_bytes(self) -> int:
        """Bytes the stored stems take on disk."""
        return sum(p.stat().st_size for p in self.root.glob("*/*") if p.is_file())
    def remove(self, chart_id: str) -> None:
        """Delete every stem of ``chart_id`` (nothing happens if it has none)."""
        folder = self._path(chart_id)
        if folder.is_dir():
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
