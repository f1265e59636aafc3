"""Per-note spectral masks: what to take out of the mix when a note is missed.

API
---
- :func:`attach_masks` — ``(difficulties, *, y, sr, stems=None) -> (MaskBank, difficulties)``:
  computes one :class:`~chart_store.chart.SpectralMask` per distinct note span and sets each
  note's ``mask`` index (chord notes, and the same span in several difficulties, share one).
- :func:`note_spans` — the time span of each note's sound (the rule the live remover uses too).
- :func:`band_edges` — the bank's band layout in Hz; :func:`band_weights` — STFT bins ↔ bands;
  :func:`fft_size` — the STFT size :mod:`companion.removal` applies masks with at a given rate
  (masks are computed with windows of :data:`WINDOW_S` at every rate, the same length at 44.1 kHz).

A mask is a gain map, bands (Hz) × frames (``hop_s`` seconds), relative to ``note.t``. Its value
in band ``b`` and frame ``k`` is the least-squares gain that best removes the note from the mix:
``m = Σ Re(G·X*) / Σ |X|²`` over the STFT bins, frames and channels the cell covers (X the mix, G
the note's sound), clipped to 0..1. Because ``m = 0`` is one of the candidates, removing ``m·X``
never leaves more error than keeping the note. The sum runs over the channels, as the remover
applies one gain to every channel; fitted on the downmix instead, where a double-tracked guitar
panned apart partly cancels, masks removed 0.4 dB less of the benchmark songs' guitars (0.05 dB
on the development songs). G comes from:

- the note's stem, when ``stems`` has it: exact for an instrument's own stem (a plain mapping, as
  an imported song's ``guitar.ogg``); for a separator's shared stem (an
  :class:`analyzer.stems.Stems`, whose "other" holds guitar, keys and synths together) only the
  bins at the harmonics of ``note.pitch`` count;
- for a pitched note charted from the mix (its stem not among a separator's), the separator's
  :data:`HARMONIC_STEM` (the harmonic part without drums and bass), at the note's harmonics as
  above and scaled by :data:`MIX_GAIN_SCALE` (the stem holds other instruments too): on the
  real-song benchmark this removed 1.3 dB of the missed guitar against 0.3 dB from the mix alone,
  and left the backing 1.1 dB cleaner, on every song;
- otherwise the mix itself: the energy that rose well above the local background (each bin's mean
  power over the surrounding second, from its median) at the harmonics of ``note.pitch``, whose
  fundamental is re-tracked frame by frame within ±½ semitone; notes without a pitch use every
  bin. This estimate is a power, so it gives a Wiener gain ``P_note / P_mix``, scaled by
  :data:`MIX_GAIN_SCALE` to stay on the side of removing too little (never damaging more backing
  than the note removed).

Cost: the STFT of the mix (and of each stem used) is taken once, about ten seconds at a time, and
shared by every note and difficulty; notes that start together from one source and pitch share
their cells; each (note, STFT frame) row is pooled into bands by one matrix product. A 3-minute
song with four difficulties (about 3000 notes) takes about 1.2 s of one core; a stereo mix takes
1.8 times a mono one (0.47 s against 0.26 s for 60 s at 44.1 kHz, one difficulty).

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
(0, 96)
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analyzer.features import _mel, _mel_to_hz
from chart_store.chart import MaskBank, Note, SpectralMask

__all__ = ["attach_masks", "note_spans", "band_edges", "band_weights", "fft_size", "MaskError",
           "N_BANDS", "FMAX_HZ", "HOP_S", "WINDOW_S", "PRE_S", "MAX_TAIL_S", "MIX_GAIN_SCALE",
           "HARMONIC_STEM"]

#: Bands of the bank, mel-spaced from 0 Hz to :data:`FMAX_HZ` (about one STFT bin wide at the
#: bottom, ~200 Hz at the top); every bin above belongs to the top band, which holds little of an
#: instrument's energy. On the development songs (their guitar stems, masks only) 96 bands to
#: 8 kHz removed 0.9 dB more than 48 bands to 20 kHz, and left the backing 0.9 dB cleaner, for
#: twice the bytes; the oracle (one gain per STFT bin and frame) is only 0.5 dB further.
N_BANDS = 96
FMAX_HZ = 8000.0
#: Mask frame hop, seconds (10 ms frames removed 0.26 dB more on the development songs, at
#: twice the size).
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
#: guess still takes out about 3/4 of the note's error energy (1 - (1 - 1/2)^2). Measured on
#: charts generated from the mix (``benchmarks.removal.masking --generated-only --quick``):
#: 0.75 removed 2.74 dB of the development songs' guitar against 2.21 dB, but 1.32 dB of the
#: benchmark songs' against 1.34 dB, less on three of the four; 1.0 fell to 1.08 dB on one.
MIX_GAIN_SCALE = 0.5
#: The stem of a separator's :class:`analyzer.stems.Stems` that pitched mix notes borrow.
HARMONIC_STEM = "other"
#: A bin's background is its mean power over the surrounding second (from the median, which the
#: note barely moves); the note's power is what rises above _OVER_SUBTRACTION x that (noise alone
#: exceeds twice its mean only 13 % of the time, so noise is left alone).
_BACKGROUND_S = 1.0
_BACKGROUND_GRID_S = 0.25
#: ... from every other STFT frame: neighbours overlap by 3/4 and add little but sorting time.
_BACKGROUND_STRIDE = 2
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


def _channels(y: np.ndarray, name: str) -> np.ndarray:
    """``y`` as (channels, n) float32."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2:
        raise MaskError(f"{name} must be (n,) or (channels, n), got shape {np.shape(y)}")
    return y  # NaNs are zeroed block by block (:func:`_stft`): no copy of a long song


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


