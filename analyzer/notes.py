"""Note events of a recording: onsets, their pitch and length, the beat grid.

API
---
- :func:`analysis_spectrogram` — the one STFT every function below reads (resampled to 22.05 kHz).
- :func:`mel_filterbank` — librosa's default (Slaney) mel filters, in NumPy.
- :func:`onset_strength` — log-mel spectral flux (frames at :data:`FRAME_RATE`).
- :func:`detect_onsets` — onset times and strengths from that envelope (:class:`Onsets`).
- :func:`envelope_near` — an envelope's peak near given times (a stem's word on the mix's onsets).
- :func:`strongest_apart` — the strongest events no two closer than a gap (onsets, thinning).
- :func:`estimate_tempo` / :func:`local_tempo` / :func:`track_beats` — the song's tempo (BPM),
  the tempo at each moment (a song can change tempo) and beat times (:class:`TempoMap`).
- :func:`pulse_clarity` / :func:`envelope_contrast` / :func:`spectral_change` — whether an
  envelope has a beat, peaks that stand out, and whether the sound changes at all (stationary
  noise has none of the three).
- :func:`onset_pitches` — the dominant pitch (MIDI) right after each onset, by harmonic summation.
- :func:`onset_spectra` / :func:`onset_similarity` / :func:`onset_intervals` — how each onset
  sounds; how much like the previous one (a repeat or a change of note), and by how many
  semitones its partials moved (the melody's contour): what lanes follow.
- :func:`new_partials` — how much of the spectrum's tonal peaks right after each onset are new
  (a picked note brings new partials; a drum hit over a held chord does not).
- :func:`partial_rise` — how much an onset's own partials rise across it (a note picked again
  dips and rises; a held chord under a drum hit does not).
- :func:`sixteenth_slots` / :func:`repeat_consensus` — onsets on the 16th grid of the beats, and
  their scores lowered where the bars that sound the same do not repeat them.
- :func:`beat_phase` / :func:`snap_to_grid` — where times fall between the beats; onsets and
  beats moved onto the grid fitted to them where the music is on one.
- :func:`triplet_feel` — the beats where the music divides the beat in three (a shuffle).
- :func:`alternate_pulses` — every other pulse, the parity the onsets favour (which of the
  beats and the 8ths between them a charter counts as the beat).
- :func:`ring_durations` — how long each onset's pitch keeps sounding (sustain candidates).
- :func:`transcribe` / :func:`basic_pitch_session` — polyphonic notes with basic-pitch's ONNX
  model. Not used by the default charting (see below); ``benchmarks/chart_quality --basic-pitch``
  measures it.

Why this design (measured on real songs, see ``benchmarks/chart_quality``): a log-compressed mel
flux of the whole mix, peak-picked at a global threshold, finds the onsets a guitar charter charts
far better than basic-pitch's notes (Expert F 0.73 vs 0.35 at ±50 ms), and the whole charting
takes ~0.8-1.0 s CPU per 3 minutes of audio, imports included, where basic-pitch's inference alone
takes ~4.4 s on this 2-core machine. It imports nothing heavy: soxr resamples, the mel filterbank
and the smoothing filters are NumPy (``librosa.filters`` would cost ~2 s and ``scipy.signal``
~1.5 s CPU per process, ``scipy.ndimage`` ~0.4 s). librosa's default peak picking (a local-mean
threshold) drops fast runs of equal 16th notes and scores 0.48. The pitch at each onset only has
to order lanes, which harmonic summation over the same STFT does for a few milliseconds.
"""
from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ANALYSIS_SR", "HOP_LENGTH", "N_FFT", "FRAME_RATE", "MIDI_RANGE", "NotesError",
    "Spectrogram", "Onsets", "TempoMap", "BeatPhase", "Snapped", "PitchedNote",
    "analysis_spectrogram", "onset_strength", "detect_onsets", "envelope_near", "strongest_apart",
    "estimate_tempo", "local_tempo", "track_beats", "onset_pitches", "onset_spectra",
    "onset_similarity", "onset_intervals", "ring_durations", "transcribe", "basic_pitch_session",
    "mel_filterbank", "pulse_clarity", "envelope_contrast", "spectral_change", "new_partials",
    "partial_rise", "sixteenth_slots", "repeat_consensus", "alternate_pulses", "beat_phase",
    "snap_to_grid", "triplet_feel",
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
#: Pitches the salience search considers: E1 (low bass string) .. C7 (top of a guitar solo).
MIDI_RANGE = (28, 96)
#: :func:`local_tempo` reads the onset envelope's periodicity in windows of TEMPO_WINDOW_S
#: seconds, one every TEMPO_HOP_S, ...
TEMPO_WINDOW_S = 8.0
TEMPO_HOP_S = 1.0
#: ... at beat periods within TEMPO_RANGE times the song's (a change of up to 40 % either way;
#: a song that goes to half or double time is counted on at its own tempo), TEMPO_STEP apart
#: (relative) ...
TEMPO_RANGE = 1.4
TEMPO_STEP = 0.0025
#: ... and follows the best path through them that pays TEMPO_CHANGE_COST for each change
#: (in windows' autocorrelations, each at most 1) and TEMPO_DRIFT_COST per unit of log-tempo
#: changed: a tempo changes for a section, not for a bar. On the 8 human-charted songs of
#: benchmarks/chart_quality (each charted at one tempo) the path stays within 0.5 % of the
#: song's tempo throughout; synthetic songs that change from 110 to 150 BPM, 140 to 105 or 100
#: to 130 are followed to the window of the change.
TEMPO_CHANGE_COST = 2.0
TEMPO_DRIFT_COST = 8.0


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


@dataclass(frozen=True, eq=False)
class TempoMap:
    """The beat grid: beat times in seconds (ascending; they follow the tempo where it changes,
    :func:`local_tempo`) and the song's tempo in BPM (:func:`estimate_tempo`)."""

    bpm: float
    beats: np.ndarray

    @property
    def beat_s(self) -> float:
        """Seconds per beat at the song's tempo (a beat's own length: ``np.diff(beats)``)."""
        return 60.0 / self.bpm


@dataclass(frozen=True, eq=False)
class BeatPhase:
    """Where times fall on a beat grid (:func:`beat_phase`): the beat each follows (``beat``,
    an index; the first before the grid, the last but one after it), the beats since it
    (``phase``, fractional; outside the grid it extrapolates) and that beat's length in seconds
    (``period``). Arrays shaped like the times."""

    beat: np.ndarray
    phase: np.ndarray
    period: np.ndarray


@dataclass(frozen=True, eq=False)
class Snapped:
    """What :func:`snap_to_grid` gives: onset times and beat times (seconds), each moved onto
    the grid fitted around it where the music is on one."""

    times: np.ndarray
    beats: np.ndarray


@dataclass(frozen=True)
class PitchedNote:
    """A transcribed note: start and length in seconds, MIDI pitch, amplitude 0..1."""

    t: float
    dur: float
    pitch: int
    amplitude: float


def _mono_at_analysis_rate(y: np.ndarray, sr: int) -> np.ndarray:
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
    y = _mono_at_analysis_rate(y, sr)
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


