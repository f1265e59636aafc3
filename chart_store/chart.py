"""The chart model: what a song is to play, independent of any file format, store or game.

A :class:`Chart` holds everything LoopJam knows about one recording:

- :class:`ChartMeta` — title, artist, album, duration, where the chart came from;
- :class:`Fingerprint` — Chromaprint raw items of the whole recording (identification);
- :class:`SyncReference` — an onset-strength envelope at a fixed frame rate, and coarse band
  energies (live alignment);
- ``beats`` — beat times in seconds (the tempo map);
- one :class:`Track` per difficulty, a time-sorted tuple of :class:`Note`;
- :class:`MaskBank` — compact per-note spectral masks (what to remove when a note is missed).

All times are seconds from the start of the recording, all frequencies Hz, so nothing here
depends on a sample rate. Gameplay state (hit, missed, score) never lives on the chart: the
game engine keeps it.

The chart id is derived from the content by :mod:`chart_store.chartfile`, so the same chart has
the same id everywhere.
"""
from __future__ import annotations

import bisect
import enum
import functools
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "DIFFICULTIES", "MIN_LANES", "MAX_LANES", "DEFAULT_LANES", "Source", "ChartMeta", "Fingerprint",
    "SyncReference", "Note", "Track", "SpectralMask", "MaskBank", "Phrase", "PHRASE_KINDS",
    "TimeSignature", "Chart", "ChartError", "song_name", "sorted_notes", "fold_lanes",
]

#: Difficulty names, easiest first. A chart holds any non-empty subset of them.
DIFFICULTIES = ("easy", "medium", "hard", "expert")
MIN_LANES, MAX_LANES, DEFAULT_LANES = 4, 7, 5


class ChartError(ValueError):
    """A chart's content breaks the model's invariants (unsorted notes, lane out of range...)."""


class Source(str, enum.Enum):
    """Where a chart came from; human charts outrank generated ones for the same song."""

    ANALYZED = "analyzed"
    IMPORTED_HUMAN = "imported-human"
    RECORDED_LIVE = "recorded-live"

    @property
    def rank(self) -> int:
        """Higher wins when two charts share a fingerprint."""
        return {Source.IMPORTED_HUMAN: 2, Source.ANALYZED: 1, Source.RECORDED_LIVE: 0}[self]


def _frozen_array(values, dtype) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


def _descending(values: np.ndarray, *, strict: bool = False) -> bool:
    """Whether any consecutive pair breaks ascending order (no overflow on huge values)."""
    return bool(np.any(values[1:] <= values[:-1] if strict else values[1:] < values[:-1]))


def song_name(artist: str, title: str) -> str:
    """How a song is named to people: "Artist - Title", or whichever of the two there is.

    Examples
    --------
    >>> song_name("Muldjord", "Chaos God"), song_name("", "chaos_mix")
    ('Muldjord - Chaos God', 'chaos_mix')
    """
    return " - ".join(part for part in (artist, title) if part)