def attach_masks(difficulties: Mapping[str, tuple[Note, ...]], *, y: np.ndarray, sr: int,
                 stems=None, n_bands: int = N_BANDS,
                 hop_s: float = HOP_S) -> tuple[MaskBank, dict[str, tuple[Note, ...]]]:
    """Compute the per-note masks of a chart and point each note at its mask.

    Parameters
    ----------
    difficulties : mapping of str -> sequence of Note
        Notes of each difficulty, sorted by time (``Note.mask`` is ignored and replaced).
    y : np.ndarray [shape=(n,) or (channels, n)]
        The mix as the listener hears it, chart time 0 at sample 0. Masks are fitted on all
        channels at once (one gain per cell serves every channel); stems whose channel count
        differs from the mix's are compared on the downmixes.
    sr : int
        Sample rate of ``y`` and the stems, Hz.
    stems : mapping of str -> np.ndarray, or analyzer.stems.Stems, optional
        Stem audio by name, same layout and rate as ``y``; a note whose ``stem`` names one gets
        its mask from it (exact for a mapping of instrument stems, restricted to the note's
        harmonics for a separator's Stems); other pitched notes borrow a separator's
        :data:`HARMONIC_STEM`; the rest get a mask estimated from the mix.
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

    Notes
    -----
    Notes that start together from the same source and pitch (chords, the same note in several
    difficulties) form one group whose cells are computed once, over the longest of their spans;
    each note's mask is a prefix of them, and equal prefixes are stored once. The STFT is taken
    once per block of a few seconds of groups, and every row (a group's STFT frame) is pooled
    into bands by one matrix product.
    """
    from dataclasses import replace

    if not (isinstance(sr, (int, np.integer)) and 4000 <= sr <= 384000):
        raise MaskError(f"sample rate must be 4000..384000 Hz, got {sr!r}")
    mix = _channels(y, "y")
    stem_arrays, exact = _stem_arrays(stems)
    stem_audio = {k: _channels(v, f"stem {k!r}") for k, v in stem_arrays.items()}
    if any(v.shape[0] != mix.shape[0] for v in stem_audio.values()):
        # Channels that do not correspond: compare the downmixes.
        mix = mix.mean(axis=0, keepdims=True)
        stem_audio = {k: v.mean(axis=0, keepdims=True) for k, v in stem_audio.items()}
    n = mix.shape[1]
    for k, v in stem_audio.items():
        if v.shape[1] != n:
            stem_audio[k] = np.pad(v, ((0, 0), (0, max(0, n - v.shape[1]))))[:, :n]
    edges = band_edges(n_bands, fmax=min(FMAX_HZ, sr / 2))
    duration_s = n / sr

    group_of: dict[tuple, int] = {}
    groups: list[list] = []  # [t0, source stem or None, pitch or None, cells]
    refs: dict[str, list[tuple[int, int]]] = {}
    for name, notes in difficulties.items():
        notes = tuple(notes)
        starts, stops = note_spans(notes)
        cells = np.ceil((np.minimum(stops, duration_s) - starts) / hop_s - 1e-9).astype(int)
        refs[name] = []
        for note, t0, n in zip(notes, starts, cells):
            src = note.stem if note.stem in stem_audio else None
            pitch = None if (src and exact) else note.pitch
            guessed = src is None
            if guessed and not exact and pitch is not None and HARMONIC_STEM in stem_audio:
                src = HARMONIC_STEM
            g = group_of.setdefault((round(float(t0), 6), src, pitch, guessed), len(groups))
            if g == len(groups):
                groups.append([float(t0), src, pitch, 0, guessed])
            groups[g][3] = max(groups[g][3], int(n))
            refs[name].append((g, int(n)))

    # Thousands of mid-sized matrix products: BLAS threads cost more to wake than they save
    # (measured on 2 cores: 1.0 s single-threaded, 1.5-3.6 s wall and twice the CPU threaded).
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        gains = _group_gains(groups, mix, stem_audio, exact, sr, edges, hop_s)
    masks: list[SpectralMask] = []
    mask_of: dict[tuple[int, int], int | None] = {}
    out: dict[str, tuple[Note, ...]] = {}
    for name, notes in difficulties.items():
        updated = []
        for note, (g, n) in zip(notes, refs[name]):
            if (g, n) not in mask_of:
                mask_of[(g, n)] = _add_mask(masks, gains[g][:max(n, 0)],
                                            groups[g][0] - note.t, hop_s)
            updated.append(replace(note, mask=mask_of[(g, n)]))
        out[name] = tuple(updated)
    return MaskBank(band_edges_hz=edges, hop_s=hop_s, masks=tuple(masks)), out


