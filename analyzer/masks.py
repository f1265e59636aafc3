"""Per-note spectral masks: what to take out of the mix when a note is missed.

API
---
- :func:`attach_masks` — ``(difficulties, *, y, sr, stems=None) -> (MaskBank, difficulties)``:
  computes one :class:`~chart_store.chart.SpectralMask` per distinct note span and sets each
  note's ``mask`` index (chord notes, and the same span in several difficulties, share one).
- :func:`note_spans` — the time span of each note's sound (the rule the live remover uses too).
- :func:`band_edges` — the bank's band layout in Hz; :func:`band_weights` — STFT bins ↔ bands;
  :func:`fft_size` — the STFT size used here and by :mod:`companion.removal` at a given rate.

A mask is a gain map, bands (Hz) × frames (``hop_s`` seconds), relative to ``note.t``. Its value in
band ``b`` and frame ``k`` is the least-squares gain that best removes the note from the mix:
``m = Σ Re(G·X*) / Σ |X|²`` over the STFT bins and frames the cell covers (X the mix, G the note's
sound), clipped to 0..1. Because ``m = 0`` is one of the candidates, removing ``m·X`` never leaves
more error than keeping the note. G comes from:

- the note's stem, when ``stems`` has it: exact for an instrument's own stem (a plain mapping, as
  an imported song's ``guitar.ogg``); for a separator's shared stem (an
  :class:`analyzer.stems.Stems`, whose "other" holds guitar, keys and synths together) only the
  bins at the harmonics of ``note.pitch`` count;
- otherwise the mix itself: the energy that rose well above the local background (each bin's mean
  power over the surrounding second, from its median) at the harmonics of ``note.pitch``, whose fundamental is
  re-tracked frame by frame within ±½ semitone; notes without a pitch use every bin. This estimate
  is a power, so it gives a Wiener gain ``P_note / P_mix``, scaled by :data:`MIX_GAIN_SCALE` to
  stay on the side of removing too little (never damaging more backing than the note removed).

Nothing here depends on the sample rate: bands are Hz, frames seconds, so the live engine applies
the same bank at 44.1 or 48 kHz.

Examples
--------
>>> import numpy as np
>>> from chart_store.chart import Note
>>> sr = 22050
>>> t = np.arange(sr * 2) / sr
>>> note = np.where(t > 1.0, np.sin(2 * np.pi * 440 * t), 0.0)
>>> mix = note + 0.1 * np.random.default_rng(0).standard_normal(t.size)
>>> bank, diffs = attach_masks({"expert": (Note(1.0, dur=0.5, pitch=69, stem="lead"),)},
...                            y=mix, sr=sr, stems={"lead": note})
>>> diffs["expert"][0].mask, bank.n_bands
(0, 48)
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analyzer.features import _mel, _mel_to_hz
from chart_store.chart import MaskBank, Note, SpectralMask

__all__ = ["attach_masks", "note_spans", "band_edges", "band_weights", "fft_size", "MaskError",
           "N_BANDS", "FMAX_HZ", "HOP_S", "WINDOW_S", "PRE_S", "MAX_TAIL_S", "MIX_GAIN_SCALE"]

#: Bands of the bank, mel-spaced from 0 Hz to :data:`FMAX_HZ` (about one STFT bin wide at the
#: bottom, where harmonics are sparse, a few hundred Hz at the top).
N_BANDS = 48
FMAX_HZ = 20000.0
#: Mask frame hop, seconds (10 ms frames removed 0.1 dB more on real songs, at twice the size).
HOP_S = 0.02
#: STFT window, seconds (1024 samples at 44.1 and 48 kHz): short enough for the live engine's
#: latency budget, long enough to resolve a guitar's harmonics.
WINDOW_S = 1024 / 44100
#: A note's span starts this early (human charts and onset detectors sit a few tens of ms off).
PRE_S = 0.03
#: A note sounds until the next note of its difficulty, its own end, or this long after its end.
MAX_TAIL_S = 1.5
#: Mix-only masks are scaled by this. The note's power is guessed, and a gain up to twice the
#: least-squares one still reduces the error; halving the guess keeps a 2x over-estimate (a
#: backing partial on the note's harmonic) from removing more than it should, while a right
#: guess still takes out about 3/4 of the note's error energy (1 - (1 - 1/2)^2).
MIX_GAIN_SCALE = 0.5
#: A bin's background is its mean power over the surrounding second (from the median, which the
#: note barely moves); the note's power is what rises above _OVER_SUBTRACTION x that (noise alone
#: exceeds twice its mean only 13 % of the time, so noise is left alone).
_BACKGROUND_S = 1.0
_BACKGROUND_GRID_S = 0.25
_OVER_SUBTRACTION = 2.0
#: Harmonics followed by pitch masks (up to this frequency) and the half-width of a harmonic's
#: main lobe in bins (1.5 for the sine window).
_HARMONIC_FMAX_HZ = 8000.0
_LOBE_BINS = 1.5


class MaskError(ValueError):
    """Inputs masks cannot be computed from (bad audio shape, unknown rate)."""


def fft_size(sr: int) -> int:
    """STFT size at ``sr``: the power of two closest to :data:`WINDOW_S` seconds.

    >>> fft_size(44100), fft_size(48000), fft_size(96000)
    (1024, 1024, 2048)
    """
    return int(2 ** round(np.log2(sr * WINDOW_S)))


def band_edges(n_bands: int = N_BANDS, *, fmax: float = FMAX_HZ) -> np.ndarray:
    """Mel-spaced band edges in Hz, shape (n_bands + 1,), from 0 to ``fmax``.

    >>> band_edges(4, fmax=8000.0).round()
    array([   0.,  614., 1768., 3934., 8000.], dtype=float32)
    """
    return _mel_to_hz(np.linspace(0.0, float(_mel(fmax)), n_bands + 1)).astype(np.float32)


def note_spans(notes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (seconds) of the sound of each note of one difficulty.

    A note's sound runs from :data:`PRE_S` before it to the next later note of the same
    difficulty (a missed note drops out until the player's next note, as when a game mutes the
    track), at least to its own end, and at most :data:`MAX_TAIL_S` past its end. Chord notes
    get the same span.

    Parameters
    ----------
    notes : sequence of Note, sorted by time

    Returns
    -------
    start, end : np.ndarray [shape=(n,)]
    """
    t = np.array([n.t for n in notes], dtype=np.float64)
    end = np.array([n.end for n in notes], dtype=np.float64)
    # The first strictly later onset for each note (chords share it).
    nxt_idx = np.searchsorted(t, t, side="right")
    nxt = np.append(t, np.inf)[nxt_idx]
    stop = np.clip(nxt, end, end + MAX_TAIL_S)
    return t - PRE_S, stop