def onset_strength(spec: Spectrogram, *, n_mels: int = 128, lag: int = 2) -> np.ndarray:
    """Log-mel spectral flux, normalised so its 99th percentile is 1.

    The positive change of compressed mel-band magnitudes (see :data:`COMPRESSION`) between frame
    ``k - lag`` and ``k``, averaged over bands. A lag of two frames (23 ms) follows the attack of a
    picked or strummed note better than one. Normalising by a high percentile rather than the
    maximum keeps one accidental spike (a crash, a click) from shrinking every other onset below
    threshold.

    Returns
    -------
    np.ndarray [shape=(spec.n_frames,), dtype=float32]

    Examples
    --------
    >>> sr = ANALYSIS_SR
    >>> y = np.zeros(sr, np.float32); y[sr // 2:sr // 2 + 200] = 1.0   # a burst at 0.5 s
    >>> env = onset_strength(analysis_spectrogram(y, sr))
    >>> abs(int(np.argmax(env)) / FRAME_RATE - 0.5) < 0.03
    True
    """
    bands = np.sqrt(mel_filterbank(n_mels) @ (spec.magnitude ** 2))
    log_bands = np.log1p(COMPRESSION * bands / max(float(bands.max()), 1e-12))
    flux = np.zeros(spec.n_frames, np.float32)
    if spec.n_frames > lag:
        flux[lag:] = np.maximum(0.0, log_bands[:, lag:] - log_bands[:, :-lag]).mean(axis=0)
    # The last frames' windows run into the padding past the end: a cut-off track is no attack.
    flux[-(N_FFT // (2 * HOP_LENGTH)):] = 0.0
    # The 99th percentile is a loud onset in music; with fewer onsets than 1 % of the frames
    # (a lone note) it is noise, so the scale never goes under a tenth of the maximum.
    scale = max(float(np.percentile(flux, 99)), 0.1 * float(flux.max())) if flux.size else 0.0
    return flux / scale if scale > 0 else flux


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


def _gaussian(sigma: float) -> np.ndarray:
    """A unit-sum Gaussian kernel of standard deviation ``sigma`` samples, +-4 sigma wide."""
    x = np.arange(-int(4 * sigma + 0.5), int(4 * sigma + 0.5) + 1)
    kernel = np.exp(-0.5 * (x / max(sigma, 1e-9)) ** 2)
    return kernel / kernel.sum()


def _smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``kernel``, same length, the ends mirrored (as scipy.ndimage does,
    without its ~0.4 s import)."""
    pad = kernel.size // 2
    if x.size <= pad:
        return np.full_like(x, x.mean())
    padded = np.pad(x, (pad, kernel.size - 1 - pad), mode="symmetric")
    return np.convolve(padded, kernel[::-1], mode="valid")


def _autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    n = x.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    return np.fft.irfft(spectrum * np.conj(spectrum), size)[:max_lag]


def _pulse_part(env: np.ndarray, frame_rate: float) -> np.ndarray:
    """The onset envelope's fast part, whose periodicity is the beat: peaks widened to ~20 ms
    (a sharp click's autocorrelation peak is narrower than a frame, so whole-frame lags would miss
    it) and the slow loudness trend removed, so sections of different density do not dominate."""
    env = _smooth(env, _gaussian(0.01 * frame_rate))
    width = max(3, int(frame_rate))
    return env - _smooth(env, np.full(width, 1.0 / width))


def _pulse_autocorrelation(env: np.ndarray, frame_rate: float, max_lag: int) -> np.ndarray:
    """Autocorrelation (lags 0..max_lag-1, lag 0 = 1, all 0 for a flat envelope) of
    :func:`_pulse_part`."""
    env = _pulse_part(env, frame_rate)
    ac = _autocorrelation(env, min(max_lag, env.size))
    return ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)


def estimate_tempo(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                   min_bpm: float = 100.0, max_bpm: float = 220.0,
                   prior_bpm: float = 150.0) -> float:
    """Global tempo (BPM) of the charting beat, from the autocorrelation of the onset envelope.

    The strongest periodicity between ``min_bpm / 2`` and ``max_bpm`` wins, its autocorrelation
    weighted by a broad log-normal preference (one octave wide) around ``prior_bpm``; a tempo
    below ``min_bpm`` is then doubled. ``min_bpm..max_bpm`` is the range of the beat rhythm-game
    charts count in: a fast song in its fast pulse (a 190 BPM thrash song is charted at 190, not
    in its 95 BPM half-time feel), a slow one in double time, so the difficulty rules of
    :mod:`analyzer.charting`, which are in beats, mean the same everywhere. The peak is refined
    with a parabola, so the tempo is not quantised to whole frames.

    Examples
    --------
    >>> env = np.zeros(3000); env[::50] = 1.0          # a click every 0.5 s at 100 frames/s
    >>> round(estimate_tempo(env, frame_rate=100.0))
    120
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.ndim != 1 or env.size < 4:
        raise NotesError("envelope too short to estimate a tempo")
    lo = max(1, int(np.floor(60.0 / max_bpm * frame_rate)))
    hi = int(np.ceil(2 * 60.0 / min_bpm * frame_rate))
    ac = _pulse_autocorrelation(env, frame_rate, hi + 2)
    hi = min(hi, ac.size - 2)
    if ac[0] <= 0 or hi <= lo + 1:
        return float(prior_bpm)
    cand = np.arange(lo, hi + 1)
    score = ac[cand] * np.exp(-0.5 * np.log2(60.0 * frame_rate / cand / prior_bpm) ** 2)
    best = int(cand[np.argmax(score)])
    lag = float(best)
    a, b, c = ac[best - 1], ac[best], ac[best + 1]  # parabolic refinement of the peak
    if a - 2 * b + c < 0:
        lag += float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5))
    bpm = 60.0 * frame_rate / lag
    while bpm < min_bpm:
        bpm *= 2.0
    return bpm


