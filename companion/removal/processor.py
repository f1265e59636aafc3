"""The note remover: one block processor that takes missed notes out of the stream.

:class:`NoteRemover` is used identically offline (``loopjam play FILE --sink OUT.wav``) and live:
``process(block) -> block`` with blocks of any size, output delayed by a fixed
:attr:`~NoteRemover.latency_samples` (< 25 ms at 44.1 and 48 kHz). The live wiring tells it where
the chart is (:meth:`~NoteRemover.set_sync`) and which notes were missed or hit
(:meth:`~NoteRemover.miss`, :meth:`~NoteRemover.hit`) and switches charts without a gap
(:meth:`~NoteRemover.set_chart`); these calls are thread-safe (commands queued for the audio
thread).

How a note is removed
---------------------
The stream is analysed in sine-window STFT frames (:func:`analyzer.masks.fft_size`, hop 1/2)
and what to remove is resynthesised by overlap-add and subtracted from the delayed input::

    out = limiter(delay(x) - ISTFT(M·(X - w·H·S) + w·H·S))

- ``w·H·S`` — stem cancellation (:class:`~companion.removal.cancel.StemCanceller`) for notes whose
  stem audio was given: the stem through the learnt stream path, ``w`` the note's span envelope;
- ``M`` — the chart's per-note spectral masks (:class:`~chart_store.chart.MaskBank`, bands in Hz,
  frames in seconds, converted here to bins and frames at the stream's rate) for the other notes.

Overlapping notes combine by the maximum. Frame-level gains are crossfaded by the overlapping
windows (about 20 ms), so removal starts and stops without clicks. With nothing to remove no frame
is synthesised at all, so the output is the input delayed, bit for bit.

Why this STFT: what caps masking is not the window. On the benchmark songs (first 60 s, scored on
the masked spectra) the best real gain per bin and frame, shared by the channels, leaves the
backing at 9.1 dB SDR with this window, 9.3 dB with a 2048-sample one (twice the latency) and
9.2 dB with an asymmetric low-delay pair at this latency (2048- or 4096-sample analysis window,
1024-sample synthesis window), while the chart's 96-band masks did 0.07 dB worse through the
asymmetric pair. One gain per channel instead would reach 10.2 dB (double-tracked guitars panned
apart). Through this overlap-add the same ideal masks score 0.4-0.6 dB higher, on whole songs
9.0 dB shared and 10.1 dB per channel (``benchmarks.removal.masking --runs masks_oracle``).
A look-ahead peak limiter
(ceiling 1.0, 1 ms attack, 200 ms release) keeps the output from clipping; it does nothing while
the signal stays within ±1. Non-finite input samples are replaced by 0.

When is a note removed
----------------------
- ``mode="drop-missed"`` (default): a note is removed once :meth:`~NoteRemover.miss` is called.
  A game knows a miss only when the judgement window has passed (about 90 ms after the note), so
  by then the attack has been played: the remainder of the note is removed from the first frame
  not yet output. In dense passages that remainder is short, so a miss keeps removing into the
  next note for :data:`HOLD_S` (until that note's own judgement can be known), and a hit cuts it
  at once -- as games mute the track from a miss to the next hit. Players known to miss (a bot,
  ``miss-all``) may declare misses ahead, and then the whole note goes.
- ``mode="hit-only"``: every note is removed unless :meth:`~NoteRemover.hit` comes first; a late
  hit brings the note back from that moment.

Time: the remover counts the samples it was given (stream time, seconds from the first);
:meth:`~NoteRemover.set_sync` maps it to chart time. Note spans follow
:func:`analyzer.masks.note_spans`, or the note's mask extent when it has a mask.

Examples
--------
>>> import numpy as np
>>> rm = NoteRemover(sr=48000, channels=2)
>>> out = rm.process(np.ones((480, 2), np.float32) * 0.1)
>>> rm.latency_samples, out.shape
(1071, (480, 2))
"""
from __future__ import annotations

import collections
import functools
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from analyzer.masks import band_weights, fft_size, note_spans
from chart_store.chart import MaskBank, Note
from companion.removal.cancel import StemCanceller

