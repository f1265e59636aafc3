"""Find a few seconds of audio inside many recordings: an inverted index of Chromaprint items.

Whole-file Chromaprint matching (what AcoustID does) compares complete recordings. To recognise
an excerpt heard from any point, every item of every indexed recording goes into an inverted
index (item value -> positions). A query looks up each of its items and every value within a
small Hamming radius of it (lossy coding flips a few bits of most items), each hit votes for an
alignment (recording, offset), and the best-voted alignments are verified by the bit error rate
over the whole aligned span. An alignment is accepted only below a bit-error threshold measured
on generic music (true matches ~0.02-0.10, the best impostor among many >= 0.25), so an unknown
song answers "no match" instead of the nearest wrong recording.

- :class:`FingerprintIndex` — ``add(key, items)``, ``remove(key)``, ``search(items) -> list[Hit]``;
- :class:`Hit` — a verified alignment: key, offset (items and seconds), bit error rate.

Memory: 4 bytes per indexed item for the posting, 4 for the item itself (kept for
verification), plus 12 bytes per distinct item value.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from chart_store.fingerprint import ITEM_S

__all__ = ["FingerprintIndex", "Hit", "ACCEPT_BER", "SHORT_ACCEPT_BER", "accept_ber", "probe_masks"]

#: Largest bit error rate accepted as the same recording, for queries of 19 items (5 s) or more.
#: Measured by ``benchmarks/identify/thresholds.py`` on generic music (Debian game-music tracks,
#: never the benchmark songs), degraded excerpts: true matches <= 0.076 at 5 s and <= 0.072 at
#: 10 s, the best impostor >= 0.278 at 5 s and >= 0.332 at 10 s.
ACCEPT_BER = 0.2
#: The same for a query of only 3 items (3 s of audio): fewer bits let impostors come closer
#: (true <= 0.115, best impostor >= 0.146 measured), so the bar is lower; linear in between.
SHORT_ACCEPT_BER = 0.13
_SHORT, _LONG = 3, 19


def accept_ber(n_items: int, *, long: float = ACCEPT_BER, short: float = SHORT_ACCEPT_BER
               ) -> float:
    """The bit-error threshold for an alignment verified over ``n_items`` items."""
    share = np.clip((n_items - _SHORT) / (_LONG - _SHORT), 0.0, 1.0)
    return float(short + share * (long - short))


#: Items shared by more positions than this carry no information (silence, steady tones): skipped.
MAX_POSTINGS = 4096
#: Alignments verified per query, best-voted first.
CANDIDATES = 24
#: Probes per query item are capped so a query costs about the same whatever its length.
PROBE_BUDGET = 2400


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
    """The immutable arrays one search reads: items back to back plus the posting lists."""

    def __init__(self, keys: list[str], runs: list[np.ndarray]):
        self.keys = keys
        lengths = np.array([len(r) for r in runs], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.items = (np.concatenate(runs).astype(np.uint32) if runs
                      else np.zeros(0, np.uint32))
        # Positions fit in uint32 up to 4 billion items (about 150,000 hours of audio).
        position = np.uint32 if self.items.size < 2**32 else np.int64
        order = np.argsort(self.items, kind="stable")
        ordered = self.items[order]
        self.postings = order.astype(position)
        del order
        first = (np.flatnonzero(np.diff(ordered)) + 1) if ordered.size else np.zeros(0, np.int64)
        first = np.concatenate([[0], first]) if ordered.size else first
        self.values = ordered[first]
        self.counts = np.diff(np.append(first, ordered.size)).astype(position)
        self.first = first.astype(position)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.starts, self.items, self.values, self.first,
                                      self.counts, self.postings))


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
                 candidates: int = CANDIDATES):
        self.accept_ber = accept_ber
        self.short_accept_ber = min(short_accept_ber, accept_ber)
        self.max_postings = max_postings
        self.candidates = candidates
        self._runs: dict[str, np.ndarray] = {}
        self._frozen: _Frozen | None = _Frozen([], [])
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def threshold(self, n_items: int) -> float:
        """Bit-error threshold for ``n_items`` verified items (``accept_ber`` from 5 s up)."""
        return accept_ber(n_items, long=self.accept_ber, short=self.short_accept_ber)

    def __contains__(self, key: str) -> bool:
        return key in self._runs

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
                self._frozen = _Frozen(keys, [self._runs[k] for k in keys])
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
            Only alignments below the threshold for their length (:func:`accept_ber`); empty
            when nothing matches.
        """
        query = np.asarray(items, dtype=np.uint32)
        snap = self._snapshot()
        if query.size == 0 or snap.items.size == 0:
            return []
        diagonals, votes = self._vote(snap, query)
        if diagonals.size == 0:
            return []
        best: dict[int, Hit] = {}
        for diag, vote in zip(diagonals, votes):
            hit = self._verify(snap, query, int(diag), int(vote))
            if hit is not None and hit.bit_error_rate <= self.threshold(hit.overlap):
                run = int(np.searchsorted(snap.starts, diag, side="right") - 1)
                if run not in best or hit.bit_error_rate < best[run].bit_error_rate:
                    best[run] = hit
        return sorted(best.values(), key=lambda h: h.bit_error_rate)[:limit]

    def _vote(self, snap: _Frozen, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best-voted diagonals (global item position aligned with query item 0) and votes."""
        radius = 2 if query.size * len(_MASKS[2]) <= PROBE_BUDGET else 1
        masks = _MASKS[radius]
        # A long query votes with evenly spaced rows only: the true alignment still collects
        # plenty of votes, and the lookup cost stays bounded (verification uses every row).
        rows = np.arange(query.size, dtype=np.int64)
        if rows.size * masks.size > PROBE_BUDGET:
            rows = np.unique(np.linspace(0, query.size - 1, PROBE_BUDGET // masks.size)
                             .astype(np.int64))
        probes = (query[rows][:, None] ^ masks[None, :]).ravel()
        rows = np.repeat(rows, masks.size)
        where = np.searchsorted(snap.values, probes)
        where[where == snap.values.size] = 0
        found = (snap.values[where] == probes) & (snap.counts[where] <= self.max_postings)
        where, rows = where[found], rows[found]
        if where.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        counts = snap.counts[where].astype(np.int64)
        # Expand each found value into its posting range without a Python loop.
        total = int(counts.sum())
        seg_start = np.repeat(snap.first[where].astype(np.int64)
                              - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        positions = snap.postings[seg_start + np.arange(total)].astype(np.int64)
        diags = positions - np.repeat(rows, counts)
        values, tally = np.unique(diags, return_counts=True)
        if values.size > self.candidates:
            top = np.argpartition(-tally, self.candidates)[:self.candidates]
            values, tally = values[top], tally[top]
        order = np.argsort(-tally, kind="stable")
        return values[order], tally[order]

    def _verify(self, snap: _Frozen, query: np.ndarray, diag: int, votes: int) -> Hit | None:
        """Bit error rate of the alignment at ``diag`` and its neighbours, refined offset."""
        run = int(np.searchsorted(snap.starts, diag, side="right") - 1)
        lo, hi = int(snap.starts[run]), int(snap.starts[run + 1])
        rates = []
        for shift in (-1, 0, 1):
            start = diag + shift
            q0 = max(0, lo - start)
            q1 = min(query.size, hi - start)
            if q1 - q0 < max(1, query.size // 2):
                rates.append(np.nan)
                continue
            ref = snap.items[start + q0:start + q1]
            rates.append(float(np.bitwise_count(ref ^ query[q0:q1]).sum()) / (32.0 * (q1 - q0)))
        below, centre, above = rates
        if np.isnan(centre):
            return None
        offset = float(diag - lo)
        # The bit error rate grows roughly linearly with misalignment: interpolate the minimum
        # between the neighbours to place the query within a fraction of an item.
        if np.isfinite(below) and np.isfinite(above) and min(below, above) > centre:
            offset += 0.5 * (below - above) / (max(below, above) - centre)
        q0 = max(0, lo - diag)
        q1 = min(query.size, hi - diag)
        return Hit(key=snap.keys[run], offset=offset, bit_error_rate=centre, votes=votes,
                   overlap=q1 - q0)