def pulse_clarity(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                  min_bpm: float = 50.0, max_bpm: float = 220.0) -> float:
    """How clearly the onsets repeat at a beat: the highest autocorrelation of the onset
    envelope's fast part (see :func:`estimate_tempo`) at a beat period of ``min_bpm..max_bpm``,
    0..1 (1: a strictly periodic pulse).

    Songs score 0.4-0.76 (the 8 songs of ``benchmarks/chart_quality``), a 120 BPM riff 0.58,
    a song under white noise as loud as itself 0.28; stationary noise scores ~0.04-0.1
    (the chance correlations of a random envelope), as do onsets at random times.

    Examples
    --------
    >>> env = np.zeros(3000); env[::50] = 1.0          # a click every 0.5 s at 100 frames/s
    >>> pulse_clarity(env, frame_rate=100.0) > 0.9
    True
    >>> pulse_clarity(np.random.default_rng(0).random(3000), frame_rate=100.0) < 0.15
    True
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.ndim != 1:
        raise NotesError(f"envelope must be one-dimensional, got shape {env.shape}")
    lo = max(1, int(np.floor(60.0 / max_bpm * frame_rate)))
    hi = int(np.ceil(60.0 / min_bpm * frame_rate))
    ac = _pulse_autocorrelation(env, frame_rate, hi + 1) if env.size > 4 else np.zeros(0)
    return float(max(0.0, ac[lo:hi + 1].max())) if ac.size > lo else 0.0


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


def local_tempo(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                bpm: float | None = None) -> np.ndarray:
    """The tempo at each frame (BPM), for songs that change tempo.

    The onset envelope's fast part (:func:`_pulse_part`, as :func:`estimate_tempo` reads it) is
    cut into Hann windows
    of :data:`TEMPO_WINDOW_S`; each window scores every beat period within
    :data:`TEMPO_RANGE` of the song's tempo (``bpm``, else :func:`estimate_tempo`) by its
    autocorrelation at one and at two periods (two periods tell a beat from a syncopated figure:
    a 3+3+2 riff repeats every 2.67 8ths, but a bar only at whole beats). The
    autocorrelation is read from the window's power spectrum, so periods between whole frames
    score as they should (interpolating lags pulls the tempo towards whole-frame periods, ~1 %).
    The tempo is the best path through the windows' scores, each change paying
    :data:`TEMPO_CHANGE_COST` plus :data:`TEMPO_DRIFT_COST` per unit of log-tempo (Viterbi).

    Parameters
    ----------
    envelope : np.ndarray [shape=(n,)]
        Onset strength, :func:`onset_strength`.
    frame_rate : float
        Frames per second of ``envelope`` (Hz).
    bpm : float, optional
        The song's tempo, the middle of the range searched.

    Returns
    -------
    np.ndarray [shape=(n,)]
        BPM at each frame; constant for a song at one tempo.

    Examples
    --------
    >>> env = np.zeros(6000)                     # clicks at 120 BPM for 30 s, then 150 BPM
    >>> env[np.r_[np.arange(0, 3000, 50), np.arange(3000, 6000, 40)]] = 1.0
    >>> tempo = local_tempo(env, frame_rate=100.0)
    >>> int(round(tempo[1000])), int(round(tempo[5000]))
    (120, 150)
    """
    env = np.asarray(envelope, dtype=np.float64)
    if bpm is None:
        bpm = estimate_tempo(env, frame_rate=frame_rate)
    x = _pulse_part(env, frame_rate)
    reach = int(np.log(TEMPO_RANGE) / TEMPO_STEP)
    steps = np.arange(-reach, reach + 1)
    periods = 60.0 * frame_rate / bpm * np.exp(steps * TEMPO_STEP)
    window = np.hanning(max(4, int(TEMPO_WINDOW_S * frame_rate)))
    size = 1 << int(np.ceil(np.log2(2 * window.size)))
    # Autocorrelation at fractional lags: sum over the power spectrum of cos(2 pi f lag).
    bins = np.arange(size // 2 + 1) / size
    cosines = 0.5 * (np.cos(2 * np.pi * np.outer(periods, bins))
                     + np.cos(4 * np.pi * np.outer(periods, bins)))
    hop = max(1, int(TEMPO_HOP_S * frame_rate))
    centres = np.arange(0, max(1, x.size), hop)
    scores = np.zeros((centres.size, periods.size))
    for i, centre in enumerate(centres):
        start = centre - window.size // 2
        a, b = max(0, start), min(x.size, start + window.size)
        power = np.abs(np.fft.rfft(x[a:b] * window[a - start:b - start], size)) ** 2
        power[1:-1] *= 2.0                               # the negative frequencies
        if power.sum() > 0:
            scores[i] = cosines @ power / power.sum()
    # Viterbi over (window, period).
    moves = np.abs(steps[:, None] - steps[None, :])     # [to, from]
    change = -(TEMPO_CHANGE_COST * (moves > 0) + TEMPO_DRIFT_COST * TEMPO_STEP * moves)
    total, back = scores[0].copy(), np.zeros(scores.shape, np.int64)
    for i in range(1, centres.size):
        options = total[None, :] + change
        back[i] = np.argmax(options, axis=1)
        total = options[np.arange(steps.size), back[i]] + scores[i]
    path = np.empty(centres.size, np.int64)
    path[-1] = int(np.argmax(total))
    for i in range(centres.size - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    # Each frame takes its nearest window's tempo.
    nearest = np.clip(np.round(np.arange(env.size) / hop).astype(np.int64), 0, centres.size - 1)
    return 60.0 * frame_rate / periods[path][nearest]


def track_beats(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                bpm: float | None = None, tightness: float = 100.0) -> TempoMap:
    """Beat times by dynamic programming (Ellis 2007, the method of ``librosa.beat``) at the
    tempo of each moment (:func:`local_tempo`), or at a constant ``bpm``.

    Every frame's best score is its onset strength plus the best score of a previous beat between
    half and twice the local period back, penalised by ``tightness * log(gap / period)**2``; the
    beats are read back from the best frame of the last period. Beats before the first or after
    the last onset are dropped.

    Returns
    -------
    TempoMap
        The song's tempo (:func:`estimate_tempo`, or ``bpm``) and the beats; an empty ``beats``
        array when the envelope has no onsets at all.

    Examples
    --------
    >>> env = np.zeros(3000); env[20::50] = 1.0         # clicks every 0.5 s from 0.2 s
    >>> tm = track_beats(env, frame_rate=100.0)
    >>> round(tm.bpm), tm.beats[:3]
    (120, array([0.2, 0.7, 1.2]))
    """
    env = np.asarray(envelope, dtype=np.float64)
    steady = bpm is not None
    bpm = bpm if steady else estimate_tempo(env, frame_rate=frame_rate)
    # Beats span the music: from the first to the last frame that is at least a tenth as strong
    # as the envelope's loud frames (a noise floor is not music).
    active = np.flatnonzero(env >= 0.1 * np.percentile(env, 99)) if np.any(env > 0) else []
    if len(active) == 0:
        return TempoMap(float(bpm), np.zeros(0))
    tempo = (np.full(env.size, bpm) if steady
             else local_tempo(env, frame_rate=frame_rate, bpm=bpm))
    period = 60.0 * frame_rate / tempo
    # Local score: the envelope smoothed over +-1/32 of a period (timing jitter of the beat).
    width = max(1, int(round(60.0 * frame_rate / bpm / 32)))
    kernel = np.exp(-0.5 * (np.arange(-2 * width, 2 * width + 1) / width) ** 2)
    local = np.convolve(env / (env.std() or 1.0), kernel, mode="same")
    n = env.size
    # Each distinct period (a constant song has one): the gaps a beat may follow its predecessor
    # by, and their penalties, reversed to match the slice of predecessors t - g_max .. t - g_min.
    distinct, which = np.unique(period, return_inverse=True)
    rules = []
    for p in distinct:
        gaps = np.arange(max(1, int(round(p / 2))), int(round(2 * p)) + 1)
        rules.append((int(gaps[0]), int(gaps[-1]), (-tightness * np.log(gaps / p) ** 2)[::-1]))
    score = local.copy()
    back = np.full(n, -1, np.int64)
    for t in range(1, n):
        g_min, g_max, penalty = rules[which[t]]
        if t < g_min:
            continue
        start = max(0, t - g_max)
        candidates = score[start:t - g_min + 1] + penalty[penalty.size - (t - g_min + 1 - start):]
        k = int(np.argmax(candidates))
        if candidates[k] > 0:
            score[t] += candidates[k]
            back[t] = start + k
    tail = int(np.ceil(period[-1]))
    t = n - tail + int(np.argmax(score[-tail:])) if n > tail else int(np.argmax(score))
    beats = []
    while t >= 0:
        beats.append(t)
        t = back[t]
    beats = np.array(beats[::-1], dtype=np.float64)
    beats = beats[(beats >= active[0] - width) & (beats <= active[-1] + width)]
    return TempoMap(float(bpm), beats / frame_rate)


def _salience_matrix(pitches: np.ndarray, n_harmonics: int = 6, decay: float = 0.8) -> np.ndarray:
    """Weights (pitches, bins): harmonic ``h`` of each pitch's fundamental counts ``decay**(h-1)``,
    spread linearly over the two nearest bins."""
    n_bins = N_FFT // 2 + 1
    w = np.zeros((pitches.size, n_bins), np.float32)
    f0 = 440.0 * 2.0 ** ((pitches - 69) / 12.0)
    for h in range(1, n_harmonics + 1):
        pos = h * f0 * N_FFT / ANALYSIS_SR
        lo = np.floor(pos).astype(int)
        frac = pos - lo
        ok = lo + 1 < n_bins
        rows = np.flatnonzero(ok)
        w[rows, lo[ok]] += decay ** (h - 1) * (1 - frac[ok])
        w[rows, lo[ok] + 1] += decay ** (h - 1) * frac[ok]
    return w


def _after_onsets(spec: Spectrogram, times: np.ndarray, settle_s: float, window_s: float,
                  bins=slice(None)) -> np.ndarray:
    """The log-magnitude spectrum (``bins``, onsets) averaged over ``window_s`` seconds starting
    ``settle_s`` after each onset: the note's sound past its pick noise."""
    first = np.round((times + settle_s) * FRAME_RATE).astype(int)
    width = max(1, int(round(window_s * FRAME_RATE)))
    frames = np.clip((first[:, None] + np.arange(width)[None, :]).ravel(), 0, spec.n_frames - 1)
    cells = spec.log_magnitude(bins, frames)
    return cells.reshape(cells.shape[0], times.size, width).mean(axis=2)