__all__ = ["NoteRemover", "RemovalError", "MODES", "SEEK_TOLERANCE_S", "LOOKAHEAD_S",
           "RELEASE_S", "HOLD_S"]

MODES = ("drop-missed", "hit-only")
#: Limiter look-ahead (= attack) and release times, seconds.
LOOKAHEAD_S = 0.001
RELEASE_S = 0.2
#: drop-missed: a missed note keeps being removed this long into the next note, so that when the
#: next miss is known (judgement window ~90 ms + the remover's latency + a frame) removal goes on
#: without a gap; a hit cuts it at once (games mute the track from a miss to the next hit).
HOLD_S = 0.15
#: A sync offset that moves by more than this is a seek: the stem alignment starts again.
SEEK_TOLERANCE_S = 0.05
#: Frames of removal scheduled ahead (a ring); notes further ahead wait in a queue.
_HORIZON_FRAMES = 1024
#: STFT frames per window length: 2 (hop = half a window) halves the cost of 4 and keeps the
#: sine windows' perfect reconstruction; gains are smooth in time, so the coarser hop loses little.
_OVERLAP = 2
#: Blocks are processed in chunks of at most this many samples (bounds the ring buffers).
_CHUNK = 2048
#: Input samples beyond this magnitude are treated as broken and clipped before processing.
_INPUT_BOUND = 16.0


@functools.lru_cache(maxsize=1)
def _preparer() -> ThreadPoolExecutor:
    """The one thread that prepares charts in the background (:meth:`NoteRemover.set_chart`)."""
    return ThreadPoolExecutor(1, thread_name_prefix="loopjam-remover-prepare")


class RemovalError(ValueError):
    """Bad remover parameters or a block of the wrong shape."""


@dataclass
class _Removal:
    """One note's scheduled removal, in processor frames."""

    index: int
    first: int                    # first processor frame
    gains: np.ndarray | None      # (frames, bands) mask gains, or None for stem cancellation
    weights: np.ndarray | None    # (frames,) cancellation weights
    stem: int = -1                # canceller index when weights is set
    written: int = 0              # frames already written into the schedule ring
    base_end: int = 0             # end frame of the note's own span (without the hold)

    @property
    def end(self) -> int:
        return self.first + (self.gains.shape[0] if self.gains is not None else self.weights.size)


@dataclass
class _Chart:
    """The chart-dependent part of a remover, prepared off the audio thread."""

    notes: tuple
    masks: MaskBank
    spread: np.ndarray
    stem_names: tuple
    cancellers: list
    spans: tuple
    times: np.ndarray
    gain_ring: np.ndarray      # (frames ahead, bands): the masks' gains scheduled per frame
    weight_ring: np.ndarray    # (stems, frames ahead): the stems' weights scheduled per frame


