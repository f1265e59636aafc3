"""Onsets of a recording: the one spectrogram the analysis reads, and the onset envelope.

API
---
- :func:`analysis_spectrogram` — the one STFT every analysis function reads (resampled to
  22.05 kHz); :func:`to_analysis_rate` — mono audio at that rate.
- :func:`mel_filterbank` — librosa's default (Slaney) mel filters, in NumPy.
- :func:`onset_strength` — log-mel spectral flux (frames at :data:`FRAME_RATE`).
- :func:`is_steady` — whether that envelope is a held tone's, which has no onsets.
- :func:`crest_factor_db` — peaks over RMS, which tells a brickwalled master.
- :func:`detect_onsets` — onset times and strengths from that envelope (:class:`Onsets`).
- :func:`envelope_near` — an envelope's peak near given times (a stem's word on the mix's onsets).
- :func:`strongest_apart` — the strongest events no two closer than a gap (onsets, thinning).
- :func:`envelope_contrast` / :func:`spectral_change` — whether an envelope has peaks that stand
  out and whether the sound changes at all (stationary noise has neither, nor a beat:
  :func:`analyzer.beats.pulse_clarity`).

The beat grid is :mod:`analyzer.beats`; what sounds at each onset (pitch, partials, length) is
:mod:`analyzer.notes`.

Why this design (measured on real songs, see ``benchmarks/chart_quality``): a log-compressed mel
flux of the whole mix, peak-picked at a global threshold, finds the onsets a guitar charter charts
far better than basic-pitch's notes (Expert F 0.73 vs 0.35 at ±50 ms), and the whole charting
takes ~0.8-1.0 s CPU per 3 minutes of audio, imports included, where basic-pitch's inference alone
takes ~4.4 s on this 2-core machine. It imports nothing heavy: soxr resamples, the mel filterbank
and the smoothing filters are NumPy (``librosa.filters`` would cost ~2 s and ``scipy.signal``
~1.5 s CPU per process, ``scipy.ndimage`` ~0.4 s). librosa's default peak picking (a local-mean
threshold) drops fast runs of equal 16th notes and scores 0.48.
"""
from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ANALYSIS_SR", "HOP_LENGTH", "N_FFT", "FRAME_RATE", "COMPRESSION", "MIN_FLUX_SCALE",
    "NotesError", "Spectrogram", "Onsets", "analysis_spectrogram", "to_analysis_rate",
    "mel_filterbank", "onset_strength", "is_steady", "detect_onsets", "envelope_near",
    "strongest_apart", "envelope_contrast", "spectral_change", "crest_factor_db",
]


#: Everything here runs at basic-pitch's rate: enough bandwidth for onsets, half the cost of 44.1k.
ANALYSIS_SR = 22050
#: STFT hop and size (samples): 11.6 ms frames, 46 ms windows. A longer window smears attacks
#: (onsets come out ~20 ms early) and costs twice as much, for no gain in onset F (measured); its
#: 21.5 Hz bins still separate the harmonics that order pitches for lanes.
HOP_LENGTH = 256
N_FFT = 1024
#: Onset-envelope frames per second (Hz), derived, not set.
FRAME_RATE = ANALYSIS_SR / HOP_LENGTH
#: Band magnitudes are compressed as ``log1p(COMPRESSION * m / max)``: logarithmic (loudness-like)
#: within 40 dB of the loudest, linear below, so a faint noise floor or reverb tail changing
#: is not a note, and a note after a pause is not ten times stronger than one inside a run.
COMPRESSION = 100.0
#: The smallest flux (mean change of the compressed bands per frame) that :func:`onset_strength`
#: scales up to a loud onset. A steady tone's flux is rounding noise and the STFT's ripple
#: between its partials (0.0006-0.014, also over a noise floor 40 dB down), which scaled to 1
#: made 4-6 notes/s of nothing; music's is 0.25-0.73 (the 16 song and guitar tracks of
#: ``benchmarks/chart_quality``), a pad with 300 ms attacks 0.14, one click every 2 s 0.6.
MIN_FLUX_SCALE = 0.02


class NotesError(ValueError):
    """Input the note analysis cannot use (wrong shape, empty, sample rate out of range)."""


