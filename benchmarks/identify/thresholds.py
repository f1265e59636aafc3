"""Measure the bit error rates that set the open-set rejection thresholds, at scale, on the
development data.

The index is built as ``benchmarks.identify.scale`` builds it (the queried songs + the
distractors, filled up to ``--tracks`` with pitch/tempo variants), by default around the
development songs (``benchmarks.data.dev_songs_dir()``), never the 4 benchmark songs.
Degraded excerpts of 3, 5 and 10 s are searched with no threshold at all:

- true BER: the bit error rate of the correct song at the found alignment;
- impostor BER: the lowest bit error rate of any wrong track, for the songs' excerpts and
  for excerpts of ``--left-out`` distractors the index does not hold.

``chart_store.index.ACCEPT_BER`` (5 s and longer) and ``SHORT_ACCEPT_BER`` (3 s) sit between
the two distributions at ``REFERENCE_ITEMS`` indexed items; ``PER_DECADE`` is how far the
impostors come closer per tenfold more items (compare ``--tracks 1000`` with ``100000``).

    nice -n 10 .venv/bin/python -m benchmarks.identify.thresholds [--tracks 100000]
        [--queries 100] [--left-out 60]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from benchmarks.data import dev_songs_dir
from benchmarks.identify.common import benchmark_songs, percentiles, split_distractors
from benchmarks.identify.scale import fill_with_variants, song_queries, track_queries
from chart_store.index import FingerprintIndex


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100, help="song excerpts per length")
    parser.add_argument("--left-out", type=int, default=60, help="distractors not indexed")
    parser.add_argument("--songs", default=None, help="folder of queried songs (default: the "
                        "development songs)")
    parser.add_argument("--durations", default="3,5,10", help="excerpt lengths, seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    songs = benchmark_songs(args.songs or dev_songs_dir())
    kept, left_out = split_distractors(rng, args.left_out, songs=songs)
    index = FingerprintIndex(accept_ber=1.0, short_accept_ber=1.0)  # see every candidate
    for rec in songs + kept:
        index.add(rec.name, rec.items())
    fill_with_variants(index, kept, args.tracks)
    result = {"tracks": len(index), "items": int(index._snapshot().items.size),
              "songs": [rec.name for rec in songs], "left_out": len(left_out),
              "by_duration_s": {}}
    for duration in [float(d) for d in args.durations.split(",")]:
        true_ber, impostor_ber, not_found, items = [], [], 0, []
        for q in song_queries(songs, duration, args.queries, rng):
            hits = index.search(q.items, limit=50)
            right = [h.bit_error_rate for h in hits
                     if h.key == q.name and abs(h.offset_s - q.start_s) < 0.5]
            wrong = [h.bit_error_rate for h in hits if h.key != q.name]
            impostor_ber.append(min(wrong, default=1.0))
            items.append(q.items.size)
            if right:
                true_ber.append(right[0])
            else:
                not_found += 1
        for q in track_queries(left_out, duration, rng):
            hits = index.search(q.items, limit=1)
            impostor_ber.append(hits[0].bit_error_rate if hits else 1.0)
        result["by_duration_s"][str(duration)] = {
            "query_items": int(np.median(items)),
            "true_ber": percentiles(true_ber, (50, 90, 99)), "true_not_found": not_found,
            "impostor_best_ber": {"min": round(float(min(impostor_ber)), 4),
                                  **percentiles(impostor_ber, (1, 5, 50))},
        }
        print(f"{duration:.0f} s done", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
