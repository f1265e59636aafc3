"""Measure the bit error rates that set the open-set rejection thresholds, at scale, on the
development data.

The index is the one ``benchmarks.identify.scale`` reports on (the same cached build: the
benchmark and development songs + the indexed distractors, filled up to ``--tracks`` with
pitch/tempo variants). Queried here: the development songs (``benchmarks.data.dev_songs_dir()``),
never the 4 benchmark songs, and the ``--left-out`` distractors set aside for tuning (apart
from the ones ``scale`` reports false accepts on). Degraded excerpts of 3, 5 and 10 s are
searched with no threshold at all:

- true BER: the bit error rate of the correct song at the found alignment;
- impostor BER: the lowest bit error rate of any wrong track, for the songs' excerpts
  (``song_impostor``) and for excerpts of the left-out distractors the index does not hold
  (``unknown_song``: what open-set rejection is about).

``chart_store.index.ACCEPT_BER`` (5 s and longer) and ``SHORT_ACCEPT_BER`` (3 s) sit between
the true BERs and the left-out distractors' impostor BERs; ``CHANGE_BER`` between the same
two divided by how many bits of the query change over 1 s (steady excerpts match closer).

    nice -n 10 .venv/bin/python -m benchmarks.identify.thresholds [--tracks 100000]
        [--queries 100] [--left-out 40]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from benchmarks.data import dev_songs_dir
from benchmarks.identify.common import benchmark_songs, percentiles
from benchmarks.identify.scale import (cached, scale_index, scale_recordings, song_queries,
                                       track_queries)
from chart_store.index import change_bits


def change(items: np.ndarray) -> float:
    """:func:`chart_store.index.change_bits` of a query longer than a second, kept above 0
    (a ratio's denominator)."""
    return max(change_bits(items), 1e-9)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100, help="song excerpts per length")
    parser.add_argument("--left-out", type=int, default=40,
                        help="distractors not indexed, apart from those scale.py reports on")
    parser.add_argument("--songs", default=None, help="folder of queried songs (default: the "
                        "development songs)")
    parser.add_argument("--durations", default="3,5,10", help="excerpt lengths, seconds")
    parser.add_argument("--report", type=int, default=60,
                        help="distractors scale.py reports false accepts on (not used here)")
    parser.add_argument("--seed", type=int, default=11, help="the split, as scale.py's")
    args = parser.parse_args(argv)
    scale = scale_recordings(args.seed, report=args.report, tune=args.left_out)
    songs = benchmark_songs(args.songs or dev_songs_dir())
    index = scale_index(scale, args.tracks, accept_ber=1.0, short_accept_ber=1.0,
                        change_ber=np.inf)  # no threshold
    for rec in songs:  # songs from another folder than the two sets
        if rec.name not in index:
            index.add(rec.name, rec.items())
    result = {"tracks": len(index), "items": int(index._snapshot().items.size),
              "songs": [rec.name for rec in songs], "left_out": len(scale.tune),
              "by_duration_s": {}}
    for duration in [float(d) for d in args.durations.split(",")]:
        true_ber, not_found, items = [], 0, []
        # Lowest wrong bit error rate for the songs' excerpts and for unknown songs' excerpts,
        # and each divided by the bits that change over 1 s in the query (from 9 items up).
        song_impostor, unknown, true_ratio, impostor_ratio = [], [], [], []
        for q in cached(song_queries, songs, duration, args.queries, args.seed + 1):
            hits = index.search(q.items, limit=50)
            right = [h.bit_error_rate for h in hits
                     if h.key == q.name and abs(h.offset_s - q.start_s) < 0.5]
            wrong = [h.bit_error_rate for h in hits if h.key != q.name]
            song_impostor.append(min(wrong, default=1.0))
            items.append(q.items.size)
            if right:
                true_ber.append(right[0])
            else:
                not_found += 1
            if q.items.size > 8:
                impostor_ratio.append(song_impostor[-1] / change(q.items))
                if right:
                    true_ratio.append(right[0] / change(q.items))
        for q in cached(track_queries, scale.tune, duration, args.seed + 1):
            hits = index.search(q.items, limit=1)
            unknown.append(hits[0].bit_error_rate if hits else 1.0)
            if q.items.size > 8:
                impostor_ratio.append(unknown[-1] / change(q.items))
        result["by_duration_s"][str(duration)] = {
            "query_items": int(np.median(items)),
            "true_ber": percentiles(true_ber, (50, 90, 99)), "true_not_found": not_found,
            "unknown_song_best_ber": {"min": round(float(min(unknown)), 4),
                                      **percentiles(unknown, (1, 5, 50))},
            "song_impostor_best_ber": {"min": round(float(min(song_impostor)), 4),
                                       **percentiles(song_impostor, (1, 5, 50))},
        }
        if true_ratio:
            result["by_duration_s"][str(duration)] |= {
                "true_ber_per_change": percentiles(true_ratio, (50, 99)),
                "impostor_ber_per_change": {"min": round(float(min(impostor_ratio)), 5),
                                            **percentiles(impostor_ratio, (1, 5))}}
        print(f"{duration:.0f} s done", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
