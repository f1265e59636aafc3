"""Source separation: split a mix into named stems before transcription and masking.

API
---
- :func:`separate` — one call for every method; ``"auto"`` picks the best one available here.
- :class:`Stems` — the named stem signals and the method that made them.
- :class:`StemsError` — a method was asked for explicitly and cannot run.
- :func:`available_method` — what ``"auto"`` resolves to, decided without loading anything heavy.

Methods: ``"demucs"`` (Demucs v4 ``htdemucs_6s``: drums, bass, other, vocals, guitar, piano; or
the 4-source ``htdemucs`` where only its weights are cached; GPU when present, see
:mod:`analyzer.stems.demucs`), ``"hpss"`` (harmonic/percussive split plus a bass/other split of the
harmonic part: drums, bass, other; no download, see :mod:`analyzer.stems.hpss`) and ``"none"``.
Both separators use the same stem names where they overlap, so later stages need not care which ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["separate", "Stems", "StemsError", "available_method", "METHODS"]

METHODS = ("auto", "demucs", "hpss", "none")


class StemsError(RuntimeError):
    """The requested separation method cannot run here (e.g. Demucs not installed)."""


@dataclass(frozen=True, eq=False)
class Stems:
    """Named stem signals of one recording.

    ``arrays[name]`` has the shape of the separated input (``(n,)`` or ``(channels, n)``), float32
    at ``sr`` Hz; the stems add up to (about) the input. ``method`` says which separator ran
    ("demucs", "hpss" or "none"; "none" has no arrays).
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    sr: int = 22050
    method: str = "none"

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.arrays)


def available_method() -> str:
    """What ``method="auto"`` runs here: "demucs" when Demucs is installed and the weights of one
    of its models (:data:`analyzer.stems.demucs.PREFERRED_MODELS`) are already cached (nothing is
    downloaded or imported to find out), else "hpss".

    HPSS earns its second of CPU per 3-minute song through the masks: pitched notes charted from
    the mix take their masks from its "other" stem (:data:`analyzer.masks.HARMONIC_STEM`), which
    on the real-song removal benchmark (``benchmarks.removal.masking --generated-only --quick``)
    removed 1.3 dB of the missed guitar instead of 0.3 dB, with a backing 1.1 dB cleaner, than
    masks estimated from the mix alone ("none")."""
    from analyzer.stems import demucs
    return "demucs" if demucs.installed() and demucs.cached_model() is not None else "hpss"


def separate(y: np.ndarray, sr: int, *, method: str = "auto", model=None,
             device: str | None = None) -> Stems:
    """Split ``y`` into stems.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        The mix, float.
    sr : int
        Its sample rate (Hz).
    method : {"auto", "demucs", "hpss", "none"}
        "auto" runs Demucs when it is installed and its weights are cached (or when ``model`` is
        given), else HPSS.
    model : str or demucs model, optional
        For Demucs: a pretrained model name (default: the best cached one, else "htdemucs_6s")
        or an already built model.
    device : str, optional
        Torch device for Demucs ("cuda", "cpu"); default: CUDA when available.

    Returns
    -------
    Stems

    Raises
    ------
    StemsError
        ``method="demucs"`` and Demucs is not installed or its weights cannot be loaded.

    Examples
    --------
    >>> import numpy as np
    >>> sr = 22050
    >>> y = np.sin(2 * np.pi * 220 * np.arange(sr) / sr).astype(np.float32)
    >>> stems = separate(y, sr, method="hpss")
    >>> stems.method, stems.names
    ('hpss', ('drums', 'bass', 'other'))
    """
    if method not in METHODS:
        raise ValueError(f"unknown stems method {method!r}; choose from {', '.join(METHODS)}")
    if method == "auto":
        method = "demucs" if model is not None else available_method()
    if method == "none":
        return Stems({}, sr, "none")
    if method == "hpss":
        from analyzer.stems.hpss import separate_hpss
        return Stems(separate_hpss(y, sr), sr, "hpss")
    from analyzer.stems import demucs
    return Stems(demucs.separate_demucs(y, sr, model=model, device=device), sr, "demucs")