def onset_pitches(spec: Spectrogram, times: np.ndarray, *, settle_s: float = 0.03,
                  window_s: float = 0.05,
                  stickiness: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """The dominant pitch just after each onset, by harmonic summation.

    The spectrum is averaged over ``window_s`` seconds starting ``settle_s`` after the onset (past
    the pick noise); each MIDI pitch in :data:`MIDI_RANGE` scores the weighted sum of its first six
    harmonics; the best one wins, unless the previous note's pitch scores within ``stickiness``
    (a fraction) of it, which then repeats.

    Returns
    -------
    pitches : np.ndarray [shape=(n,), dtype=int]
        MIDI numbers.
    salience : np.ndarray [shape=(n,)]
        The winning score (comparable within one recording).

    Examples
    --------
    >>> sr = ANALYSIS_SR; t = np.arange(sr) / sr
    >>> y = sum(np.sin(2 * np.pi * 196.0 * h * t) / h for h in (1, 2, 3))   # G3 = MIDI 55
    >>> onset_pitches(analysis_spectrogram(y, sr), np.array([0.2]))[0]
    array([55])
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    pitches = np.arange(MIDI_RANGE[0], MIDI_RANGE[1] + 1)
    sal = _salience_matrix(pitches) @ _after_onsets(spec, times, settle_s, window_s)
    best = np.argmax(sal, axis=0)
    # Continuity: when the previous note's pitch scores within ``stickiness`` of the best, it is
    # the same note again (a chugged chord's partials shift a little from hit to hit).
    for i in range(1, times.size):
        if sal[best[i - 1], i] >= (1.0 - stickiness) * sal[best[i], i]:
            best[i] = best[i - 1]
    return pitches[best].astype(np.int64), sal[best, np.arange(times.size)]


def onset_spectra(spec: Spectrogram, times: np.ndarray, *, settle_s: float = 0.03,
                  window_s: float = 0.05, max_hz: float = 4300.0) -> np.ndarray:
    """How each onset's note sounds: the log-magnitude spectrum below ``max_hz``, averaged over
    ``window_s`` seconds from ``settle_s`` after the onset (past the pick noise, as
    :func:`onset_pitches` reads it). What :func:`onset_similarity` and :func:`onset_intervals`
    compare; computed once, any subset of its columns (the notes a difficulty keeps) is again
    valid input for them.

    Returns
    -------
    np.ndarray [shape=(bins, n)]
        ``bins`` STFT bins from 0 Hz up to ``max_hz``.
    """
    times = np.asarray(times, dtype=np.float64)
    return _after_onsets(spec, times, settle_s, window_s,
                         bins=slice(0, int(max_hz * N_FFT / ANALYSIS_SR) + 1))


def onset_similarity(spectra: np.ndarray, *, partial_bins: int = 12) -> np.ndarray:
    """How much each onset sounds like the one before, -1..1.

    Each onset's spectrum (``spectra``, from :func:`onset_spectra`) is compared with the
    previous onset's twice, and the two cosine similarities are averaged:

    - the spectrum less its mean: its broad shape (a palm-muted chug against an open chord, a
      band that drops out);
    - the spectrum less its running mean over ``±partial_bins`` bins (±260 Hz): where its
      partials sit (two notes of one timbre differ here only).

    A chord struck again sounds the same whatever else the band plays over it; a new chord or
    note does not. On a mix this tells a repeat from a change where the dominant pitch cannot
    (a guitar's low notes are a few bins apart, and the bass and a second guitar shift the
    winner). Measured on the 8 songs of ``benchmarks/chart_quality`` at the human Expert onsets:
    it marks "same lane as the previous note" with AUC 0.64-0.80 on 7 songs (0.51 on one whose
    charter moves the lane on most repeats), where the dominant pitch's "unchanged" is right no
    more often than chance.

    Returns
    -------
    np.ndarray [shape=(n,)]
        The first onset, with none before it, gets 0.

    Examples
    --------
    >>> sr = ANALYSIS_SR; t = np.arange(sr // 4) / sr
    >>> note = lambda f: (sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 7))
    ...                   * np.exp(-6 * t))
    >>> hit = np.random.default_rng(0).standard_normal(t.size) * np.exp(-30 * t)   # a drum
    >>> y = np.concatenate([note(110), note(110), note(110) + hit, note(147)])  # A2 A2 A2 D3
    >>> sound = onset_spectra(analysis_spectrogram(y, sr), np.arange(4) * 0.25)
    >>> np.round(onset_similarity(sound), 1)
    array([0. , 1. , 0.8, 0.3])
    """
    out = np.zeros(spectra.shape[1])
    if out.size < 2:
        return out
    for centred in (spectra - spectra.mean(axis=0, keepdims=True),
                    spectra - _running_mean(spectra, partial_bins)):
        norm = np.maximum(np.linalg.norm(centred, axis=0), 1e-9)
        out[1:] += np.sum(centred[:, 1:] * centred[:, :-1], axis=0) / (norm[1:] * norm[:-1]) / 2
    return out


def onset_intervals(spectra: np.ndarray, *, fmin: float = 100.0, fmax: float = 4000.0,
                    steps_per_semitone: int = 3, max_semitones: float = 7.0) -> np.ndarray:
    """The interval from each onset's note to the next one's, in semitones, from how far the
    pattern of partials moved.

    Each onset's spectrum (``spectra``, from :func:`onset_spectra`, reaching at least ``fmax``)
    is resampled onto a log-frequency axis (``fmin``..``fmax``, ``steps_per_semitone`` points a
    semitone), its running mean over ±2 semitones taken out and what stays above it kept: the
    partials. The interval is the shift (within ±``max_semitones``; a wider leap reads as a
    smaller one) at which the previous onset's partials best line up with this one's. A
    transposed chord or riff moves all its partials by the same interval, whatever its root, so
    this follows a melody on a mix where the dominant pitch sticks to the bass or a second
    guitar. Measured on the 8 songs of ``benchmarks/chart_quality`` at the human Expert onsets:
    where the human lane moves, the interval's sign says which way on 53-77 % of the moves it
    gives a direction for (39-94 % of them), and the lanes it makes move the human's way on
    0.476 of consecutive notes on the development songs against 0.429 with the pitch estimate
    (see ``analyzer.charting``).

    Returns
    -------
    np.ndarray [shape=(n,)]
        Semitones (a multiple of ``1 / steps_per_semitone``; up positive); 0 for the first
        onset and where either note has no partials.

    Examples
    --------
    >>> sr = ANALYSIS_SR; t = np.arange(sr // 4) / sr
    >>> chord = lambda f: sum(np.sin(2 * np.pi * f * k * h * t) / h
    ...                       for k in (1, 1.5) for h in range(1, 7))   # a power chord
    >>> y = np.concatenate([chord(110.0), chord(147.0), chord(123.5), chord(123.5)])
    >>> onset_intervals(onset_spectra(analysis_spectrogram(y, sr), np.arange(4) * 0.25))
    array([ 0.,  5., -3.,  0.])
    """
    out = np.zeros(spectra.shape[1])
    if out.size < 2:
        return out
    to_log = _log_frequency_matrix(fmin, fmax, steps_per_semitone)
    if spectra.shape[0] < to_log.shape[1]:
        raise NotesError(f"onset spectra stop below {fmax:g} Hz")
    s = to_log @ spectra[:to_log.shape[1]]
    partials = np.maximum(s - _running_mean(s, 2 * steps_per_semitone), 0.0)
    before, after = partials[:, :-1], partials[:, 1:]
    n = partials.shape[0]
    lags = np.arange(-int(max_semitones * steps_per_semitone),
                     int(max_semitones * steps_per_semitone) + 1)
    match = np.stack([np.sum(before[max(0, -lag):n - max(0, lag)]
                             * after[max(0, lag):n - max(0, -lag)], axis=0) for lag in lags])
    # No partials on one side (silence, noise): no interval rather than the first lag tried.
    best = np.where(match.max(axis=0) > 0, lags[np.argmax(match, axis=0)], 0)
    out[1:] = best / steps_per_semitone
    return out


@functools.lru_cache(maxsize=4)
def _log_frequency_matrix(fmin: float, fmax: float, steps_per_semitone: int) -> np.ndarray:
    """Linear interpolation (log-frequency points, STFT bins) from the STFT's bins onto points
    ``steps_per_semitone`` a semitone apart from ``fmin`` to ``fmax`` Hz."""
    n = int(12 * steps_per_semitone * np.log2(fmax / fmin)) + 1
    pos = fmin * 2.0 ** (np.arange(n) / (12 * steps_per_semitone)) * N_FFT / ANALYSIS_SR
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    out = np.zeros((n, int(lo.max()) + 2), np.float32)
    out[np.arange(n), lo] = 1 - frac
    out[np.arange(n), lo + 1] = frac
    return out


def _running_mean(x: np.ndarray, half_width: int) -> np.ndarray:
    """Mean of ``x`` (rows, columns) over ``±half_width`` rows, the edge rows repeated."""
    width = 2 * half_width + 1
    padded = np.pad(x, ((half_width, half_width), (0, 0)), mode="edge")
    running = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    return (running[width:] - running[:-width]) / width


def partial_rise(spec: Spectrogram, times: np.ndarray, spectra: np.ndarray, *,
                 partial_bins: int = 12, top: float = 0.1) -> np.ndarray:
    """How much each onset's own partials rise across it (log-magnitude units).

    The partials are the bins of the onset's spectrum (``spectra``, from :func:`onset_spectra`)
    standing furthest above its running mean over ``±partial_bins`` bins (the ``top`` fraction).
    Their mean log magnitude 12-35 ms after the onset, less the same 58-23 ms before it: a note
    picked again dips and rises, a chord held while a drum hits over it does not (the drum lifts
    every bin a little, its partials no more).

    Returns
    -------
    np.ndarray [shape=(n,)]

    Examples
    --------
    >>> sr = ANALYSIS_SR; t = np.arange(3 * sr) / sr
    >>> chord = sum(np.sin(2 * np.pi * f * h * t) * 0.6 ** h for f in (110, 165) for h in range(1, 6))
    >>> level = np.exp(-1.5 * np.where(t < 2, t, t - 2))            # struck at 0 s, again at 2 s
    >>> hit = np.random.default_rng(0).standard_normal(t.size) * np.exp(-60 * (t - 1)) * (t >= 1)
    >>> y = (0.2 * chord * level + 0.1 * hit).astype(np.float32)    # a drum over it at 1 s
    >>> spec = analysis_spectrogram(y, sr); onsets = np.array([1.0, 2.0])
    >>> partial_rise(spec, onsets, onset_spectra(spec, onsets)).round(1)
    array([0.6, 2.8])
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return np.zeros(0)
    bins = slice(0, spectra.shape[0])
    after = _after_onsets(spec, times, 0.012, 0.023, bins=bins)
    before = _after_onsets(spec, times, -0.058, 0.035, bins=bins)
    standing = spectra - _running_mean(spectra, partial_bins)
    partials = standing >= np.quantile(standing, 1.0 - top, axis=0, keepdims=True)
    return ((after - before) * partials).sum(axis=0) / partials.sum(axis=0)


def new_partials(spec: Spectrogram, frames: np.ndarray, *, before: tuple[int, int] = (-5, -1),
                 after: tuple[int, int] = (1, 4), margin: float = 1.0,
                 neighbourhood: int = 2) -> np.ndarray:
    """The fraction of the tonal peaks just after each onset that were not there just before.

    The compressed spectrum (``log1p(100 * magnitude / max)``) is averaged over the frames
    ``before`` (``frame + before[0]`` up to, not including, ``frame + before[1]``: ~58-23 ms
    earlier) and ``after`` (~12-35 ms later, past the pick noise). A peak is a bin that is the
    largest within ``±neighbourhood`` bins and at least ``margin`` (log units, ~9 dB) above its
    frame's median bin; a peak after the onset is new unless a peak before sat within one bin.

    A picked or strummed note starts new partials (a change of pitch, or a chord struck again
    after its partials died down); a drum hit, a cymbal or a second instrument sounding
    over a held chord adds broadband energy under the chord's old peaks. Measured on the 8 songs
    of ``benchmarks/chart_quality`` (onsets of the mix, labelled by the isolated guitar stem): an
    onset is the guitar's with AUC 0.60-0.84 given its onset strength, on every song.

    Parameters
    ----------
    spec : Spectrogram
    frames : np.ndarray [shape=(n,), dtype=int]
        Onset frames (``times * FRAME_RATE``).

    Returns
    -------
    np.ndarray [shape=(n,)]
        0..1 (0 also where no peak follows the onset).

    Examples
    --------
    >>> sr = ANALYSIS_SR; t = np.arange(2 * sr) / sr
    >>> y = np.sin(2 * np.pi * 220.0 * t) + (t > 1.0) * np.sin(2 * np.pi * 330.0 * t)
    >>> new_partials(analysis_spectrogram(y, sr), np.array([86]))   # 330 Hz starts at 1 s
    array([0.5])
    """
    frames = np.asarray(frames, dtype=np.int64)
    if frames.size == 0:
        return np.zeros(0)
    top = max(float(spec.magnitude.max()), 1e-12)

    def mean_spectrum(lo: int, hi: int) -> np.ndarray:
        total = np.zeros((spec.magnitude.shape[0], frames.size), np.float32)
        for offset in range(lo, hi):
            cols = np.clip(frames + offset, 0, spec.n_frames - 1)
            total += np.log1p(spec.magnitude[:, cols] * np.float32(COMPRESSION / top))
        return total / (hi - lo)                                            # (bins, n)

    def peaks(s: np.ndarray) -> np.ndarray:
        padded = np.pad(s, ((neighbourhood, neighbourhood), (0, 0)), mode="edge")
        local_max = s.copy()
        for shift in range(2 * neighbourhood + 1):
            np.maximum(local_max, padded[shift:shift + s.shape[0]], out=local_max)
        middle = s.shape[0] // 2
        median = np.partition(s, middle, axis=0)[middle]
        return (s == local_max) & (s >= median + margin)

    old, new = peaks(mean_spectrum(*before)), peaks(mean_spectrum(*after))
    near_old = old.copy()
    near_old[1:] |= old[:-1]
    near_old[:-1] |= old[1:]
    count = new.sum(axis=0)
    return np.where(count > 0, (new & ~near_old).sum(axis=0) / np.maximum(count, 1), 0.0)


def beat_phase(times: np.ndarray, beats: np.ndarray) -> BeatPhase:
    """Each time's place between the beats around it (``beats``: at least 2, ascending, s).

    Examples
    --------
    >>> bp = beat_phase(np.array([0.25, 1.2]), np.array([0.0, 0.5, 1.0]))
    >>> bp.beat, bp.phase
    (array([0, 1]), array([0.5, 1.4]))
    """
    times = np.asarray(times, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    beat = np.clip(np.searchsorted(beats, times, side="right") - 1, 0, beats.size - 2)
    period = beats[beat + 1] - beats[beat]
    return BeatPhase(beat, (times - beats[beat]) / period, period)


def sixteenth_slots(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """The 16th note of the beat grid nearest each time: ``4 * i + k`` for the ``k``-th 16th
    after beat ``i`` (``k`` = 4 is the next beat's slot); -1 before the first beat or after the
    last.

    Examples
    --------
    >>> sixteenth_slots(np.array([0.1, 0.49, 0.62, 1.2]), np.array([0.0, 0.5, 1.0]))
    array([ 1,  4,  5, -1])
    """
    times = np.asarray(times, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < 2:
        return np.full(times.shape, -1, np.int64)
    at = beat_phase(times, beats)
    inside = (times >= beats[0]) & (times <= beats[-1])
    return np.where(inside, 4 * at.beat + np.round(at.phase * 4).astype(np.int64), -1)


def snap_to_grid(times: np.ndarray, beats: np.ndarray, *, divisions: tuple[int, ...] = (4, 3),
                 tolerance_s: float = 0.035, window_beats: int = 4, on_grid: float = 0.7,
                 inlier_s: float = 0.015, max_spread_s: float = 0.005) -> Snapped:
    """Onset and beat times moved onto the beat grid where the music is on one; elsewhere
    unchanged.

    A tracked beat sits on a frame and jitters by one; an onset too. So the grid is not the
    tracked beats subdivided but a line fitted to the onsets themselves: around each beat
    (``±window_beats``), every onset within ``tolerance_s`` of a grid point (a ``1/d`` of a beat
    for each ``d`` in ``divisions``: 16ths and 8th-note triplets by default) gives its grid
    index and time; a least-squares line through them (refitted on those within ``inlier_s``)
    is the local grid, and the subdivision whose line holds more of the onsets is the one
    played. The music is on a grid there when at least ``on_grid`` of the window's onsets are
    near a grid point and the inliers sit within ``max_spread_s`` of the line (median: about a
    detected onset's own jitter); then each onset of that beat, and the beat itself, within
    ``inlier_s`` of the line moves onto it. Rubato, a drifting tempo, free time or a wrong beat
    track leaves them where they were heard.

    Parameters
    ----------
    times : np.ndarray [shape=(n,)]
        Onset times (seconds, ascending).
    beats : np.ndarray [shape=(m,)]
        Beat times (seconds, ascending).

    Returns
    -------
    Snapped
        ``times`` [shape=(n,)] and ``beats`` [shape=(m,)], snapped where the grid holds them.
        Two onsets can land on one grid point.

    Examples
    --------
    >>> beats = np.arange(0, 20, 0.5) + np.tile([0.0, 0.006, -0.006, 0.0], 10)  # a jittery track
    >>> grid = np.arange(1, 151) * 0.125                    # 16ths at 120 BPM
    >>> times = grid + np.tile([0.004, -0.005, 0.001], 50)  # as detected: +-5 ms
    >>> float(np.abs(snap_to_grid(times, beats).times - grid).max()) < 1e-3
    True
    """
    times = np.asarray(times, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    out, out_beats = times.copy(), beats.copy()
    if beats.size < 2 or times.size == 0:
        return Snapped(out, out_beats)
    at = beat_phase(times, beats)
    grids = []
    for d in divisions:
        phase = at.phase * d                                   # in 1/d beats since the beat
        nearest = np.round(phase)
        grids.append((d, at.beat * d + nearest,                # grid index, 1/d beat units
                      np.abs(phase - nearest) * at.period / d <= tolerance_s))
    each = np.arange(beats.size - 1)
    first = np.searchsorted(at.beat, each, side="left")
    last = np.searchsorted(at.beat, each, side="right")
    lo = np.searchsorted(at.beat, each - window_beats, side="left")
    hi = np.searchsorted(at.beat, each + window_beats, side="right")
    for i in np.flatnonzero(last > first):
        best: tuple[int, np.ndarray, _GridLine] | None = None
        for d, k, near_grid in grids:
            near = near_grid[lo[i]:hi[i]]
            if near.sum() < 6 or near.mean() < on_grid:
                continue
            line = _GridLine.fit(k[lo[i]:hi[i]][near], times[lo[i]:hi[i]][near], inlier_s)
            if (line is not None and line.spread <= max_spread_s
                    and (best is None or line.inliers > best[2].inliers)):
                best = (d, k, line)
        if best is None:
            continue
        d, k, line = best
        grid = line.at(k[first[i]:last[i]])
        moved = np.abs(times[first[i]:last[i]] - grid) <= inlier_s
        out[first[i]:last[i]][moved] = grid[moved]
        if abs(line.at(i * d) - beats[i]) <= inlier_s:
            out_beats[i] = line.at(i * d)
    if np.any(np.diff(out_beats) <= 0):     # never reorders real beats; a guard all the same
        out_beats = beats.copy()
    return Snapped(out, out_beats)


@dataclass(frozen=True)
class _GridLine:
    """A local beat grid, ``time = intercept + slope * slot`` (seconds; slots in 1/d beats), and
    how well the onsets it was fitted to sit on it."""

    intercept: float
    slope: float
    spread: float       # median |residual| of the inliers, seconds
    inliers: int

    def at(self, slots):
        return self.intercept + self.slope * slots

    @classmethod
    def fit(cls, slots: np.ndarray, times: np.ndarray, inlier_s: float) -> _GridLine | None:
        """Least squares, refitted on the points within ``inlier_s`` of the first fit; None with
        fewer than 6 of them or all on one slot. A line, not a quadratic that would follow a
        drifting tempo further: a quadratic bends towards the onsets a beat-tracker slip
        mislabels."""
        intercept, slope = _least_squares_line(slots, times)
        inliers = np.abs(times - intercept - slope * slots) <= inlier_s
        if inliers.sum() < 6:
            return None
        intercept, slope = _least_squares_line(slots[inliers], times[inliers])
        if slope == 0.0:
            return None
        residual = times[inliers] - intercept - slope * slots[inliers]
        return cls(intercept, slope, float(np.median(np.abs(residual))), int(inliers.sum()))


def _least_squares_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the least-squares line through ``(x, y)``; slope 0 if ``x`` is
    constant."""
    dx = x - x.mean()
    var = float(dx @ dx)
    slope = float(dx @ (y - y.mean())) / var if var > 0 else 0.0
    return float(y.mean() - slope * x.mean()), slope


def triplet_feel(times: np.ndarray, weight: np.ndarray, beats: np.ndarray, *,
                 window_beats: int = 4, tolerance_s: float = 0.02,
                 dominance: float = 2.0) -> np.ndarray:
    """Which beats the music divides in three (a shuffle, swung 8ths, 12/8): one flag per beat.

    Around each beat (``±window_beats``), the onsets' ``weight`` near a third of a beat (1/3,
    2/3) is set against their weight near a straight subdivision (1/4, 1/2, 3/4), each within
    ``tolerance_s``; a beat is in triplets where the thirds hold ``dominance`` times as much.
    A 16th note sits a 12th of a beat from a third: 29 ms at 170 BPM, outside the tolerance.

    Parameters
    ----------
    times, weight : np.ndarray [shape=(n,)]
        Onset times (s, ascending) and how much each counts (e.g. its strength).
    beats : np.ndarray [shape=(m,)]
        Beat times (s, ascending).

    Returns
    -------
    np.ndarray [shape=(m,), dtype=bool]
        True for a beat in triplets (all False with fewer than two beats).

    Examples
    --------
    >>> beats = np.arange(16) * 0.5                             # 120 BPM
    >>> swung = np.sort(np.r_[beats, beats + 1 / 3])            # on the beat and 2/3 through
    >>> bool(triplet_feel(swung, np.ones(32), beats).all())
    True
    >>> straight = np.sort(np.r_[beats, beats + 0.25])          # on the beat and the "and"
    >>> bool(triplet_feel(straight, np.ones(32), beats).any())
    False
    """
    times = np.asarray(times, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < 2 or times.size == 0:
        return np.zeros(beats.size, bool)
    at = beat_phase(times, beats)
    phase = at.phase - np.floor(at.phase)
    tol = tolerance_s / at.period

    def near(points):
        return np.any([np.abs(phase - p) <= tol for p in points], axis=0)

    kernel = np.ones(2 * window_beats + 1)
    thirds, straight = (np.convolve(np.bincount(at.beat[mask], weight[mask], beats.size),
                                    kernel, mode="same")
                        for mask in (near((1 / 3, 2 / 3)), near((0.25, 0.5, 0.75))))
    return thirds > dominance * straight + 1e-12


def alternate_pulses(pulses: np.ndarray, times: np.ndarray, weight: np.ndarray, *,
                     window: int = 16, tolerance_s: float = 0.03) -> np.ndarray:
    """Every other pulse: of each pair ``(pulses[2j], pulses[2j + 1])`` the one whose parity
    (even or odd pulses) holds more onset ``weight`` within ``±window / 2`` pairs of ``j``.

    Which of two pulse trains is the beat (the tracked beats or the 8ths between them; every
    other tracked beat when a song is counted at half its tracked tempo): an onset's weight
    counts at the pulse within ``tolerance_s``, the strongest where several are; the decision is
    local, so a tracker that slips half a beat in one section is followed there. Ties keep the
    even pulses.

    Parameters
    ----------
    pulses : np.ndarray [shape=(m,)]
        Pulse times (seconds, ascending).
    times, weight : np.ndarray [shape=(n,)]
        Onset times (seconds, ascending) and their weights (>= 0).
    window : int
        Pairs of pulses the decision looks at around each pair.

    Returns
    -------
    np.ndarray [shape=(m // 2,)]
        One pulse per pair, seconds.

    Examples
    --------
    >>> pulses = np.arange(16) * 0.25                    # 8ths at 120 BPM
    >>> times = np.arange(8) * 0.5 + 0.25                # notes on every odd 8th
    >>> alternate_pulses(pulses, times, np.ones(8), window=4)[:3]
    array([0.25, 0.75, 1.25])
    """
    pulses = np.asarray(pulses, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    if times.shape != weight.shape:
        raise NotesError("times and weight must have the same shape")
    pairs = pulses.size // 2
    at_pulse = np.zeros(pairs * 2)
    if times.size:
        idx = np.clip(np.searchsorted(times, pulses[:pairs * 2]), 1, max(times.size - 1, 1))
        for j in (idx - 1, np.minimum(idx, times.size - 1)):
            near = np.abs(times[j] - pulses[:pairs * 2]) <= tolerance_s
            at_pulse = np.maximum(at_pulse, np.where(near, weight[j], 0.0))
    if pairs == 0:
        return pulses[:0]
    # Sums over the window centred on each pair (np.convolve's "same" is longer than the input
    # when the window is: a short song).
    kernel, lead = np.ones(window), (window - 1) // 2
    even = np.convolve(at_pulse[0::2], kernel)[lead:lead + pairs]
    odd = np.convolve(at_pulse[1::2], kernel)[lead:lead + pairs]
    return np.where(odd > even, pulses[1:pairs * 2:2], pulses[0:pairs * 2:2])


def repeat_consensus(spec: Spectrogram, times: np.ndarray, score: np.ndarray,
                     beats: np.ndarray, *, neighbours: int = 3, weight: float = 0.5,
                     strong: float = 0.5,
                     agreement: tuple[float, float] = (0.5, 0.8)) -> np.ndarray:
    """Onset scores lowered where the bars that repeat this one lack the onset.

    Riffs repeat, and a charter charts a repeated bar the same way each time: in the human
    Expert charts of ``benchmarks/chart_quality`` a 4-beat window's 16th-note pattern overlaps
    (Jaccard) 58-95 % with that of the window that sounds most like it, 33-54 % with a random
    window's; the charts of a global threshold only 55-78 %, onsets near the threshold coming
    and going from one repeat to the next. So each 4-beat window of the beat grid is matched to
    the ``neighbours`` windows that sound most like it (cosine similarity of log-mel energy in
    16 bands per 16th note, at least a bar away). Where the onsets of at least ``strong`` score
    recur in those windows (their mean Jaccard overlap rises from ``agreement[0]`` to
    ``agreement[1]``, the gate ``g`` from 0 to ``weight``), an onset's score becomes
    ``min(score, (1 - g) * score + g * m)``, ``m`` the median of the highest score at the same
    16th of the matched windows: an onset the repeats lack is lowered (at most halved), one they
    hold stays, none is raised. Where bars do not repeat their strong onsets (the random
    synthetic riffs of the tests) the gate stays shut or nearly so: no charted note changes.

    Parameters
    ----------
    spec : Spectrogram
    times : np.ndarray [shape=(n,)]
        Onset times (s), e.g. from :func:`detect_onsets`, weaker than charted ones included (they
        are what a repeat holds at a 16th).
    score : np.ndarray [shape=(n,)]
        Each onset's score (onset strength times the charter's weights; ~1 = a loud onset).
    beats : np.ndarray [shape=(b,)]
        Beat times (s), e.g. :func:`track_beats`.

    Returns
    -------
    np.ndarray [shape=(n,)]
        The scores, none higher than given; unchanged for onsets outside the beats and for
        fewer than ``neighbours + 12`` beats.

    Notes
    -----
    Measured with ``benchmarks/chart_quality`` (threshold 0.35 either way): development songs
    Expert F 0.700 -> 0.703 at 1.30x -> 1.25x the human notes/s, Hard 0.626 -> 0.631, Medium
    0.376 -> 0.377 (a global threshold of 0.37, the same density, scores 0.698); benchmark songs
    Expert 0.735 -> 0.739 at 1.24x -> 1.20x, Hard, Medium and Easy within 0.001. Choosing each
    song's threshold by how consistently its chart repeats scored 0.57-0.67 instead (see the
    README's sixth round). Cost: 0.15-0.17 s CPU for a 198 s song (mostly the log-mel).

    Examples
    --------
    >>> beats = np.arange(33) * 0.5                      # 32 beats, a riff on beats and "and"s
    >>> times = np.sort(np.r_[beats[:-1], beats[:-1] + 0.25, 3.125])   # + one stray 16th
    >>> score = np.where(times == 3.125, 0.5, 0.8)
    >>> spec = Spectrogram(np.ones((N_FFT // 2 + 1, int(17 * FRAME_RATE)), np.float32))
    >>> out = repeat_consensus(spec, times, score, beats)
    >>> float(out[times == 3.125][0]), bool(np.all(out[times != 3.125] == 0.8))
    (0.25, True)
    """
    times = np.asarray(times, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    if times.shape != score.shape or times.ndim != 1:
        raise NotesError("times and score must be one-dimensional and of the same length")
    out = score.copy()
    n_beats = beats.size - 1                      # beat intervals, 4 slots each
    n_windows = n_beats - 3                       # 4-beat windows, one starting at every beat
    if n_windows < neighbours + 8:
        return out
    # Log-mel energy per 16th note in 16 bands (of 128 mel bands): what a window sounds like.
    bands = 16
    log_mel = np.log1p(100.0 * (mel_filterbank() @ spec.magnitude))
    log_mel = log_mel.reshape(bands, -1, log_mel.shape[1]).mean(axis=1)
    edges = beats[:-1, None] + np.diff(beats)[:, None] * np.arange(4) / 4
    edges = np.clip(np.round(np.append(edges.ravel(), beats[-1]) * FRAME_RATE).astype(np.int64),
                    0, spec.n_frames - 1)
    cumulative = np.concatenate([np.zeros((bands, 1)), np.cumsum(log_mel, axis=1)], axis=1)
    length = np.maximum(edges[1:] - edges[:-1], 1)
    per_slot = (cumulative[:, edges[:-1] + length] - cumulative[:, edges[:-1]]) / length
    per_beat = per_slot.T.reshape(n_beats, 4 * bands)
    per_beat = per_beat - per_beat.mean(axis=0)
    windows = np.lib.stride_tricks.sliding_window_view(per_beat, (4, 4 * bands))[:, 0]
    windows = windows.reshape(n_windows, -1)
    windows = windows - windows.mean(axis=1, keepdims=True)
    windows /= np.linalg.norm(windows, axis=1, keepdims=True) + 1e-12
    # The most similar windows, a block of rows at a time: memory stays linear in the song's
    # length (a 30-minute file has ~6000 windows).
    matched = np.empty((n_windows, neighbours), np.int64)
    lag = np.arange(n_windows)
    for lo in range(0, n_windows, 512):
        similarity = windows[lo:lo + 512] @ windows.T
        similarity[np.abs(lag[lo:lo + 512, None] - lag[None, :]) < 4] = -np.inf  # overlaps
        matched[lo:lo + 512] = np.argpartition(-similarity, neighbours, axis=1)[:, :neighbours]
    # The highest score at every 16th, and which windows' strong onsets recur in their matches.
    slot = sixteenth_slots(times, beats)
    at_slot = np.zeros(4 * n_beats + 1)
    np.maximum.at(at_slot, slot[slot >= 0], score[slot >= 0])
    ok = (slot >= 0) & (slot // 4 < n_windows)    # onsets in a window's first beat
    strong_at = np.lib.stride_tricks.sliding_window_view(at_slot[:4 * n_windows + 12] >= strong,
                                                         16)[::4]
    both = (strong_at[:, None, :] & strong_at[matched]).sum(axis=2)
    either = (strong_at[:, None, :] | strong_at[matched]).sum(axis=2)
    overlap = (both / np.maximum(either, 1)).mean(axis=1)
    gate = weight * np.clip((overlap - agreement[0]) / (agreement[1] - agreement[0]), 0.0, 1.0)
    window, k = slot[ok] // 4, slot[ok] % 4
    repeated = np.median(at_slot[4 * matched[window] + k[:, None]], axis=1)
    g = gate[window]
    out[ok] = np.minimum(score[ok], (1.0 - g) * score[ok] + g * repeated)
    return out


def ring_durations(spec: Spectrogram, times: np.ndarray, pitches: np.ndarray, *,
                   floor: float = 0.5, max_s: float = 4.0) -> np.ndarray:
    """How long each note's pitch keeps sounding, seconds.

    The harmonic-summation salience of the note's own pitch is followed from the onset until it
    falls below ``floor`` times its value at the onset or the next onset arrives (capped at
    ``max_s``). The charting step turns rings longer than a beat into sustains.

    Examples
    --------
    >>> sr = ANALYSIS_SR; t = np.arange(2 * sr) / sr
    >>> y = np.where((t > 0.3) & (t < 1.5), np.sin(2 * np.pi * 220.0 * t), 0.0)  # A3, 1.2 s
    >>> ring = ring_durations(analysis_spectrogram(y, sr), np.array([0.3]), np.array([57]))
    >>> abs(float(ring[0]) - 1.2) < 0.05
    True
    """
    times = np.asarray(times, dtype=np.float64)
    pitches = np.asarray(pitches)
    out = np.zeros(times.size)
    if times.size == 0:
        return out
    nxt = np.append(times[1:], spec.duration_s)
    w = _salience_matrix(pitches.astype(np.float64))
    hop = 1.0 / FRAME_RATE
    for i, (t, p_row) in enumerate(zip(times, w)):
        f0 = int(round(t * FRAME_RATE))
        f1 = min(spec.n_frames, int(round(min(nxt[i], t + max_s) * FRAME_RATE)))
        if f1 <= f0 + 2:
            out[i] = max(0.0, (f1 - f0) * hop)
            continue
        bins = np.flatnonzero(p_row)  # the note's own harmonics: a dozen bins of 513
        track = p_row[bins] @ spec.log_magnitude(bins, slice(f0, f1))
        ref = track[: min(4, track.size)].max()
        below = np.flatnonzero(track[2:] < floor * ref)
        out[i] = ((below[0] + 2) if below.size else track.size) * hop
    return out


def transcribe(y: np.ndarray, sr: int, *, onset_threshold: float = 0.5,
               frame_threshold: float = 0.3, min_note_s: float = 0.06,
               session=None) -> tuple[PitchedNote, ...]:
    """Polyphonic notes with basic-pitch's ICASSP-2022 model, run by onnxruntime (no TensorFlow).

    The audio is cut into basic-pitch's 2-second windows overlapping by 30 frames, exactly as its
    own inference does; the note and onset activations are stitched by dropping half the overlap
    at each side. Notes start at onset-activation peaks above ``onset_threshold`` and
    last while the note activation stays above ``frame_threshold`` (a simplified form of
    basic-pitch's own decoding, pure NumPy).

    Parameters
    ----------
    y, sr : audio and its sample rate (resampled to 22.05 kHz).
    session : onnxruntime.InferenceSession, optional
        A loaded model (see :func:`basic_pitch_session`); loaded on first use otherwise.

    Returns
    -------
    tuple[PitchedNote, ...]
        Sorted by start time, then pitch.

    Raises
    ------
    NotesError
        basic-pitch (its model file) is not installed.
    """
    y = _mono_at_analysis_rate(y, sr)
    session = session or basic_pitch_session()
    window = 2 * ANALYSIS_SR - HOP_LENGTH              # basic-pitch's AUDIO_N_SAMPLES
    overlap_frames = 30
    overlap = overlap_frames * HOP_LENGTH
    hop = window - overlap
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), y])
    starts = np.arange(0, padded.size, hop)
    batch = np.zeros((starts.size, window, 1), np.float32)
    for i, s in enumerate(starts):
        chunk = padded[s:s + window]
        batch[i, :chunk.size, 0] = chunk
    # basic-pitch's ONNX graph names its outputs by position: ":1" notes, ":2" onsets (":0" is
    # the pitch contour, unused here); see basic_pitch.inference.Model.predict.
    wanted = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2"]
    name = session.get_inputs()[0].name
    parts: list[list[np.ndarray]] = [[], []]
    for b in range(0, len(batch), 32):
        for acc, value in zip(parts, session.run(wanted, {name: batch[b:b + 32]})):
            acc.append(value)
    n_frames = int(y.size * (ANALYSIS_SR // HOP_LENGTH) / ANALYSIS_SR)  # as basic-pitch trims
    half = overlap_frames // 2

    def unwrap(chunks):
        a = np.concatenate(chunks)[:, half:-half, :]
        return a.reshape(-1, a.shape[-1])[:n_frames]

    note_act, onset_act = unwrap(parts[0]), unwrap(parts[1])
    return _decode_notes(note_act, onset_act, onset_threshold, frame_threshold, min_note_s)


def _decode_notes(note_act, onset_act, onset_threshold, frame_threshold, min_note_s):
    from scipy.signal import argrelmax

    fps = ANALYSIS_SR // HOP_LENGTH
    peaks = np.zeros_like(onset_act, dtype=bool)
    t_idx, p_idx = argrelmax(onset_act, axis=0)
    peaks[t_idx, p_idx] = True
    t_idx, p_idx = np.nonzero(peaks & (onset_act >= onset_threshold))
    notes = []
    n = note_act.shape[0]
    min_frames = max(1, int(round(min_note_s * fps)))
    for t0, p in zip(t_idx, p_idx):
        below = np.flatnonzero(note_act[t0 + 1:, p] < frame_threshold)
        t1 = t0 + 1 + (below[0] if below.size else n - t0 - 1)
        if t1 - t0 < min_frames:
            continue
        notes.append(PitchedNote(float(t0 / fps), float((t1 - t0) / fps), int(p + 21),
                                 float(note_act[t0:t1, p].mean())))
    return tuple(sorted(notes, key=lambda x: (x.t, x.pitch)))


def basic_pitch_session(threads: int | None = None):
    """Load basic-pitch's ONNX model from its installed wheel into an onnxruntime session.

    Raises
    ------
    NotesError
        basic-pitch is not installed (``pip install --no-deps basic-pitch``).
    """
    import importlib.util
    import pathlib

    import onnxruntime as ort

    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or spec.origin is None:
        raise NotesError("basic-pitch is not installed: pip install --no-deps basic-pitch")
    path = pathlib.Path(spec.origin).parent / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise NotesError(f"basic-pitch's ONNX model is missing: {path}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