@dataclass(frozen=True)
class ChartMeta:
    """Descriptive metadata. ``duration_s`` is the recording's length in seconds; ``charter``
    names who made a human chart (a song.ini's credit, kept for whoever plays or exports it),
    ``genre`` and ``year`` are the song's, as its song folder gave them (free text)."""

    title: str
    artist: str = ""
    album: str = ""
    duration_s: float = 0.0
    source: Source = Source.ANALYZED
    tool_version: str = ""
    charter: str = ""
    genre: str = ""
    year: str = ""

    #: The fields a song folder credits, which a chart file holds from version 3 on.
    CREDITS = ("charter", "genre", "year")

    def __post_init__(self):
        try:
            object.__setattr__(self, "source", Source(self.source))
        except ValueError:
            raise ChartError(f"unknown source {self.source!r}; known: "
                             f"{', '.join(s.value for s in Source)}") from None
        if not (self.duration_s >= 0 and np.isfinite(self.duration_s)):
            raise ChartError(f"duration_s must be a finite number >= 0, got {self.duration_s!r}")


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Chromaprint raw fingerprint of a whole recording.

    Parameters
    ----------
    items : np.ndarray [shape=(n,), dtype=uint32]
        Raw 32-bit sub-fingerprints, one per ``item_s`` seconds.
    algorithm : int
        Chromaprint algorithm id (2 = the library's default).
    item_s : float
        Seconds between consecutive items. For the default algorithm Chromaprint hops 4096 - 2731
        = 1365 samples at 11025 Hz (its 2/3 overlap rounds down): 0.1238 s, measured.
    """

    items: np.ndarray
    algorithm: int = 2
    item_s: float = 1365 / 11025

    def __post_init__(self):
        object.__setattr__(self, "items", _frozen_array(self.items, np.uint32))
        if self.items.ndim != 1:
            raise ChartError("fingerprint items must be one-dimensional")
        if not 0 <= self.algorithm < 2**31:
            raise ChartError(f"fingerprint algorithm must be 0..2**31-1, got {self.algorithm!r}")
        if not (self.item_s > 0 and np.isfinite(self.item_s)):
            raise ChartError(f"fingerprint item_s must be > 0, got {self.item_s!r}")

    def __eq__(self, other):
        return (isinstance(other, Fingerprint) and self.algorithm == other.algorithm
                and self.item_s == other.item_s and np.array_equal(self.items, other.items))

    __hash__ = None


@dataclass(frozen=True, eq=False)
class SyncReference:
    """An onset-strength envelope of the whole recording, used to lock the chart to playback,
    and optionally its coarse band energies, which place a second of audio the envelope cannot
    (harmony, timbre, sustained parts).

    Parameters
    ----------
    envelope : np.ndarray [shape=(n,), dtype=float32]
        Onset strength per frame, frame ``k`` centred at ``k / frame_rate`` seconds.
    frame_rate : float
        Frames per second (Hz).
    bands : np.ndarray [shape=(m, n_bands), dtype=uint8], optional
        Log band magnitudes in byte steps (:mod:`analyzer.features` says which bands and
        steps), row ``j`` averaged over ``[j / band_rate, (j + 1) / band_rate)`` seconds;
        None in charts made before they existed.
    band_rate : float, optional
        Rows of ``bands`` per second (Hz); given exactly when ``bands`` is.
    """

    envelope: np.ndarray
    frame_rate: float
    bands: np.ndarray | None = None
    band_rate: float | None = None

    #: Most bands a row may hold.
    MAX_BANDS = 256

    def __post_init__(self):
        object.__setattr__(self, "envelope", _frozen_array(self.envelope, np.float32))
        if self.envelope.ndim != 1 or not np.all(np.isfinite(self.envelope)):
            raise ChartError("sync envelope must be a finite one-dimensional array")
        if not (self.frame_rate > 0 and np.isfinite(self.frame_rate)):
            raise ChartError(f"sync frame_rate must be > 0, got {self.frame_rate!r}")
        if (self.bands is None) != (self.band_rate is None):
            raise ChartError("sync bands and band_rate come together")
        if self.bands is None:
            return
        bands = np.asarray(self.bands)
        if (bands.dtype.kind not in "ui" or bands.ndim != 2
                or not 1 <= bands.shape[1] <= self.MAX_BANDS):
            raise ChartError(f"sync bands must be integers of shape (rows, 1..{self.MAX_BANDS}), "
                             f"got {bands.dtype} {bands.shape}")
        if bands.size and (bands.min() < 0 or bands.max() > 255):
            raise ChartError("sync bands must be bytes (0..255)")
        object.__setattr__(self, "bands", _frozen_array(bands, np.uint8))
        if not (self.band_rate > 0 and np.isfinite(self.band_rate)):
            raise ChartError(f"sync band_rate must be > 0, got {self.band_rate!r}")

    def __eq__(self, other):
        return (isinstance(other, SyncReference) and self.frame_rate == other.frame_rate
                and np.array_equal(self.envelope, other.envelope)
                and self.band_rate == other.band_rate
                and (self.bands is None) == (other.bands is None)
                and (self.bands is None or np.array_equal(self.bands, other.bands)))

    __hash__ = None


@dataclass(frozen=True)
class Note:
    """One note to play.

    ``t`` and ``dur`` are seconds (``dur`` 0 for a tap, > 0 for a sustain); ``lane`` counts from
    0 at the left; ``pitch`` is a MIDI number or None when unpitched/unknown; ``stem`` names the
    source the note's sound lives in ("guitar", "other", "mix"...); ``mask`` indexes the chart's
    :class:`MaskBank` or is None when the note has no mask.
    """

    t: float
    dur: float = 0.0
    lane: int = 0
    pitch: int | None = None
    stem: str = "mix"
    mask: int | None = None

    @property
    def end(self) -> float:
        return self.t + self.dur


#: Kinds of :class:`Phrase`: a star power phrase, a solo section.
PHRASE_KINDS = ("star_power", "solo")


@dataclass(frozen=True)
class Phrase:
    """A stretch of a human chart its charter marked: ``kind`` one of :data:`PHRASE_KINDS`,
    from ``t`` for ``dur`` seconds. The marks of the whole instrument, every difficulty's. A
    chart keeps them so that an export gives them back (Clone Hero plays them); LoopJam's game
    does not score them."""

    kind: str
    t: float
    dur: float = 0.0

    def __post_init__(self):
        if self.kind not in PHRASE_KINDS:
            raise ChartError(f"phrase kind must be one of {PHRASE_KINDS}, got {self.kind!r}")
        if not (np.isfinite(self.t) and self.dur >= 0 and np.isfinite(self.dur)):
            raise ChartError(f"{self.kind} phrase at {self.t!r}s has duration {self.dur!r}")

    @property
    def end(self) -> float:
        return self.t + self.dur


@dataclass(frozen=True)
class TimeSignature:
    """A human chart's metre from the bar starting at ``t`` seconds on: ``numerator`` beats of a
    ``1 / denominator`` note (MIDI's range: 1..255, a power of two 1..128). Kept so that an
    export gives it back (a game draws its bar lines from it)."""

    t: float
    numerator: int = 4
    denominator: int = 4

    def __post_init__(self):
        if not np.isfinite(self.t):
            raise ChartError(f"time signature time must be finite, got {self.t!r}")
        if not (isinstance(self.numerator, (int, np.integer)) and 1 <= self.numerator <= 255
                and isinstance(self.denominator, (int, np.integer))
                and self.denominator in (1, 2, 4, 8, 16, 32, 64, 128)):
            raise ChartError(f"time signature {self.numerator!r}/{self.denominator!r} at "
                             f"{self.t}s: need 1..255 beats of a 1/2^k note (k 0..7)")


@dataclass(frozen=True, eq=False)
class Track:
    """The notes of one difficulty, sorted by time (then lane), with fast time queries.

    Examples
    --------
    >>> track = Track((Note(1.0, lane=0), Note(1.5, lane=2), Note(2.0, lane=1)))
    >>> [n.lane for n in track.notes_between(1.2, 2.0)]
    [2]
    """

    notes: tuple[Note, ...]
    _times: np.ndarray = field(init=False, repr=False)
    _durations: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        notes = tuple(self.notes)
        object.__setattr__(self, "notes", notes)
        times = _frozen_array([n.t for n in notes], np.float64)
        if times.size and (not np.all(np.isfinite(times)) or _descending(times)):
            raise ChartError("notes must have finite times sorted ascending")
        object.__setattr__(self, "_times", times)
        object.__setattr__(self, "_durations", _frozen_array([n.dur for n in notes], np.float64))

    def __len__(self) -> int:
        return len(self.notes)

    def __iter__(self):
        return iter(self.notes)

    def __getitem__(self, index):
        return self.notes[index]

    def __eq__(self, other):
        return isinstance(other, Track) and self.notes == other.notes

    __hash__ = None

    @property
    def times(self) -> np.ndarray:
        """Note start times, seconds, shape (n,), read-only."""
        return self._times

    @property
    def durations(self) -> np.ndarray:
        """Note durations, seconds (0: a tap, > 0: a sustain), shape (n,), read-only."""
        return self._durations

    def index_range(self, t0: float, t1: float) -> range:
        """Indices of the notes starting in ``[t0, t1)``."""
        return range(bisect.bisect_left(self._times, t0), bisect.bisect_left(self._times, t1))

    def notes_between(self, t0: float, t1: float) -> tuple[Note, ...]:
        """Notes starting in ``[t0, t1)`` seconds."""
        r = self.index_range(t0, t1)
        return self.notes[r.start:r.stop]

    def density(self) -> float:
        """Notes per second between the first and the last note (0 for fewer than 2 notes)."""
        if len(self._times) < 2 or self._times[-1] == self._times[0]:
            return 0.0
        return (len(self._times) - 1) / float(self._times[-1] - self._times[0])


def sorted_notes(notes) -> tuple[Note, ...]:
    """Notes ordered by time then lane, with exact duplicates (same time and lane) merged,
    keeping the longest."""
    best: dict[tuple[float, int], Note] = {}
    for note in notes:
        key = (note.t, note.lane)
        if key not in best or note.dur > best[key].dur:
            best[key] = note
    return tuple(best[k] for k in sorted(best))


def fold_lanes(notes, *, lanes: int, to_lanes: int) -> tuple[Note, ...]:
    """Map notes from ``lanes`` lanes onto ``to_lanes`` lanes, deterministically.

    Lane ``i`` goes to ``round(i * (to_lanes - 1) / (lanes - 1))`` (edges stay edges, the melody's
    shape is kept); chord notes that land on the same lane merge into the longest. Meant for
    fewer lanes (an export format's, a player's): onto more lanes some stay unused.

    Examples
    --------
    >>> [n.lane for n in fold_lanes([Note(i, lane=i) for i in range(5)], lanes=5, to_lanes=4)]
    [0, 1, 2, 2, 3]
    """
    if lanes == to_lanes:
        return sorted_notes(notes)
    scale = (to_lanes - 1) / max(lanes - 1, 1)
    return sorted_notes(replace(n, lane=int(np.floor(n.lane * scale + 0.5))) for n in notes)


@dataclass(frozen=True, eq=False)
class SpectralMask:
    """The sound of one note as a time × band gain map, in seconds and Hz.

    ``gains[k, b]`` is the fraction (0..1) of band ``b``'s magnitude that belongs to the note in
    frame ``k``; frame ``k`` starts at ``note.t + start_s + k * bank.hop_s``. Stored as uint8
    (0..255 ↔ 0..1) to stay compact.
    """

    start_s: float
    gains: np.ndarray

    def __post_init__(self):
        gains = _frozen_array(self.gains, np.uint8)
        if gains.ndim != 2:
            raise ChartError("mask gains must be a 2-D (frames, bands) array")
        object.__setattr__(self, "gains", gains)
        if not np.isfinite(self.start_s):
            raise ChartError("mask start_s must be finite")

    def __eq__(self, other):
        return (isinstance(other, SpectralMask) and self.start_s == other.start_s
                and np.array_equal(self.gains, other.gains))

    __hash__ = None

    @property
    def duration_frames(self) -> int:
        return self.gains.shape[0]

    def gain_fraction(self) -> np.ndarray:
        """Gains as float32 in 0..1, shape (frames, bands)."""
        return self.gains.astype(np.float32) / 255.0


@dataclass(frozen=True, eq=False)
class MaskBank:
    """All per-note masks of a chart, sharing one band layout and one frame hop.

    ``band_edges_hz`` has shape (bands + 1,), ascending; ``hop_s`` is the envelope frame hop.
    """

    band_edges_hz: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    hop_s: float = 0.02
    masks: tuple[SpectralMask, ...] = ()

    def __post_init__(self):
        edges = _frozen_array(self.band_edges_hz, np.float32)
        object.__setattr__(self, "band_edges_hz", edges)
        object.__setattr__(self, "masks", tuple(self.masks))
        if edges.ndim != 1 or (edges.size and (not np.all(np.isfinite(edges))
                                               or _descending(edges, strict=True) or edges[0] < 0)):
            raise ChartError("band_edges_hz must be finite, >= 0 and strictly ascending")
        if not (self.hop_s > 0 and np.isfinite(self.hop_s)):
            raise ChartError(f"mask hop_s must be > 0, got {self.hop_s!r}")
        bands = max(edges.size - 1, 0)
        for i, mask in enumerate(self.masks):
            if mask.gains.shape[1] != bands:
                raise ChartError(f"mask {i} has {mask.gains.shape[1]} bands, the bank has {bands}")

    @property
    def n_bands(self) -> int:
        return max(self.band_edges_hz.size - 1, 0)

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index: int) -> SpectralMask:
        return self.masks[index]

    def __eq__(self, other):
        return (isinstance(other, MaskBank) and self.hop_s == other.hop_s
                and np.array_equal(self.band_edges_hz, other.band_edges_hz)
                and self.masks == other.masks)

    __hash__ = None


@dataclass(frozen=True, eq=False)
class Chart:
    """A whole chart. Construct it, then treat it as immutable.

    Invariants checked here: ``lanes`` in 4..7; every difficulty name known; every note's lane
    within ``lanes``; every mask reference within the bank; beats finite and ascending;
    ``phrases`` are :class:`Phrase` s and ``time_signatures`` :class:`TimeSignature` s (each
    kept sorted by time).
    """

    meta: ChartMeta
    difficulties: dict[str, Track]
    lanes: int = DEFAULT_LANES
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fingerprint: Fingerprint | None = None
    sync: SyncReference | None = None
    masks: MaskBank = field(default_factory=MaskBank)
    phrases: tuple[Phrase, ...] = ()
    time_signatures: tuple[TimeSignature, ...] = ()

    def __post_init__(self):
        if not (MIN_LANES <= self.lanes <= MAX_LANES):
            raise ChartError(f"lanes must be {MIN_LANES}..{MAX_LANES}, got {self.lanes}")
        unknown = set(self.difficulties) - set(DIFFICULTIES)
        if unknown:
            raise ChartError(f"unknown difficulties {sorted(unknown)}; known: {DIFFICULTIES}")
        # Keep difficulties in canonical order so iteration (and the content id) is stable.
        ordered = {d: self.difficulties[d] if isinstance(self.difficulties[d], Track)
                   else Track(tuple(self.difficulties[d]))
                   for d in DIFFICULTIES if d in self.difficulties}
        object.__setattr__(self, "difficulties", ordered)
        beats = _frozen_array(self.beats, np.float64)
        if beats.ndim != 1 or not np.all(np.isfinite(beats)) or _descending(beats, strict=True):
            raise ChartError("beats must be finite and strictly ascending")
        object.__setattr__(self, "beats", beats)
        if not all(isinstance(p, Phrase) for p in self.phrases):
            raise ChartError("phrases must be Phrase records")
        object.__setattr__(self, "phrases", tuple(sorted(
            self.phrases, key=lambda p: (p.t, PHRASE_KINDS.index(p.kind), p.dur))))
        if not all(isinstance(m, TimeSignature) for m in self.time_signatures):
            raise ChartError("time_signatures must be TimeSignature records")
        object.__setattr__(self, "time_signatures", tuple(sorted(
            self.time_signatures, key=lambda m: (m.t, m.numerator, m.denominator))))
        for name, track in ordered.items():
            for note in track:
                if not isinstance(note.lane, (int, np.integer)) or not 0 <= note.lane < self.lanes:
                    raise ChartError(f"{name}: note at {note.t:.3f}s has lane {note.lane} "
                                     f"outside 0..{self.lanes - 1}")
                if note.mask is not None and not 0 <= note.mask < len(self.masks):
                    raise ChartError(f"{name}: note at {note.t:.3f}s refers to mask {note.mask}, "
                                     f"the bank has {len(self.masks)}")
                if note.pitch is not None and not (isinstance(note.pitch, (int, np.integer))
                                                   and 0 <= note.pitch <= 127):
                    raise ChartError(f"{name}: note at {note.t:.3f}s has pitch {note.pitch!r}, "
                                     "not a MIDI number 0..127")
                if not (note.dur >= 0 and np.isfinite(note.dur)):
                    raise ChartError(f"{name}: note at {note.t:.3f}s has duration {note.dur!r}")

    def __eq__(self, other):
        return (isinstance(other, Chart) and self.meta == other.meta and self.lanes == other.lanes
                and self.difficulties == other.difficulties
                and np.array_equal(self.beats, other.beats)
                and self.fingerprint == other.fingerprint and self.sync == other.sync
                and self.masks == other.masks and self.phrases == other.phrases
                and self.time_signatures == other.time_signatures)

    __hash__ = None

    @functools.cached_property
    def id(self) -> str:
        """Content-derived id: the same chart has the same id everywhere."""
        from chart_store.chartfile import chart_id
        return chart_id(self)

    def track(self, difficulty: str) -> Track:
        """The notes of ``difficulty``; raises KeyError naming the available ones."""
        try:
            return self.difficulties[difficulty]
        except KeyError:
            raise KeyError(f"chart has no {difficulty!r} difficulty; it has "
                           f"{', '.join(self.difficulties) or 'none'}") from None

    def hardest(self) -> str:
        """Name of the hardest difficulty present."""
        return list(self.difficulties)[-1]
