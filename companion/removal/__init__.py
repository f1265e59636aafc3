"""Note removal: take missed notes out of the stream the player hears.

- :mod:`companion.removal.processor` — :class:`NoteRemover`, the block processor (STFT
  overlap-add with per-note masks and stem cancellation, soft limiter), same offline and live.
- :mod:`companion.removal.cancel` — :class:`StemCanceller`, adaptive stem subtraction.
- :func:`make_remover` — what the live wiring (:mod:`companion.app`) builds for a chart.
"""
from __future__ import annotations

from companion.removal.processor import MODES, NoteRemover, RemovalError

__all__ = ["NoteRemover", "RemovalError", "MODES", "make_remover", "local_stems"]


def local_stems(chart, notes) -> dict:
    """Stem audio kept locally for ``chart`` (:class:`chart_store.stems.StemStore`), only the
    stems ``notes`` come from: ``{name: (y, sr)}``, empty when none is stored."""
    from chart_store.stems import StemStore

    store = StemStore()
    wanted = {n.stem for n in notes}
    return {name: store.get(chart.id, name) for name in store.names(chart.id) if name in wanted}


def make_remover(*, sr: int, channels: int, chart=None, notes=(), previous=None,
                 stems=None, mode: str = "drop-missed", background: bool = False) -> NoteRemover:
    """The remover for ``chart``'s ``notes`` (a pure delay without a chart).

    ``previous``, when it is a :class:`NoteRemover` at the same rate and channel count, is
    switched to the new chart (:meth:`NoteRemover.set_chart`, in the ``background`` when
    asked) so the audio has no gap; stems default to :func:`local_stems`.
    """
    def load_stems():
        return stems if stems is not None or chart is None else local_stems(chart, notes)

    masks = chart.masks if chart is not None else None
    if (isinstance(previous, NoteRemover) and previous.sr == sr and previous.channels == channels
            and previous.mode == mode):
        previous.set_chart(notes, masks=masks, load_stems=load_stems, background=background)
        return previous
    return NoteRemover(sr=sr, channels=channels, notes=notes, masks=masks, stems=load_stems(),
                       mode=mode)