#: Fundamental candidates of a pitched note, cents from its written pitch.
_CENTS = np.linspace(-50, 50, 11)
#: Groups are processed in blocks whose first frames lie within this many STFT frames (12 s at
#: 22.05 kHz): the spectra held at once stay small whatever the song's length.
_BLOCK_FRAMES = 1024


def _group_gains(groups, mix, stem_audio, exact, sr, edges, hop_s) -> list[np.ndarray]:
    """Gains (cells, bands), uint8 0..255 for 0..1, of each group [t0, src, pitch, cells,
    guessed]; cell k is [t0 + k·hop_s, t0 + (k+1)·hop_s) and sums the STFT frames centred in it;
    guessed groups (not from the note's own stem) are scaled by :data:`MIX_GAIN_SCALE`."""
    # Analysis windows of WINDOW_S at every rate (not the processor's power of two): bins of the
    # same width in Hz, so that the narrow low bands see the same partials at 44.1 and 48 kHz.
    n_fft = 4 * max(1, round(sr * WINDOW_S / 4))
    hop = n_fft // 4
    window = np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft).astype(np.float32)
    pool = band_weights(sr, n_fft, edges)
    n_total = mix.shape[1] // hop + 1
    n_g = len(groups)
    t0 = np.array([g[0] for g in groups], np.float64)
    cells = np.maximum(np.array([g[3] for g in groups], np.int64), 0)
    f0 = np.maximum(np.ceil(t0 * sr / hop), 0).astype(np.int64)
    f1 = np.minimum(np.maximum(f0, np.ceil((t0 + cells * hop_s) * sr / hop).astype(np.int64)),
                    n_total)
    f0 = np.minimum(f0, f1)
    mixed = np.array([g[1] is None for g in groups], bool)
    guessed = np.array([g[4] for g in groups], bool)
    # Background of a mix-only group: the frames around its first frame's grid point.
    key = np.rint(f0 * hop / sr / _BACKGROUND_GRID_S)
    bg0 = np.maximum(np.ceil((key * _BACKGROUND_GRID_S - _BACKGROUND_S) * sr / hop), 0)
    bg1 = np.minimum(np.ceil((key * _BACKGROUND_GRID_S + _BACKGROUND_S / 2) * sr / hop), n_total)
    bg0, bg1 = bg0.astype(np.int64), np.maximum(bg0, bg1).astype(np.int64)

    offset = np.r_[0, np.cumsum(cells)]
    q = np.zeros((offset[-1], pool.shape[1]), np.uint8)
    tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    order = np.argsort(f0, kind="stable")
    start = 0
    while start < n_g:
        stop = int(np.searchsorted(f0[order], f0[order[start]] + _BLOCK_FRAMES))
        block = order[start:stop]
        start = stop
        block = block[f1[block] > f0[block]]
        if block.size == 0:
            continue
        lo = int(min(f0[block].min(), np.where(mixed[block], bg0[block], n_total).min()))
        hi = int(max(f1[block].max(), np.where(mixed[block], bg1[block], 0).max()))
        x = _stft(mix, lo, hi, n_fft, hop, window)
        power = (x.real ** 2 + x.imag ** 2).sum(axis=0, dtype=np.float32)
        # Rows: one per (group, frame), group by group.
        lengths = f1[block] - f0[block]
        row_g = np.repeat(block, lengths)
        row_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
        row_f = f0[row_g] + np.arange(row_g.size) - row_start - lo
        cell = np.clip(((row_f + lo) * hop / sr - t0[row_g]) / hop_s, 0, cells[row_g] - 1)
        # The block's cells, group after group.
        n_cells = cells[block]
        first_cell = np.cumsum(n_cells) - n_cells
        flat = np.repeat(first_cell, lengths) + cell.astype(np.int64)
        row_num = np.zeros((row_g.size, pool.shape[1]), np.float32)
        row_den = (power @ pool)[row_f]
        # A row's base: the note's sound per bin (power or cross spectrum), before pitch combs.
        base_of = {}
        if mixed[block].any():
            _, first, key_idx = np.unique(key[block], return_index=True, return_inverse=True)
            background = _medians(power, bg0[block[first]] - lo, bg1[block[first]] - lo)
            background *= _OVER_SUBTRACTION / np.log(2.0)
            row_key = np.repeat(key_idx, lengths)
            base_of[None] = lambda rows: np.maximum(power[row_f[rows]]
                                                    - background[row_key[rows]], 0.0)
        block_src = [groups[g][1] for g in block]
        pitches = np.repeat([-1 if groups[g][2] is None else groups[g][2] for g in block],
                            lengths)
        for src in set(block_src) - {None}:
            cross = _cross(x, _stft(stem_audio[src], lo, hi, n_fft, hop, window))
            # Without a pitch to follow (always, for an instrument's own stem): all of it.
            rows = np.flatnonzero(np.repeat([s == src for s in block_src], lengths)
                                  & (pitches < 0))
            row_num[rows] = (cross @ pool)[row_f[rows]]
            base_of[src] = lambda rows, c=cross: np.maximum(c[row_f[rows]], 0.0)
        logp = np.log(power + 1e-12) if (pitches >= 0).any() else None
        for src, base in base_of.items():
            in_src = np.repeat([s == src for s in block_src], lengths)
            if src is None:  # mix-only notes without a pitch: every bin
                rows = np.flatnonzero(in_src & (pitches < 0))
                row_num[rows] = base(rows) @ pool
            for p in np.unique(pitches[in_src & (pitches >= 0)]):
                rows = np.flatnonzero(in_src & (pitches == p))
                if int(p) not in tables:
                    tables[int(p)] = _pitch_tables(int(p), sr, n_fft)
                score_w, combs = tables[int(p)]
                # Ties (a bin wider than the search) go to the written pitch.
                best = np.argmax(logp[row_f[rows]] @ score_w
                                 - 1e-6 * np.abs(_CENTS), axis=1)
                comb = combs[_median5(best, row_g[rows])]
                row_num[rows] = (base(rows) * comb) @ pool
        # Sum the rows of each cell (rows of one cell are adjacent).
        edge = np.flatnonzero(np.r_[True, np.diff(flat) != 0])
        num = np.zeros((n_cells.sum(), pool.shape[1]), np.float32)
        den = np.zeros_like(num)
        num[flat[edge]] = np.add.reduceat(row_num, edge, axis=0)
        den[flat[edge]] = np.add.reduceat(row_den, edge, axis=0)
        scale = np.repeat(np.where(guessed[block], MIX_GAIN_SCALE, 1.0), n_cells)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            gains = np.where(den > 0, scale * num / den, 0.0)
        # Cells no STFT frame falls in (hop_s shorter than the STFT hop) take the previous value.
        filled = np.zeros(num.shape[0], bool)
        filled[flat] = True
        idx = np.arange(num.shape[0])
        gains = gains[np.maximum.accumulate(np.where(filled, idx, np.repeat(first_cell, n_cells)))]
        q[np.repeat(offset[block] - first_cell, n_cells) + idx] = np.rint(
            np.clip(gains, 0.0, 1.0) * 255)
    return np.split(q, offset[1:-1])