def _mono(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise MaskError(f"{name} must be (n,) or (channels, n), got shape {np.shape(y)}")
    return np.nan_to_num(y)


def _stem_arrays(stems) -> tuple[dict[str, np.ndarray], bool]:
    """Stem audio by name, and whether each stem is one instrument's own track.

    A plain mapping holds instrument stems (an imported song's ``guitar.ogg``); an
    :class:`analyzer.stems.Stems` from a separator holds shared stems ("other" carries guitar,
    keys and synths together).
    """
    if stems is None:
        return {}, True
    exact = isinstance(stems, Mapping)
    if not exact:
        stems = getattr(stems, "arrays", None)
        if not isinstance(stems, Mapping):
            raise MaskError("stems must be a mapping of name -> audio or an analyzer.stems.Stems")
    return {str(k): v for k, v in stems.items()}, exact


class _Spectra:
    """Sine-window STFT frames of one signal at a fixed hop, computed on demand by time range.

    Frame ``f`` covers samples ``[f*hop - n_fft/2, f*hop + n_fft/2)`` (centred at ``f*hop/sr``).
    """

    def __init__(self, y: np.ndarray, sr: int):
        self.sr = sr
        self.n_fft = fft_size(sr)
        self.hop = self.n_fft // 4
        self.window = np.sin(np.pi * (np.arange(self.n_fft) + 0.5) / self.n_fft).astype(np.float32)
        self._padded = np.pad(y, (self.n_fft // 2, self.n_fft))
        self._power: np.ndarray | None = None
        self._backgrounds: dict[int, np.ndarray] = {}

    def power(self, frames: np.ndarray) -> np.ndarray:
        """|STFT|² of ``frames``, from a whole-signal power spectrogram computed once."""
        if self._power is None:
            n = (self._padded.size - self.n_fft - self.n_fft // 2) // self.hop + 1
            chunks = [np.abs(self.stft(np.arange(a, min(a + 2048, n)))) ** 2
                      for a in range(0, n, 2048)]
            self._power = np.concatenate(chunks).astype(np.float32)
        return self._power[np.minimum(frames, self._power.shape[0] - 1)]

    def background(self, t: float) -> np.ndarray:
        """Mean noise power of each bin around ``t`` seconds, shape (bins,): the median over
        [t - _BACKGROUND_S, t + _BACKGROUND_S / 2] / ln 2 (a bin's noise power is exponentially
        distributed). Computed on a grid of _BACKGROUND_GRID_S, shared by nearby notes."""
        key = int(round(t / _BACKGROUND_GRID_S))
        if key not in self._backgrounds:
            centre = key * _BACKGROUND_GRID_S
            frames = self.frames_for(centre - _BACKGROUND_S, centre + _BACKGROUND_S / 2)
            self._backgrounds[key] = np.median(self.power(frames), axis=0) / np.log(2.0)
        return self._backgrounds[key]

    def frames_for(self, t0: float, t1: float) -> np.ndarray:
        """Indices of the frames centred in [t0, t1) seconds."""
        f0 = max(int(np.ceil(t0 * self.sr / self.hop)), 0)
        f1 = int(np.ceil(t1 * self.sr / self.hop))
        return np.arange(f0, max(f0, f1))

    def stft(self, frames: np.ndarray) -> np.ndarray:
        """Complex spectra, shape (len(frames), n_fft // 2 + 1)."""
        idx = frames[:, None] * self.hop + np.arange(self.n_fft)[None, :]
        idx = np.minimum(idx, self._padded.size - 1)
        return np.fft.rfft(self._padded[idx] * self.window, axis=1).astype(np.complex64)


def band_weights(sr: int, n_fft: int, edges: np.ndarray) -> np.ndarray:
    """How each STFT bin relates to the bands, shape (n_fft // 2 + 1, bands), rows summing to 1.

    A bin sits between two band centres (mel midpoints of the edges) and weighs on both,
    linearly in mel; bins below the first or above the last centre belong to that band alone.
    Pooling bins into bands is ``values @ W``, spreading band gains to bins is ``W @ gains``:
    no band is ever empty, whatever the rate, so a bank made at one rate applies at another.

    >>> float(band_weights(48000, 1024, band_edges()).sum(axis=1).min().round(6))
    1.0
    """
    n_bands = edges.size - 1
    mel_edges = _mel(edges)
    centres = (mel_edges[:-1] + mel_edges[1:]) / 2
    freqs = _mel(np.arange(n_fft // 2 + 1) * sr / n_fft)
    pos = np.interp(freqs, centres, np.arange(n_bands))  # fractional band index, clamped
    lo = np.minimum(np.floor(pos).astype(int), max(n_bands - 2, 0))
    frac = np.clip(pos - lo, 0.0, 1.0)
    weights = np.zeros((freqs.size, n_bands), np.float32)
    rows = np.arange(freqs.size)
    weights[rows, lo] = 1.0 - frac
    weights[rows, np.minimum(lo + 1, n_bands - 1)] += frac
    return weights


def _harmonic_weights(power: np.ndarray, pitch: int, sr: int, n_fft: int) -> np.ndarray:
    """Per-frame comb of the note's harmonics, shape like ``power`` (frames, bins), values 0..1.

    The fundamental is re-tracked per frame within ±50 cents of ``pitch`` (bends, vibrato,
    tuning) as the candidate whose harmonics hold the most log power.
    """
    n_bins = power.shape[1]
    f_nominal = 440.0 * 2.0 ** ((pitch - 69) / 12)
    cents = np.linspace(-50, 50, 11)
    f0s = f_nominal * 2.0 ** (cents / 1200)
    n_harm = max(1, int(min(_HARMONIC_FMAX_HZ, 0.45 * sr) // f_nominal))
    h = np.arange(1, n_harm + 1)
    pos = f0s[:, None] * h[None, :] * n_fft / sr  # (candidates, harmonics), fractional bins
    valid = pos < n_bins - 1
    lo = np.minimum(pos.astype(int), n_bins - 2)
    frac = pos - lo
    logp = np.log(power + 1e-12)
    # Log power at each harmonic, interpolated between bins so that close candidates differ.
    at = (1 - frac) * logp[:, lo] + frac * logp[:, lo + 1]  # (frames, candidates, harmonics)
    score = np.where(valid[None], at, 0.0).sum(axis=2)
    # Ties (a bin wider than the search) go to the written pitch.
    score -= 1e-6 * np.abs(cents)[None, :]
    best = np.argmax(score, axis=1)
    # Smooth the track over 5 frames (about 30 ms) so one noisy frame does not jump the comb.
    from scipy.ndimage import median_filter
    f0 = f0s[median_filter(best, size=5, mode="nearest")]
    # Each bin takes the triangle of its nearest harmonic (the largest of them all).
    spacing = f0[:, None] * n_fft / sr  # the fundamental, in bins, per frame
    k = np.arange(n_bins)[None, :]
    nearest = np.clip(np.rint(k / spacing), 1, n_harm)
    return np.clip(1.0 - np.abs(k - nearest * spacing) / _LOBE_BINS, 0.0, 1.0)


def _mix_note_power(spec: _Spectra, frames: np.ndarray,
                    pitch: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Estimated power of the note in each (frame, bin) -- its rise above the local background --
    and the mix power, both shape (frames, bins)."""
    power = spec.power(frames)
    background = spec.background(frames[0] * spec.hop / spec.sr)
    rise = np.maximum(power - _OVER_SUBTRACTION * background[None, :], 0.0)
    if pitch is not None:
        rise *= _harmonic_weights(power, pitch, spec.sr, spec.n_fft)
    return rise, power


def attach_masks(difficulties: Mapping[str, tuple[Note, ...]], *, y: np.ndarray, sr: int,
                 stems=None, n_bands: int = N_BANDS,
                 hop_s: float = HOP_S) -> tuple[MaskBank, dict[str, tuple[Note, ...]]]:
    """Compute the per-note masks of a chart and point each note at its mask.

    Parameters
    ----------
    difficulties : mapping of str -> sequence of Note
        Notes of each difficulty, sorted by time (``Note.mask`` is ignored and replaced).
    y : np.ndarray [shape=(n,) or (channels, n)]
        The mix as the listener hears it, chart time 0 at sample 0.
    sr : int
        Sample rate of ``y`` and the stems, Hz.
    stems : mapping of str -> np.ndarray, or analyzer.stems.Stems, optional
        Stem audio by name, same layout and rate as ``y``; a note whose ``stem`` names one gets
        its mask from it (exact for a mapping of instrument stems, restricted to the note's
        harmonics for a separator's Stems), other notes a mask estimated from the mix.
    n_bands, hop_s : int, float
        Band count (mel-spaced, 0..:data:`FMAX_HZ`) and frame hop in seconds.

    Returns
    -------
    bank : MaskBank
    difficulties : dict of str -> tuple of Note
        The same notes with ``mask`` set (None when the note's span holds no sound to remove).

    Raises
    ------
    MaskError
        Audio of the wrong shape or a sample rate out of range.
    """
    if not (isinstance(sr, (int, np.integer)) and 4000 <= sr <= 384000):
        raise MaskError(f"sample rate must be 4000..384000 Hz, got {sr!r}")
    mix = _mono(y, "y")
    stem_arrays, exact = _stem_arrays(stems)
    stem_audio = {k: _mono(v, f"stem {k!r}") for k, v in stem_arrays.items()}
    for k, v in stem_audio.items():
        if v.size != mix.size:
            v = np.pad(v, (0, max(0, mix.size - v.size)))[:mix.size]
            stem_audio[k] = v
    edges = band_edges(n_bands, fmax=min(FMAX_HZ, sr / 2))
    mix_spec = _Spectra(mix, sr)
    stem_spec = {k: _Spectra(v, sr) for k, v in stem_audio.items()}
    pool = band_weights(sr, mix_spec.n_fft, edges)

    masks: list[SpectralMask] = []
    by_key: dict[tuple, int | None] = {}
    out: dict[str, tuple[Note, ...]] = {}
    for name, notes in difficulties.items():
        notes = tuple(notes)
        starts, stops = note_spans(notes)
        updated = []
        for note, t0, t1 in zip(notes, starts, stops):
            src = note.stem if note.stem in stem_spec else None
            pitch = None if (src and exact) else note.pitch
            key = (round(t0, 6), round(t1, 6), src, pitch)
            if key not in by_key:
                gains = _span_gains(mix_spec, stem_spec.get(src), pool, t0, t1, hop_s,
                                    pitch, duration_s=mix.size / sr)
                by_key[key] = _add_mask(masks, gains, t0 - note.t, hop_s)
            updated.append(_with_mask(note, by_key[key]))
        out[name] = tuple(updated)
    return MaskBank(band_edges_hz=edges, hop_s=hop_s, masks=tuple(masks)), out


def _with_mask(note: Note, index: int | None) -> Note:
    from dataclasses import replace
    return replace(note, mask=index)


def _span_gains(mix_spec: _Spectra, stem_spec: _Spectra | None, pool: np.ndarray, t0: float, t1: float, hop_s: float, pitch: int | None, *,
                duration_s: float) -> tuple[np.ndarray, int] | None:
    """Gains (frames, bands) in 0..1 over [t0, t1), and the index of their first frame."""
    t1 = min(t1, duration_s)
    n_frames = int(np.ceil((t1 - t0) / hop_s - 1e-9))
    frames = mix_spec.frames_for(t0, t0 + n_frames * hop_s)
    if n_frames <= 0 or frames.size == 0:
        return None
    if stem_spec is not None:
        x = mix_spec.stft(frames)
        g = stem_spec.stft(frames)
        cross = g.real * x.real + g.imag * x.imag
        if pitch is not None:  # a shared stem: keep only this note's harmonics
            power = np.abs(x) ** 2
            cross = np.maximum(cross, 0.0) * _harmonic_weights(power, pitch, mix_spec.sr,
                                                               mix_spec.n_fft)
        num = cross @ pool
        den = (np.abs(x) ** 2) @ pool
        scale = 1.0
    else:
        note_power, power = _mix_note_power(mix_spec, frames, pitch)
        num = note_power @ pool
        den = power @ pool
        scale = MIX_GAIN_SCALE
    # Sum the STFT frames into mask frames by the mask frame their centre falls in.
    cell = np.clip(((frames * mix_spec.hop / mix_spec.sr - t0) / hop_s).astype(int), 0, n_frames - 1)
    num_m = np.zeros((n_frames, pool.shape[1]))
    den_m = np.zeros((n_frames, pool.shape[1]))
    first = np.flatnonzero(np.r_[True, np.diff(cell) > 0])  # cell is non-decreasing
    num_m[cell[first]] = np.add.reduceat(num, first, axis=0)
    den_m[cell[first]] = np.add.reduceat(den, first, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gains = np.where(den_m > 0, scale * num_m / den_m, 0.0)
    # Frames between STFT frames (hop_s shorter than the STFT hop) take the previous value.
    filled = np.zeros(n_frames, bool)
    filled[cell] = True
    last = np.maximum.accumulate(np.where(filled, np.arange(n_frames), 0))
    gains = gains[last]
    q = np.rint(np.clip(gains, 0.0, 1.0) * 255).astype(np.uint8)
    rows = np.flatnonzero(q.any(axis=1))
    if rows.size == 0:
        return None
    return q[rows[0]:rows[-1] + 1], int(rows[0])


def _add_mask(masks: list[SpectralMask], gains, start_s: float, hop_s: float) -> int | None:
    if gains is None:
        return None
    q, first = gains
    masks.append(SpectralMask(start_s=float(start_s + first * hop_s), gains=q))
    return len(masks) - 1
