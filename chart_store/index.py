"""Find a few seconds of audio inside many recordings: an inverted index of Chromaprint items.

Whole-file Chromaprint matching (what AcoustID does) compares complete recordings. To recognise
an excerpt heard from any point, every item of every indexed recording goes into an inverted
index (item value -> positions). A query looks up each of its items and every value within a
small Hamming radius of it (lossy coding flips a few bits of most items), each hit votes for an
alignment (recording, offset), and the best-voted alignments are verified by the bit error rate
over the whole aligned span. An alignment is accepted only below a bit-error threshold measured
at 100,000 indexed tracks (the more positions an excerpt is compared with, the closer the best
wrong one comes: ``benchmarks/identify/thresholds.py``), so an unknown song answers "no match"
instead of the nearest wrong recording.

- :class:`FingerprintIndex` — ``add(key, items)``, ``remove(key)``, ``search(items) -> list[Hit]``;
- :class:`Hit` — a verified alignment: key, offset (items and seconds), bit error rate.

Memory: 4 bytes per indexed item (kept for verification), 4 for its posting and 1 for the low
bits of its value (2 below 64 million items), plus a bucket table of at most 64 MiB (a prefix
of the value -> its postings): 2.1 GiB for 245 million items (100,000 tracks).
Values shared by more than ``max_postings`` positions (silence, steady tones) carry no
information and are left out of the postings.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from chart_store.fingerprint import ITEM_S

__all__ = ["FingerprintIndex", "Hit", "ACCEPT_BER", "SHORT_ACCEPT_BER", "accept_ber", "probe_masks",
           "change_bits"]

#: Largest bit error rate accepted as the same recording, for queries of 19 items (5 s) or more.
#: Measured by ``benchmarks/identify/thresholds.py`` at 100,000 indexed tracks (245 million
#: items) on the development songs and on distractors left out of the index, degraded
#: excerpts: true matches <= 0.078 at 5 s and <= 0.075 at 10 s (<= 0.087 in a second sample of
#: 120 excerpts), the best wrong match of an unknown song >= 0.141 at 5 s and >= 0.255 at
#: 10 s. Impostors come closer as the index grows (0.2 was safe at a few hundred tracks, not
#: at 100,000); true matches do not move.
ACCEPT_BER = 0.12
#: The same for a query of only 3 items (3 s of audio); linear in between. True matches reach
#: 0.094 (0.115 in the second sample), and the best wrong match of an unknown song is often
#: lower (median 0.12): 3 s is enough to rank the right song first, not to reject unknown ones.
SHORT_ACCEPT_BER = 0.115
_SHORT, _LONG = 3, 19


def accept_ber(n_items, *, long: float = ACCEPT_BER, short: float = SHORT_ACCEPT_BER):
    """The bit-error threshold for an alignment verified over ``n_items`` items: a float, or
    an array of them for an array of item counts."""
    share = np.clip((np.asarray(n_items, np.float64) - _SHORT) / (_LONG - _SHORT), 0.0, 1.0)
    threshold = short + share * (long - short)
    return float(threshold) if threshold.ndim == 0 else threshold


#: Items shared by more positions than this carry no information (silence, steady tones): skipped.
MAX_POSTINGS = 4096
#: Alignments verified per query, best-voted first: at least this many, and more for short
#: queries (up to :data:`VERIFY_BUDGET` query items compared in all) — a 3 s query has few
#: votes to rank by, and verification is cheap.
CANDIDATES = 32
VERIFY_BUDGET = 4096
_MAX_CANDIDATES = 512
#: Probes per query (items times Hamming-ball size) are capped so a query costs about the same
#: whatever its length: short queries probe farther (radius 2), long ones vote with a subset
#: of their items at radius 1.
PROBE_BUDGET = 2400
#: A query whose items nearly all repeat their predecessor (silence, a held chord) says
#: nothing about which recording it is when many recordings hold the same stretch: above this
#: share of repeats it matches nothing. At 100,000 tracks, silent excerpts of unknown songs
#: (every item the same) matched silence in other tracks at a bit error rate of 0; music
#: repeats few items (at most 17 % of a 10 s excerpt of the development songs, 83 % in the
#: fade-out of one of them).
MAX_REPEATS = 0.95
#: A steady excerpt (a held chord) changes few bits from one second to the next, and its
#: wrong matches come closer than a lively one's (a held chord resembles many a held chord,
#: transposed). So from 9 items up the threshold is also at most this many times the bits
#: that change over 8 items (about 1 s), on average, in the query. Tuned by
#: ``benchmarks/identify/thresholds.py`` on the development songs and left-out distractors:
#: true matches reach 0.0087 times that change at 5 s (0.0059 at 10 s), the best wrong match
#: 0.0143 (0.021); a second sample gave 0.0074 and 0.0116. Without it, an unknown song's held
#: chord matched a transposed held chord at a bit error rate of 0.054 at 100,000 tracks.
CHANGE_BER = 0.01
_CHANGE_LAG = 8
#: Offsets around a voted alignment that verification tries (codec delay, sub-item shifts).
_SHIFTS = np.arange(-2, 3)


def change_bits(items: np.ndarray) -> float | None:
    """Bits that change between items about a second apart (``_CHANGE_LAG`` items), on
    average: how much a query's sound moves (None when it is too short to say)."""
    if items.size <= _CHANGE_LAG:
        return None
    return float(np.bitwise_count(items[_CHANGE_LAG:] ^ items[:-_CHANGE_LAG]).mean())