def _medians(power: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Median over every :data:`_BACKGROUND_STRIDE`-th row of a[i]..b[i]-1 of ``power``, for
    each i, shape (len(a), bins); windows of a common length are taken together."""
    out = np.zeros((a.size, power.shape[1]), np.float32)
    length = (b - a + _BACKGROUND_STRIDE - 1) // _BACKGROUND_STRIDE
    for n in np.unique(length[length > 0]):
        sel = np.flatnonzero(length == n)
        windows = power[a[sel, None] + _BACKGROUND_STRIDE * np.arange(n)[None, :]]
        out[sel] = np.median(windows, axis=1)
    return out


def _stft(y: np.ndarray, lo: int, hi: int, n_fft: int, hop: int,
          window: np.ndarray) -> np.ndarray:
    """Complex spectra of frames lo..hi-1 of (channels, n) ``y``, shape
    (channels, hi - lo, n_fft // 2 + 1); frame ``f`` is centred on sample ``f * hop``, zeros
    beyond the signal."""
    s0 = lo * hop - n_fft // 2
    s1 = s0 + (hi - lo - 1) * hop + n_fft
    # Contiguous first: a transposed (n, channels) song pads and frames 2-3x slower.
    seg = np.ascontiguousarray(y[:, max(s0, 0):max(min(s1, y.shape[1]), 0)])
    pad = (max(0, -s0), s1 - s0 - seg.shape[1] - max(0, -s0))
    seg = np.nan_to_num(np.pad(seg, ((0, 0), pad)), copy=False)
    frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft, axis=1)[:, ::hop]
    return np.fft.rfft(frames * window, axis=-1).astype(np.complex64)


def _cross(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Re(G·X*) per bin, summed over the channels: the part of the mix's power the stem
    explains."""
    return (g.real * x.real + g.imag * x.imag).sum(axis=0, dtype=np.float32)


def _pitch_tables(pitch: int, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental candidates within ±50 cents of ``pitch`` (bends, vibrato, tuning) and, for
    each, its comb of harmonics.

    Returns ``score`` (bins, candidates): log power @ score is each candidate's log power summed
    at its harmonics (interpolated between bins, so that close candidates differ), and ``combs``
    (candidates, bins): each bin's triangle (half-width :data:`_LOBE_BINS`) around its nearest
    harmonic, 0..1.
    """
    n_bins = n_fft // 2 + 1
    f_nominal = 440.0 * 2.0 ** ((pitch - 69) / 12)
    f0s = f_nominal * 2.0 ** (_CENTS / 1200)
    n_harm = max(1, int(min(_HARMONIC_FMAX_HZ, 0.45 * sr) // f_nominal))
    pos = f0s[:, None] * np.arange(1, n_harm + 1)[None, :] * n_fft / sr  # fractional bins
    score = np.zeros((n_bins, _CENTS.size))
    for c in range(_CENTS.size):
        p = pos[c][pos[c] < n_bins - 1]
        lo = np.minimum(p.astype(int), n_bins - 2)
        score[:, c] = (np.bincount(lo, 1 - (p - lo), n_bins)
                       + np.bincount(lo + 1, p - lo, n_bins))
    spacing = f0s[:, None] * n_fft / sr
    k = np.arange(n_bins)[None, :]
    nearest = np.clip(np.rint(k / spacing), 1, n_harm)
    combs = np.clip(1.0 - np.abs(k - nearest * spacing) / _LOBE_BINS, 0.0, 1.0)
    return score.astype(np.float32), combs.astype(np.float32)


def _median5(best: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Median over 5 rows (about 30 ms) within each run of equal ``group``, edges repeated, so
    that one noisy frame does not jump the comb."""
    i = np.arange(best.size)
    run = np.r_[True, group[1:] != group[:-1]]
    first = np.maximum.accumulate(np.where(run, i, 0))
    last = np.minimum.accumulate(np.where(np.r_[run[1:], True], i, best.size)[::-1])[::-1]
    idx = np.clip(i[:, None] + np.arange(-2, 3)[None, :], first[:, None], last[:, None])
    return np.sort(best[idx], axis=1)[:, 2]


def _add_mask(masks: list[SpectralMask], q: np.ndarray, start_s: float,
              hop_s: float) -> int | None:
    """Trim the silent cells at both ends of ``q`` (cells, bands; uint8) and append it."""
    rows = np.flatnonzero(q.any(axis=1))
    if rows.size == 0:
        return None
    masks.append(SpectralMask(start_s=float(start_s + rows[0] * hop_s),
                              gains=q[rows[0]:rows[-1] + 1]))
    return len(masks) - 1
