"""Note removal: take missed notes out of the stream the player hears.

- :mod:`companion.removal.processor` — :class:`NoteRemover`, the block processor (STFT
  overlap-add with per-note masks and stem cancellation, soft limiter), same offline and live.
- :mod:`companion.removal.cancel` — :class:`StemCanceller`, adaptive stem subtraction.
"""
from companion.removal.processor import MODES, NoteRemover, RemovalError

__all__ = ["NoteRemover", "RemovalError", "MODES"]