def probe_masks(radius: int) -> np.ndarray:
    """XOR masks of every 32-bit pattern with at most ``radius`` set bits (0 first), uint32."""
    masks = [0]
    for r in range(1, radius + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(32), r))
    return np.array(masks, dtype=np.uint32)


_MASKS = {r: probe_masks(r) for r in (0, 1, 2)}


@dataclass(frozen=True)
class Hit:
    """A verified alignment of the query against an indexed recording.

    ``offset`` is the (fractional) item of the recording aligned with query item 0, so
    ``offset_s = offset * ITEM_S`` is the recording time of the query's first sample.
    """

    key: str
    offset: float
    bit_error_rate: float
    votes: int
    overlap: int

    @property
    def offset_s(self) -> float:
        return self.offset * ITEM_S


class _Frozen:
    """The immutable arrays one search reads.

    ``items`` holds every recording's items back to back (``starts`` marks where each begins);
    ``postings`` lists positions in ``items`` sorted by item value (stop values left out); the
    values with the same top ``bits`` bits form a bucket, ``table[b]:table[b + 1]`` its range
    of ``postings``, and ``low`` holds the remaining low bits of each posting's value.
    """

    def __init__(self, keys: list[str], runs: list[np.ndarray], max_postings: int):
        self.keys = keys
        lengths = np.array([len(r) for r in runs], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.items = (np.concatenate(runs).astype(np.uint32) if runs
                      else np.zeros(0, np.uint32))
        # Positions fit in uint32 up to 4 billion items (about 150,000 hours of audio).
        position = np.uint32 if self.items.size < 2**32 else np.int64
        order = np.argsort(self.items, kind="stable")
        ordered = self.items[order]
        first = np.flatnonzero(np.diff(ordered)) + 1 if ordered.size else np.zeros(0, np.int64)
        counts = np.diff(np.concatenate([[0], first, [ordered.size]]))
        keep = np.repeat(counts <= max_postings, counts)
        self.postings = order[keep].astype(position)
        del order
        ordered = ordered[keep]
        # About 4 to 8 postings a bucket, at most 2**24 buckets (64 MiB of table).
        self.bits = int(np.clip(np.ceil(np.log2(max(ordered.size, 1))) - 2, 8, 24))
        self.shift = np.uint32(32 - self.bits)
        self.table = np.concatenate([[0], np.cumsum(np.bincount(
            ordered >> self.shift, minlength=2**self.bits))]).astype(position)
        low = np.uint8 if self.bits >= 24 else np.uint16 if self.bits >= 16 else np.uint32
        self.low = (ordered & np.uint32((1 << int(self.shift)) - 1)).astype(low)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.starts, self.items, self.postings, self.table,
                                      self.low))

    def lookup(self, probes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (in ``items``) holding one of ``probes``, and the query row of each."""
        bucket = probes >> self.shift
        lo = self.table[bucket].astype(np.int64)
        size = self.table[bucket + 1].astype(np.int64) - lo
        total = int(size.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # Every bucket range back to back without a Python loop, then the exact values only.
        where = np.repeat(lo - (np.cumsum(size) - size), size) + np.arange(total)
        low = (probes & np.uint32((1 << int(self.shift)) - 1)).astype(self.low.dtype)
        same = self.low[where] == np.repeat(low, size)
        return self.postings[where[same]].astype(np.int64), np.repeat(rows, size)[same]


class FingerprintIndex:
    """Inverted index over the Chromaprint items of many recordings, searchable by excerpt.

    Changes (``add``/``remove``) are cheap; the arrays are rebuilt on the next search after a
    change. Thread-safe: searches share one immutable snapshot.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> song = rng.integers(0, 2**32, 500, dtype=np.uint32)
    >>> index = FingerprintIndex()
    >>> index.add("song", song)
    >>> query = song[100:140] ^ np.uint32(1 << 7)      # 40 items, one bit flipped in each
    >>> hit = index.search(query)[0]
    >>> hit.key, round(hit.offset, 1), round(hit.bit_error_rate, 4)
    ('song', 100.0, 0.0312)
    """

    def __init__(self, *, accept_ber: float = ACCEPT_BER,
                 short_accept_ber: float = SHORT_ACCEPT_BER, max_postings: int = MAX_POSTINGS,
                 candidates: int = CANDIDATES, change_ber: float = CHANGE_BER):
        self.accept_ber = accept_ber
        self.change_ber = change_ber
        self.short_accept_ber = min(short_accept_ber, accept_ber)
        self.max_postings = max_postings
        self.candidates = candidates
        self._runs: dict[str, np.ndarray] = {}
        self._frozen: _Frozen | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, key: str) -> bool:
        return key in self._runs

    def threshold(self, n_items):
        """Bit-error threshold for ``n_items`` verified items (``accept_ber`` from 5 s up);
        elementwise for an array."""
        return accept_ber(n_items, long=self.accept_ber, short=self.short_accept_ber)

    def copy(self) -> FingerprintIndex:
        """An index of the same recordings and settings that changes apart from this one (the
        item arrays are shared: neither ever changes one in place)."""
        other = FingerprintIndex(accept_ber=self.accept_ber,
                                 short_accept_ber=self.short_accept_ber,
                                 max_postings=self.max_postings, candidates=self.candidates,
                                 change_ber=self.change_ber)
        with self._lock:
            other._runs = dict(self._runs)
        return other

    def add(self, key: str, items: np.ndarray) -> None:
        """Index (or re-index) recording ``key`` with its uint32 ``items``."""
        with self._lock:
            self._runs[key] = np.asarray(items, dtype=np.uint32)
            self._frozen = None

    def remove(self, key: str) -> None:
        """Forget ``key`` (no error when absent)."""
        with self._lock:
            if self._runs.pop(key, None) is not None:
                self._frozen = None

    @property
    def nbytes(self) -> int:
        """Memory held by the search arrays, bytes."""
        return self._snapshot().nbytes

    def _snapshot(self) -> _Frozen:
        with self._lock:
            if self._frozen is None:
                keys = list(self._runs)
                self._frozen = _Frozen(keys, [self._runs[k] for k in keys], self.max_postings)
            return self._frozen

    def search(self, items: np.ndarray, *, limit: int = 5) -> list[Hit]:
        """Verified alignments of query ``items``, lowest bit error rate first.

        Parameters
        ----------
        items : np.ndarray [shape=(n,), dtype=uint32]
            Chromaprint items of the excerpt (one per ``ITEM_S`` seconds).
        limit : int
            At most this many hits, one per recording.

        Returns
        -------
        list[Hit]
            Only alignments below the threshold for their length (:meth:`threshold`, over
            the items that differ from their predecessor) and for how steady the query is
            (:data:`CHANGE_BER`); empty when nothing matches or when nearly every item
            repeats (:data:`MAX_REPEATS`).
        """
        query = np.asarray(items, dtype=np.uint32)
        snap = self._snapshot()
        if query.size == 0 or snap.postings.size == 0:
            return []
        # Only items that change carry information: a repeated item is left out of the bit
        # error rate (a half-silent excerpt is judged by its music alone).
        fresh = np.concatenate([[True], query[1:] != query[:-1]])
        if query.size > 1 and 1.0 - fresh[1:].mean() > MAX_REPEATS:
            return []
        diagonals, anchors, votes = self._vote(snap, query)
        if diagonals.size == 0:
            return []
        runs, offsets, rates, overlaps = self._verify(snap, query, fresh, diagonals, anchors)
        change = change_bits(query)
        ceiling = np.inf if change is None else self.change_ber * change
        accepted = np.flatnonzero(rates <= np.minimum(self.threshold(overlaps), ceiling))
        best: dict[int, Hit] = {}
        for run, offset, rate, overlap, vote in zip(runs[accepted], offsets[accepted],
                                                    rates[accepted], overlaps[accepted],
                                                    votes[accepted]):
            if run not in best or rate < best[run].bit_error_rate:
                best[run] = Hit(key=snap.keys[run], offset=float(offset),
                                bit_error_rate=float(rate), votes=int(vote), overlap=int(overlap))
        return sorted(best.values(), key=lambda h: h.bit_error_rate)[:limit]

    def _vote(self, snap: _Frozen, query: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best-voted diagonals (global item position aligned with query item 0), a voting
        position on each (it names the recording) and the votes."""
        radius = 2 if query.size * len(_MASKS[2]) <= PROBE_BUDGET else 1
        masks = _MASKS[radius]
        # A long query votes with evenly spaced rows only: the true alignment still collects
        # plenty of votes, and the lookup cost stays bounded (verification uses every row).
        rows = np.arange(query.size, dtype=np.int64)
        if rows.size * masks.size > PROBE_BUDGET:
            rows = np.unique(np.linspace(0, query.size - 1, PROBE_BUDGET // masks.size)
                             .astype(np.int64))
        probes = (query[rows][:, None] ^ masks[None, :]).ravel()
        positions, rows = snap.lookup(probes, np.repeat(rows, masks.size))
        if positions.size == 0:
            return (np.zeros(0, np.int64),) * 3
        diagonals, first, tally = np.unique(positions - rows, return_index=True,
                                            return_counts=True)
        # Codec delay and resampling put the query between two items: the votes of the
        # neighbouring diagonals count for each other.
        votes = tally.copy()
        for step in (-1, 1):
            near = np.minimum(np.searchsorted(diagonals, diagonals + step), diagonals.size - 1)
            votes += np.where(diagonals[near] == diagonals + step, tally[near], 0)
        wanted = max(self.candidates, min(_MAX_CANDIDATES, VERIFY_BUDGET // query.size))
        top = np.arange(diagonals.size)
        if top.size > wanted:
            top = np.argpartition(-votes, wanted)[:wanted]
        top = top[np.argsort(-votes[top], kind="stable")]
        return diagonals[top], positions[first[top]], votes[top]

    def _verify(self, snap: _Frozen, query: np.ndarray, fresh: np.ndarray,
                diagonals: np.ndarray, anchors: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each candidate alignment: its recording, refined offset (items into the
        recording), bit error rate over the ``fresh`` query items (inf where too little of
        the query overlaps the recording) and overlap (items compared), at the best nearby
        shift."""
        runs = np.searchsorted(snap.starts, anchors, side="right") - 1
        lo, hi = snap.starts[runs], snap.starts[runs + 1]
        starts = diagonals[:, None] + _SHIFTS[None, :]                     # (C, S)
        at = starts[:, :, None] + np.arange(query.size)[None, None, :]      # (C, S, n)
        inside = (at >= lo[:, None, None]) & (at < hi[:, None, None])
        ref = snap.items[np.clip(at, 0, snap.items.size - 1)]
        compared = inside & fresh
        errors = (np.bitwise_count(ref ^ query) * compared).sum(axis=-1)
        overlap = compared.sum(axis=-1)
        enough = overlap >= max(1, int(fresh.sum()) // 2)
        rates = np.where(enough, errors / (32.0 * np.maximum(overlap, 1)), np.inf)
        best = np.argmin(rates, axis=1)
        pick = np.arange(diagonals.size)
        rate = rates[pick, best]
        offset = (starts[pick, best] - lo).astype(float)
        # The bit error rate grows roughly linearly with misalignment: interpolate the minimum
        # between the neighbours to place the query within a fraction of an item.
        below = rates[pick, np.maximum(best - 1, 0)]
        above = rates[pick, np.minimum(best + 1, _SHIFTS.size - 1)]
        inner = (best > 0) & (best < _SHIFTS.size - 1) & np.isfinite(below) & np.isfinite(above)
        inner &= np.minimum(below, above) > rate
        with np.errstate(invalid="ignore", divide="ignore"):
            step = 0.5 * (below - above) / (np.maximum(below, above) - rate)
        offset += np.where(inner, step, 0.0)
        return runs, offset, rate, overlap[pick, best]