@dataclass(frozen=True, eq=False)
class Spectrogram:
    """Magnitude STFT of mono audio at :data:`ANALYSIS_SR`.

    ``magnitude`` has shape (N_FFT // 2 + 1, frames); frame ``k`` is centred at
    ``k / FRAME_RATE`` seconds.
    """

    magnitude: np.ndarray

    def log_magnitude(self, bins=slice(None), frames=slice(None)) -> np.ndarray:
        """``log1p(100 * magnitude[bins, frames])``: what pitch salience sums, so one loud
        partial cannot win. Computed for the cells asked (the whole array costs more than all
        the pitch analysis that reads a few of its columns)."""
        return np.log1p(100.0 * self.magnitude[bins, frames])

    @property
    def n_frames(self) -> int:
        return self.magnitude.shape[1]

    @property
    def duration_s(self) -> float:
        return self.n_frames / FRAME_RATE


@dataclass(frozen=True, eq=False)
class Onsets:
    """Onset times (seconds, ascending) and their strength (envelope value, ~1 = a loud onset)."""

    times: np.ndarray
    strength: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def to_analysis_rate(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 audio at :data:`ANALYSIS_SR`, shape (n,), from ``y`` of shape (n,) or
    (channels, n) at ``sr`` Hz (channels averaged).

    Examples
    --------
    >>> to_analysis_rate(np.ones((2, 44100), np.float32), 44100).shape
    (22050,)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1 or y.size == 0:
        raise NotesError(f"audio must be a non-empty (n,) or (channels, n) array, got {y.shape}")
    if int(sr) != sr or not 4000 <= sr <= 384000:
        raise NotesError(f"sample rate must be an integer in 4000..384000 Hz, got {sr!r}")
    if sr != ANALYSIS_SR:
        # soxr (as analyzer.decode uses) imports in ~0.2 s; scipy.signal would cost ~1.5 s CPU
        # per process, more than the whole analysis of a song.
        import soxr
        y = soxr.resample(y, int(sr), ANALYSIS_SR)
    return np.ascontiguousarray(y, dtype=np.float32)


def analysis_spectrogram(y: np.ndarray, sr: int) -> Spectrogram:
    """The magnitude STFT all note analysis reads.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Audio, float; channels are averaged.
    sr : int
        Its sample rate (Hz); resampled to :data:`ANALYSIS_SR`.

    Returns
    -------
    Spectrogram

    Examples
    --------
    >>> spec = analysis_spectrogram(np.zeros(44100, np.float32), 44100)
    >>> spec.magnitude.shape
    (513, 87)
    """
    y = to_analysis_rate(y, sr)
    # Centred frames, Hann window, in blocks so the complex intermediate stays small. The ends
    # are padded by reflection: zero padding would make the start of a noise floor, or a track
    # cut off mid-note, look like an attack.
    n_frames = 1 + y.size // HOP_LENGTH
    padded = np.pad(y, N_FFT // 2, mode="reflect" if y.size > N_FFT // 2 else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    magnitude = np.empty((N_FFT // 2 + 1, n_frames), np.float32)
    for start in range(0, n_frames, 4096):
        block = np.fft.rfft(frames[start:start + 4096] * window, axis=1)
        magnitude[:, start:start + 4096] = np.abs(block).T
    return Spectrogram(magnitude)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (3 mels per 200 Hz) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_hz = np.log(np.maximum(hz, 1e-10) / 1000.0) / _MEL_LOGSTEP + 15.0
    return np.where(hz >= 1000.0, log_hz, hz * 0.015)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp(_MEL_LOGSTEP * (mel - 15.0)), mel / 0.015)


_MEL_LOGSTEP = np.log(6.4) / 27.0


@functools.lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = 128) -> np.ndarray:
    """Triangular mel filters over the :func:`analysis_spectrogram` bins, 0 Hz..Nyquist.

    Slaney's mel scale and area normalisation (each triangle weighs ``2 / bandwidth``): the
    filterbank of ``librosa.filters.mel`` with its defaults, to float32 precision, in NumPy alone
    (importing librosa's filters costs ~2 s CPU per process, more than charting a song).

    Returns
    -------
    np.ndarray [shape=(n_mels, N_FFT // 2 + 1), dtype=float32] (read-only, cached)

    Examples
    --------
    >>> mel_filterbank(128).shape
    (128, 513)
    """
    bins_hz = np.arange(N_FFT // 2 + 1) * ANALYSIS_SR / N_FFT
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(ANALYSIS_SR / 2), n_mels + 2))
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (bins_hz - lo) / (centre - lo), (hi - bins_hz) / (hi - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


def onset_strength(spec: Spectrogram, *, n_mels: int = 128, lag: int = 2,
                   per_band: bool = False) -> np.ndarray:
    """Log-mel spectral flux, normalised so that a loud onset is 1.

    The positive change of compressed mel-band magnitudes (see :data:`COMPRESSION`) between frame
    ``k - lag`` and ``k``, averaged over bands. A lag of two frames (23 ms) follows the attack of a
    picked or strummed note better than one. A loud onset is the flux's 99th percentile, or a
    tenth of its maximum where onsets are rarer than 1 % of the frames, and never less than
    :data:`MIN_FLUX_SCALE` (a steady sound is not scaled up to onsets it does not have).
    Normalising by a high percentile rather than the maximum keeps one accidental spike (a
    crash, a click) from shrinking every other onset below threshold.

    Each band is compressed relative to the loudest band, so a quiet band's changes count less;
    with ``per_band`` relative to its own 99.9th percentile (never under -60 dB of the loudest),
    so every band counts alike. That suits a brickwalled master (:func:`crest_factor_db`),
    whose limiter flattens the attacks of the loud bands (``analyzer.charting``'s
    ``BRICKWALL_CREST_DB``).

    Parameters
    ----------
    spec : Spectrogram
        Magnitudes at :data:`FRAME_RATE` frames a second (:func:`analysis_spectrogram`).
    n_mels : int
        Mel bands the flux is averaged over.
    lag : int
        Frames between the two spectra compared (2: 23 ms).
    per_band : bool
        Compress each band against its own level instead of the loudest band's.

    Returns
    -------
    np.ndarray [shape=(spec.n_frames,), dtype=float32]
        Its loud onsets (see :func:`is_steady`) are 1, or under 1 for a steady sound.

    Examples
    --------
    >>> sr = ANALYSIS_SR
    >>> y = np.zeros(sr, np.float32); y[sr // 2:sr // 2 + 200] = 1.0   # a burst at 0.5 s
    >>> env = onset_strength(analysis_spectrogram(y, sr))
    >>> abs(int(np.argmax(env)) / FRAME_RATE - 0.5) < 0.03
    True
    """
    bands = np.sqrt(mel_filterbank(n_mels) @ (spec.magnitude ** 2))
    loudest = max(float(bands.max()), 1e-12)
    if per_band:
        level = np.percentile(bands, 99.9, axis=1, keepdims=True)
        log_bands = np.log1p(COMPRESSION * bands / np.maximum(level, 1e-3 * loudest))
    else:
        log_bands = np.log1p(COMPRESSION * bands / loudest)
    flux = np.zeros(spec.n_frames, np.float32)
    if spec.n_frames > lag:
        flux[lag:] = np.maximum(0.0, log_bands[:, lag:] - log_bands[:, :-lag]).mean(axis=0)
    # The last frames' windows run into the padding past the end: a cut-off track is no attack.
    flux[-(N_FFT // (2 * HOP_LENGTH)):] = 0.0
    return flux / max(_loud_onset(flux), MIN_FLUX_SCALE)


def _loud_onset(flux: np.ndarray) -> float:
    """What a loud onset is in ``flux``: its 99th percentile in music; with fewer onsets than
    1 % of the frames (a lone note) that is noise, so never under a tenth of the maximum."""
    return max(float(np.percentile(flux, 99)), 0.1 * float(flux.max())) if flux.size else 0.0


def is_steady(envelope: np.ndarray) -> bool:
    """Whether an :func:`onset_strength` envelope is a steady sound's (a held tone, a drone):
    its loud onsets were under :data:`MIN_FLUX_SCALE`, so it was not scaled up to them.

    Examples
    --------
    >>> sr = ANALYSIS_SR; t = np.arange(5 * sr) / sr
    >>> is_steady(onset_strength(analysis_spectrogram(np.sin(2 * np.pi * 440 * t), sr)))
    True
    >>> y = np.zeros(5 * sr, np.float32); y[sr:sr + 200] = 1.0              # one click
    >>> is_steady(onset_strength(analysis_spectrogram(y, sr)))
    False
    """
    # Scaled to them, the loud onsets are 1 (up to rounding).
    return _loud_onset(np.asarray(envelope, dtype=np.float64)) < 0.999


def crest_factor_db(y: np.ndarray) -> float:
    """How far the peaks stand above the RMS level (dB): the 99.99th percentile of ``|y|`` (of
    the channels' mean) over the RMS. Music as mixed sits at 11-13 dB and more; a master through
    a brickwall limiter at 8-10 dB; a steady tone at 3 dB; silence gives ``inf``.

    Examples
    --------
    >>> t = np.arange(44100) / 44100
    >>> round(crest_factor_db(np.sin(2 * np.pi * 441 * t)), 1)
    3.0
    >>> round(crest_factor_db(np.random.default_rng(0).standard_normal(441000)), 1)
    11.8
    """
    y = np.asarray(y, dtype=np.float32)
    y = y.mean(axis=0) if y.ndim == 2 else y
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    if rms == 0.0:
        return float("inf")
    magnitude = np.abs(y)
    k = int(0.9999 * (magnitude.size - 1))
    return float(20.0 * np.log10(np.partition(magnitude, k)[k] / rms))


def detect_onsets(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                  threshold: float = 0.35, min_gap_s: float = 0.06,
                  peak_s: float = 0.035) -> Onsets:
    """Onsets as peaks of an onset envelope.

    A frame is an onset when it is the maximum within ``±peak_s`` and at least ``threshold``
    (the envelope's 99th percentile is 1). Peaks closer than ``min_gap_s`` keep the stronger one
    (60 ms: faster than any charted guitar stream, slower than a flam). A global threshold is
    enough on the log-compressed flux of :func:`onset_strength`: a local one (a fraction of the
    envelope's 90th percentile over 1-4 s) changed no score on the benchmark songs.

    Parameters
    ----------
    envelope : np.ndarray [shape=(frames,)]
        Onset strength, e.g. :func:`onset_strength`.
    frame_rate : float
        Envelope frames per second (Hz).

    Returns
    -------
    Onsets

    Examples
    --------
    >>> env = np.zeros(400); env[[50, 150, 153, 160, 300]] = [1.0, 0.8, 0.6, 0.5, 0.05]
    >>> detect_onsets(env, frame_rate=100.0).times      # 1.53 s: too close; 3 s: too weak
    array([0.5, 1.5, 1.6])
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.ndim != 1:
        raise NotesError(f"envelope must be one-dimensional, got shape {env.shape}")
    if env.size == 0:
        return Onsets(np.zeros(0), np.zeros(0))
    local_max = _running_max(env, max(1, int(round(peak_s * frame_rate))))
    peaks = np.flatnonzero((env == local_max)
                           & (env >= threshold) & (env > 0))
    peaks = peaks[strongest_apart(peaks / frame_rate, env[peaks], min_gap_s=min_gap_s)]
    return Onsets(peaks / frame_rate, env[peaks])


def envelope_near(envelope: np.ndarray, times: np.ndarray, *, radius_s: float = 0.025,
                  frame_rate: float = FRAME_RATE) -> np.ndarray:
    """The highest value of ``envelope`` within ``±radius_s`` of each time.

    How strong a second recording of the same music (a separated stem) finds onsets found in the
    first: its peak may sit a frame or two away.

    Parameters
    ----------
    envelope : np.ndarray [shape=(frames,)]
        An onset envelope (:func:`onset_strength`), frames at ``frame_rate``.
    times : np.ndarray [shape=(n,)]
        Seconds.
    radius_s : float
        Half the window, seconds (0.025: two frames either side).

    Returns
    -------
    np.ndarray [shape=(n,)]
        0 for times past the envelope's end.

    Examples
    --------
    >>> env = np.zeros(100); env[50] = 1.0
    >>> envelope_near(env, np.array([50, 52, 60]) / FRAME_RATE)
    array([1., 1., 0.])
    """
    envelope = np.asarray(envelope, dtype=np.float64)
    frames = np.round(np.asarray(times, dtype=np.float64) * frame_rate).astype(np.int64)
    if envelope.size == 0 or frames.size == 0:
        return np.zeros(frames.shape)
    radius = int(round(radius_s * frame_rate))
    # Past either end the envelope counts as 0: pad with zeros, then index the padded frames.
    local_max = _running_max(np.pad(envelope, radius), radius)
    at = frames + radius
    inside = (at >= 0) & (at < local_max.size)
    return np.where(inside, local_max[np.clip(at, 0, local_max.size - 1)], 0.0)


def _running_max(x: np.ndarray, half_width: int) -> np.ndarray:
    """Maximum of 1-d ``x`` over ``±half_width`` samples, the edge samples repeated."""
    return np.lib.stride_tricks.sliding_window_view(
        np.pad(x, half_width, mode="edge"), 2 * half_width + 1).max(axis=1)


def strongest_apart(times: np.ndarray, strength: np.ndarray, *,
                    min_gap_s: float | np.ndarray) -> np.ndarray:
    """Indices (ascending) of the events to keep so that no two are closer than ``min_gap_s``:
    greedily, strongest first (ties: the earlier). Used for onsets and for thinning difficulties.

    ``min_gap_s`` is one gap (s) or one per event (where the tempo changes); two events must
    then be as far apart as the shorter of their gaps.

    Examples
    --------
    >>> strongest_apart(np.array([0.0, 0.1, 0.2, 0.5]), np.array([1.0, 0.9, 0.2, 0.5]),
    ...                 min_gap_s=0.15)
    array([0, 2, 3])
    """
    times = np.asarray(times, dtype=np.float64)
    strength = np.asarray(strength, dtype=np.float64)
    if times.shape != strength.shape or times.ndim != 1:
        raise NotesError("times and strength must be one-dimensional and of the same length")
    gap = np.broadcast_to(np.asarray(min_gap_s, dtype=np.float64), times.shape)
    order = np.lexsort((times, -strength))
    kept_times: list[float] = []
    kept: list[int] = []
    for i in order:
        t = times[i]
        j = bisect.bisect_left(kept_times, t)
        if (j > 0 and t - kept_times[j - 1] < min(gap[i], gap[kept[j - 1]])) or (
                j < len(kept_times) and kept_times[j] - t < min(gap[i], gap[kept[j]])):
            continue
        kept_times.insert(j, t)
        kept.insert(j, int(i))
    return np.array(kept, dtype=np.int64)


def envelope_contrast(envelope: np.ndarray) -> float:
    """How far the loud onsets stand above the envelope's typical frame: its 99th percentile
    over its median (inf when the median is 0, as between the notes of sparse music).

    Songs score 3-5 (dense metal lowest), stationary noise 1.5-2.1: its flux never rests.

    Examples
    --------
    >>> env = np.zeros(1000); env[::100] = 1.0
    >>> envelope_contrast(env)
    inf
    >>> round(envelope_contrast(np.linspace(1.0, 2.0, 101)), 2)
    1.33
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.size == 0:
        return 0.0
    median = float(np.median(env))
    return float(np.percentile(env, 99)) / median if median > 0 else float("inf")


def spectral_change(spec: Spectrogram, *, window_s: float = 0.5, n_mels: int = 40) -> float:
    """How much the shape of the spectrum changes over time (dB).

    The spectrogram is pooled into ``window_s`` windows of ``n_mels`` mel bands; each window's
    levels (dB) minus their mean over the bands is its shape (a change of loudness alone moves
    no shape); the result is the median over bands of each band's standard deviation over the
    windows. Stationary noise of any colour, also slowly swelling, scores 0.3-0.6 dB (what
    0.5 s of noise varies by itself); music, whose notes and chords come and go, 1.7-7 dB (the
    16 song and guitar tracks of ``benchmarks/chart_quality``: lowest an isolated distorted
    guitar). 0 with fewer than 4 windows.

    Parameters
    ----------
    spec : Spectrogram
    window_s : float
        Seconds pooled into one spectrum.
    n_mels : int
        Mel bands of each spectrum.

    Returns
    -------
    float

    Examples
    --------
    >>> sr = ANALYSIS_SR; rng = np.random.default_rng(0)
    >>> noise = rng.standard_normal(10 * sr).astype(np.float32)
    >>> spectral_change(analysis_spectrogram(noise, sr)) < 0.7
    True
    >>> t = np.arange(10 * sr) / sr                    # a tone that moves every second
    >>> tune = np.sin(2 * np.pi * 220 * 2 ** (np.floor(t) % 5 / 12) * t).astype(np.float32)
    >>> spectral_change(analysis_spectrogram(tune + 0.01 * noise, sr)) > 1.5
    True
    """
    width = max(1, int(round(window_s * FRAME_RATE)))
    count = spec.n_frames // width
    if count < 4:
        return 0.0
    power = mel_filterbank(n_mels) @ (spec.magnitude[:, :count * width] ** 2)
    pooled = power.reshape(n_mels, count, width).mean(axis=2)
    level = 10.0 * np.log10(pooled + 1e-10 * max(float(pooled.max()), 1e-30))
    shape = level - level.mean(axis=0, keepdims=True)
    return float(np.median(shape.std(axis=1)))