class NoteRemover:
    """Block processor removing missed notes from a stream (see the module docstring).

    Parameters
    ----------
    sr : int
        Stream sample rate, Hz.
    channels : int
        Stream channels; every block is (frames, channels).
    notes : sequence of Note
        The notes being played (one difficulty, the game engine's order: note_index indexes it).
    masks : MaskBank, optional
        The chart's mask bank (notes' ``mask`` index into it).
    stems : mapping of str -> (np.ndarray, int), optional
        Local stem audio by name, ``(y, sr)`` with y (n,) or (channels, n), chart time 0 at sample
        0 (:meth:`chart_store.stems.StemStore.get`). Notes whose ``stem`` is here are cancelled.
    mode : {"drop-missed", "hit-only"}
    hold_s : float
        drop-missed mode: how far a miss's removal runs into the next note until that note is
        judged (a hit cuts it). 0 removes each missed note's span only.
    """

    def __init__(self, *, sr: int, channels: int = 2, notes: Sequence[Note] = (),
                 masks: MaskBank | None = None, stems: Mapping | None = None,
                 mode: str = "drop-missed", hold_s: float = HOLD_S):
        if not (isinstance(sr, (int, np.integer)) and 8000 <= sr <= 384000):
            raise RemovalError(f"sample rate must be 8000..384000 Hz, got {sr!r}")
        if not (isinstance(channels, (int, np.integer)) and 1 <= channels <= 8):
            raise RemovalError(f"channels must be 1..8, got {channels!r}")
        if mode not in MODES:
            raise RemovalError(f"mode must be one of {MODES}, got {mode!r}")
        self.sr, self.channels, self.mode = int(sr), int(channels), mode
        n = self.n_fft = fft_size(self.sr)
        self.hop = n // _OVERLAP
        self._lookahead = max(1, int(round(LOOKAHEAD_S * self.sr)))
        #: Output sample m is input sample m - latency_samples.
        self.latency_samples = n - 1 + self._lookahead
        self._window = np.sin(np.pi * (np.arange(n) + 0.5) / n)
        # Sine analysis x sine synthesis = Hann, which sums to _OVERLAP / 2 at this hop.
        self._synthesis = self._window / (_OVERLAP / 2)
        self._ring = 1 << int(np.ceil(np.log2(2 * n + self.latency_samples + _CHUNK)))
        self._x = np.zeros((self.channels, self._ring), np.float64)
        self._r = np.zeros((self.channels, self._ring), np.float64)
        self._frame = np.zeros((self.channels, n), np.float64)
        self._y = np.zeros((self.channels, _CHUNK + self._lookahead), np.float64)
        self._release = float(np.exp(-1.0 / (RELEASE_S * self.sr)))
        self._decay = self._release ** np.arange(1, _CHUNK + 1)   # the limiter's release
        self._high, self._low = np.zeros(self.channels), np.zeros(self.channels)
        self.hold_s = float(hold_s)
        self._commands: collections.deque = collections.deque()
        self._install(self._prepare(notes, masks, stems))
        self.reset()

    def _prepare(self, notes, masks, stems) -> _Chart:
        """Everything chart-dependent, built off the audio thread (stems are resampled here)."""
        notes = tuple(notes)
        masks = masks if masks is not None else MaskBank()
        n_bands = masks.n_bands
        # Bands -> this rate's bins: each bin interpolates the gains of its two nearest bands.
        spread = (band_weights(self.sr, self.n_fft, masks.band_edges_hz).T.copy() if n_bands
                  else np.zeros((1, self.n_fft // 2 + 1), np.float32))
        names = tuple(stems or ())
        return _Chart(notes=notes, masks=masks, spread=spread, stem_names=names,
                      cancellers=[self._canceller(stems[k]) for k in names],
                      spans=note_spans(notes) if notes else (np.zeros(0), np.zeros(0)),
                      times=np.array([nt.t for nt in notes], dtype=np.float64),
                      gain_ring=np.zeros((_HORIZON_FRAMES, max(n_bands, 1)), np.float32),
                      weight_ring=np.zeros((max(len(names), 1), _HORIZON_FRAMES), np.float32))

    def _install(self, chart: _Chart) -> None:
        """Switch to ``chart`` (audio thread): nothing scheduled, alignment to be learnt again."""
        self.notes, self.masks = chart.notes, chart.masks
        self._spread, self._stem_names = chart.spread, chart.stem_names
        self._cancellers, self._spans, self._times = chart.cancellers, chart.spans, chart.times
        self._gain_ring, self._weight_ring = chart.gain_ring, chart.weight_ring
        self._offset_s: float | None = None
        self._stem_offset = 0
        self._clear_schedule()

    def _clear_schedule(self) -> None:
        self._gain_ring[:] = 0
        self._weight_ring[:] = 0
        self._active: list[_Removal] = []
        self._pending: list[_Removal] = []
        self._missed: set[int] = set()
        self._hit: set[int] = set()
        self._auto_next = 0
        self._refill_at = -(1 << 62)
        self._pending_changed = False
        for c in self._cancellers:
            c.reset()

    # ----------------------------------------------------------------- control (any thread)
    def set_sync(self, stream_s: float, chart_s: float) -> None:
        """Tell the remover that stream time ``stream_s`` plays chart time ``chart_s``."""
        self._commands.append(("sync", float(chart_s) - float(stream_s)))

    def miss(self, index: int) -> None:
        """Note ``index`` was missed (or will be, for a bot): remove what is left of it."""
        self._commands.append(("miss", int(index)))

    def hit(self, index: int) -> None:
        """Note ``index`` was hit: in ``hit-only`` mode, let it sound from now on."""
        self._commands.append(("hit", int(index)))

    def set_chart(self, notes: Sequence[Note] = (), *, masks: MaskBank | None = None,
                  stems: Mapping | None = None, load_stems=None,
                  background: bool = False) -> None:
        """Play another chart (or none) from the next block on, keeping the audio running: the
        delay line is untouched, so switching makes no gap. Call :meth:`set_sync` again for
        the new chart.

        Stems (``stems``, or what ``load_stems()`` returns) are decoded and resampled where
        the chart is prepared: here, in the caller's thread, or with ``background`` in a worker
        thread. Then the calls after this one (sync, misses) wait, in order, until the chart
        is ready, while the audio plays on (for a song's stems a second or two): the live
        session's control thread, which judges the notes, does not stop for them. A stem that
        cannot be loaded there leaves the chart to its masks."""
        if not background:
            stems = load_stems() if load_stems is not None else stems
            self._commands.append(("chart", self._prepare(notes, masks, stems)))
            return

        def prepare() -> _Chart:
            try:
                return self._prepare(notes, masks, load_stems() if load_stems else stems)
            except Exception:  # noqa: BLE001 - the masks still work without the stem
                return self._prepare(notes, masks, None)

        self._commands.append(("chart", _preparer().submit(prepare)))

    def reset(self) -> None:
        """Start again: empty delay line, nothing scheduled, path estimates forgotten.

        Not thread-safe with :meth:`process`; call it from the audio thread or before starting.
        """
        self._x[:] = 0
        self._r[:] = 0
        self._n = 0
        self._next_frame = -(self.n_fft // self.hop - 1)
        self._gain_level = 0.0
        self._clear_schedule()

    # ----------------------------------------------------------------- processing
    def process(self, block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Process one block; returns the (frames, channels) float32 output: ``out`` when
        given (the audio thread passes a buffer it owns, so nothing is allocated per block),
        else a new array.

        Output sample ``i`` of the whole stream is input sample ``i - latency_samples`` with the
        scheduled notes removed (zeros before the stream started).
        """
        block = np.asarray(block)
        if block.ndim == 1 and self.channels == 1:
            block = block[:, None]
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise RemovalError(f"block must be (frames, {self.channels}), got {block.shape}")
        if out is None:
            out = np.empty(block.shape, np.float32)
        elif out.shape != block.shape or out.dtype != np.float32:
            raise RemovalError(f"out must be float32 {block.shape}, got {out.dtype} {out.shape}")
        self._drain_commands()
        for pos in range(0, block.shape[0], _CHUNK):
            chunk = block[pos:pos + _CHUNK]
            self._write_input(chunk)
            while self._next_frame * self.hop + self.n_fft <= self._n:
                self._compute_frame(self._next_frame)
                self._next_frame += 1
                if self._next_frame >= self._refill_at:
                    self._write_schedule()
            self._emit(out[pos:pos + chunk.shape[0]],
                       self._n - chunk.shape[0] - self.latency_samples)
        return out

    def _write_input(self, x: np.ndarray) -> None:
        # Reductions to scalars over the block as it comes (contiguous), not elementwise
        # temporaries: this runs on the audio thread. A sum is not finite when a sample is
        # not, or when huge ones overflow: either way the block is mended.
        if not np.isfinite(x.sum()):
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if x.size and (x.max() > _INPUT_BOUND or x.min() < -_INPUT_BOUND):
            x = np.clip(x, -_INPUT_BOUND, _INPUT_BOUND)
        x = x.T
        for a, b, o in _ring_slices(self._n, x.shape[1], self._ring):
            self._x[:, a:b] = x[:, o:o + b - a]
        self._n += x.shape[1]

    def _compute_frame(self, j: int) -> None:
        row = j % _HORIZON_FRAMES
        gains = self._gain_ring[row]
        weights = self._weight_ring[:, row]
        masking = bool(gains.any())
        cancelling = bool(weights.any())
        if not (masking or cancelling or self._cancellers):
            return
        # Slots of samples before the stream began are still zero: frames there see silence.
        start = j * self.hop
        frame = self._frame
        for a, b, o in _ring_slices(start, self.n_fft, self._ring):
            frame[:, o:o + b - a] = self._x[:, a:b]
        frame *= self._window
        spec = np.fft.rfft(frame, axis=1)
        remove = None
        chart_sample = start + self._stem_offset
        for k, canceller in enumerate(self._cancellers):
            estimate = canceller.frame(spec, chart_sample)
            if weights[k] > 0:
                estimate = weights[k] * estimate
                remove = estimate if remove is None else remove + estimate
        if masking:
            m = gains @ self._spread
            remove = m * spec if remove is None else remove + m * (spec - remove)
        if cancelling:
            self._weight_ring[:, row] = 0
        if masking:
            self._gain_ring[row] = 0
        if remove is None:
            return
        out = np.fft.irfft(remove, n=self.n_fft, axis=1)
        out *= self._synthesis
        for a, b, o in _ring_slices(start, self.n_fft, self._ring):
            self._r[:, a:b] += out[:, o:o + b - a]

    def _emit(self, out: np.ndarray, first: int) -> None:
        """Write output samples ``first .. first+len`` (input time), through the limiter."""
        length = out.shape[0]
        la = self._lookahead
        y = self._y[:, :length + la]
        for a, b, o in _ring_slices(first, length + la, self._ring):
            np.subtract(self._x[:, a:b], self._r[:, a:b], out=y[:, o:o + b - a])
        # Samples leaving the delay line are final; clear their removal slots for reuse.
        for a, b, o in _ring_slices(first, length, self._ring):
            self._r[:, a:b] = 0.0
        if first < 0:  # before the stream began: silence
            y[:, :min(-first, y.shape[1])] = 0.0
        # Per channel into owned buffers: a reduction over the strided view as a whole
        # would allocate a buffer of its size.
        high, low = y.max(axis=1, out=self._high), y.min(axis=1, out=self._low)
        if self._gain_level == 0.0 and high.max() <= 1.0 and low.min() >= -1.0:
            out[:] = y[:, :length].T
            return
        peak = np.abs(y).max(axis=0)
        # Reduction needed at each sample, ramped in over the look-ahead (attack) ...
        need = np.where(peak > 1.0, 1.0 - 1.0 / np.maximum(peak, 1.0), 0.0)
        attack = need[:length].copy()
        for k in range(1, la + 1):
            np.maximum(attack, need[k:k + length] * (1.0 - k / (la + 1)), out=attack)
        # ... and released exponentially: d[i] = max(attack[i], d[i-1] * release).
        decay = self._decay[:length]
        held = np.maximum.accumulate(np.maximum(attack / decay, self._gain_level))
        level = held * decay
        self._gain_level = float(level[-1]) if level[-1] > 1e-7 else 0.0
        out[:] = np.clip(y[:, :length] * (1.0 - level), -1.0, 1.0).T

    # ----------------------------------------------------------------- scheduling
    def _canceller(self, stem) -> StemCanceller:
        y, stem_sr = stem
        y = np.asarray(y, dtype=np.float32)
        if int(stem_sr) != self.sr:
            from math import gcd

            from scipy.signal import resample_poly
            g = gcd(int(stem_sr), self.sr)
            y = resample_poly(y, self.sr // g, int(stem_sr) // g, axis=-1).astype(np.float32)
        return StemCanceller(y, channels=self.channels, window=self._window, hop=self.hop,
                             sr=self.sr)

    def _drain_commands(self) -> None:
        rebuild = False
        while self._commands:
            kind, value = self._commands[0]
            if kind == "chart" and isinstance(value, Future):
                if not value.done():
                    break  # prepared in the background: what follows waits for it, in order
                value = value.result()
            self._commands.popleft()
            if kind == "chart":
                self._install(value)
                rebuild = False
            elif kind == "sync":
                self._sync(value)
            elif kind == "miss" and 0 <= value < len(self.notes) and value not in self._missed:
                self._missed.add(value)
                if self.mode == "drop-missed":
                    # This note's own removal takes over from the holds of earlier misses.
                    rebuild |= self._cut_holds(value)
                    self._schedule(value)
            elif kind == "hit" and 0 <= value < len(self.notes):
                self._hit.add(value)
                if self.mode == "hit-only":
                    rebuild |= self._unschedule(value)
                else:
                    rebuild |= self._cut_holds(value)
        if self.mode == "hit-only":
            self._schedule_upcoming()
        if rebuild:
            self._rebuild()
        if self._pending and (self._pending_changed or self._next_frame >= self._refill_at):
            self._write_schedule()
        self._pending_changed = False

    def _sync(self, offset_s: float) -> None:
        first = self._offset_s is None
        moved = not first and abs(offset_s - self._offset_s) > SEEK_TOLERANCE_S
        self._offset_s = offset_s
        # The cancellers track their own fine alignment; only a first sync or a seek moves them.
        if first or moved or not self._cancellers:
            self._stem_offset = int(round(offset_s * self.sr))
        if moved:
            for c in self._cancellers:
                c.reset()
            # Scheduled removals were placed with the old offset: place them again.
            notes = [r.index for r in self._active + self._pending]
            self._active, self._pending = [], []
            self._gain_ring[:] = 0
            self._weight_ring[:] = 0
            for i in notes:
                self._schedule(i)
            if self.mode == "hit-only":
                self._auto_next = 0

    def _frame_of(self, chart_s: float) -> float:
        """Processor frame (fractional) whose centre plays chart time ``chart_s``."""
        sample = (chart_s - (self._offset_s or 0.0)) * self.sr
        return (sample - self.n_fft / 2) / self.hop

    def _schedule(self, index: int) -> None:
        note = self.notes[index]
        stem = self._stem_names.index(note.stem) if note.stem in self._stem_names else -1
        mask = None
        if stem < 0:
            if note.mask is None or not 0 <= note.mask < len(self.masks):
                return
            mask = self.masks[note.mask]
            t0 = note.t + mask.start_s
            t1 = t0 + mask.duration_frames * self.masks.hop_s
        else:
            t0, t1 = self._spans[0][index], self._spans[1][index]
        base_end = self._frame_of(t1)
        t1 = max(t1, self._held_end(index))
        f0, f1 = self._frame_of(t0), self._frame_of(t1)
        first = max(int(np.floor(f0)), self._next_frame)
        last = int(np.ceil(f1)) + 1
        if last <= first:
            return
        frames = np.arange(first, last, dtype=np.float64)
        if mask is not None:
            # Mask frame k is centred (k + 0.5) hops after t0; a hold repeats the last frame.
            hop_frames = self.masks.hop_s * self.sr / self.hop
            u = (frames - f0) / hop_frames - 0.5
            g = mask.gain_fraction()
            inside = (frames >= f0) & (frames < f1)
            pos = np.clip(u, 0, g.shape[0] - 1)
            lo = np.floor(pos).astype(int)
            hi = np.minimum(lo + 1, g.shape[0] - 1)
            frac = (pos - lo)[:, None]
            gains = ((1 - frac) * g[lo] + frac * g[hi]) * inside[:, None]
            removal = _Removal(index, first, gains.astype(np.float32), None)
        else:
            # Ramp over one hop at each edge; the window overlap smooths the rest.
            w = np.clip(np.minimum(frames - f0, f1 - frames) + 0.5, 0.0, 1.0)
            removal = _Removal(index, first, None, w.astype(np.float32), stem)
        removal.base_end = int(np.ceil(base_end)) + 1
        self._pending.append(removal)
        self._pending_changed = True

    def _held_end(self, index: int) -> float:
        """drop-missed: a miss holds the removal into the next note until its judgement can be
        known (as a game mutes the track until the next hit), unless that note is already hit."""
        if self.mode != "drop-missed" or self.hold_s <= 0:
            return -np.inf
        times = self._times
        nxt = int(np.searchsorted(times, times[index], side="right"))
        if nxt >= times.size or self._spans[1][index] < times[nxt]:
            return -np.inf  # nothing follows within the note's span: no hold
        chord = range(nxt, int(np.searchsorted(times, times[nxt], side="right")))
        if any(k in self._hit or k in self._missed for k in chord):
            return -np.inf  # already judged: a hit must sound, a miss brings its own removal
        return self._spans[1][index] + self.hold_s

    def _cut_holds(self, index: int) -> bool:
        """drop-missed: note ``index`` was judged, so earlier misses stop holding from now on."""
        t = self._times[index]
        changed = False
        for r in self._active + self._pending:
            if self._times[r.index] < t:
                end = max(r.base_end, self._next_frame)
                if end < r.end:
                    keep = max(end - r.first, 0)
                    if r.gains is not None:
                        r.gains = r.gains[:keep]
                    else:
                        r.weights = r.weights[:keep]
                    changed = True
        return changed

    def _unschedule(self, index: int) -> bool:
        before = len(self._active) + len(self._pending)
        self._active = [r for r in self._active if r.index != index]
        self._pending = [r for r in self._pending if r.index != index]
        return len(self._active) + len(self._pending) != before

    def _schedule_upcoming(self) -> None:
        """hit-only mode: every note entering the horizon is removed unless already hit."""
        if self._offset_s is None:
            return  # where the notes are in the stream is not known yet
        horizon = self._next_frame + _HORIZON_FRAMES // 2
        starts = self._spans[0]
        while self._auto_next < len(self.notes):
            i = self._auto_next
            if self._frame_of(starts[i]) > horizon:
                break
            if i not in self._hit:
                self._schedule(i)
            self._auto_next += 1

    def _rebuild(self) -> None:
        """Rewrite the schedule ring from the remaining removals (after a hit un-schedules one)."""
        self._gain_ring[:] = 0
        self._weight_ring[:] = 0
        for r in self._active:
            r.written = max(0, self._next_frame - r.first)
        self._pending = self._active + self._pending
        self._active = []
        self._pending_changed = True

    def _write_schedule(self) -> None:
        """Copy scheduled removals into the frame ring as far as the horizon reaches."""
        horizon = self._next_frame + _HORIZON_FRAMES
        keep = []
        for r in self._pending:
            r.written = max(r.written, self._next_frame - r.first)
            stop = min(r.end, horizon)
            if r.first + r.written < stop:
                k = np.arange(r.first + r.written, stop)
                rows = k % _HORIZON_FRAMES
                sl = slice(r.written, r.written + k.size)
                if r.gains is not None:
                    self._gain_ring[rows] = np.maximum(self._gain_ring[rows], r.gains[sl])
                else:
                    self._weight_ring[r.stem, rows] = np.maximum(self._weight_ring[r.stem, rows],
                                                                 r.weights[sl])
                r.written += k.size
            (keep if r.first + r.written < r.end else self._active).append(r)
        self._pending = keep
        # Come back when the earliest unwritten frame is half a horizon away.
        self._refill_at = min((r.first + r.written for r in keep), default=1 << 62) \
            - _HORIZON_FRAMES // 2
        # Finished removals are forgotten.
        self._active = [r for r in self._active if r.end > self._next_frame]


def _ring_slices(start: int, length: int, size: int):
    """``(a, b, offset)`` slices of a ring of ``size`` holding samples ``start .. start+length``:
    sample ``start + offset + i`` lives at slot ``a + i``. One slice, or two across the wrap."""
    a = start % size
    if a + length <= size:
        return ((a, a + length, 0),)
    return ((a, size, 0), (0, length - (size - a), size - a))
