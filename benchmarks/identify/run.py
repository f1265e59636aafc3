"""Identification benchmark: a few degraded seconds from anywhere in a real song -> its chart.

Index: the 4 real songs (Frets on Fire "muldjord" mixes) plus the distractor tracks
(Debian game-music packages, near-duplicates removed), except ``--left-out`` distractors kept
out of the index. Queries: excerpts of 3, 5 and 10 s starting at random points, each through a
random streaming condition (mp3/aac/opus/vorbis at 96 kbps, gain ±10 dB, 44.1/48 kHz output,
mono or stereo, half of them with a 0.5 s fade-in). Reported per length:

- top-1 accuracy on the 4 songs, offset error (|offset_s - true start|) percentiles;
- false accepts: left-out songs' excerpts that matched anything;
- latency: fingerprinting the excerpt, and the index lookup alone (median, p95).

    nice -n 10 .venv/bin/python -m benchmarks.identify.run [--queries 25] [--left-out 30]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmarks.identify.common import (benchmark_songs, degrade, percentiles, random_degradation,
                                        split_distractors)
from chart_store.fingerprint import ITEM_S, fingerprint
from chart_store.index import FingerprintIndex


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=25, help="per song and length")
    parser.add_argument("--left-out", type=int, default=30, help="distractors not indexed")
    parser.add_argument("--songs", default=None, help="folder of queried songs (default: the "
                        "4 benchmark songs; benchmarks.data.dev_songs_dir() is the dev set)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--durations", default="3,5,10", help="excerpt lengths, seconds")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    songs = benchmark_songs(args.songs)
    kept, left_out = split_distractors(rng, args.left_out, songs=songs)
    indexed = songs + kept
    index = FingerprintIndex()
    t0 = time.perf_counter()
    for rec in indexed:
        index.add(rec.name, rec.items())
    index.search(songs[0].items()[:40])  # builds the arrays
    build_s = time.perf_counter() - t0
    total_items = sum(len(r.items()) for r in indexed)

    audio = {rec.name: rec.audio() for rec in songs}
    result = {"indexed_tracks": len(indexed), "indexed_items": total_items,
              "indexed_hours": round(total_items * ITEM_S / 3600, 2),
              "index_bytes": index.nbytes, "index_build_s": round(build_s, 2),
              "left_out_tracks": len(left_out), "by_duration_s": {}}
    for duration in [float(d) for d in args.durations.split(",")]:
        correct, wrong, missed, errors, fp_ms, lookup_ms, conditions_failed = 0, 0, 0, [], [], [], []
        for rec in songs:
            y, sr = audio[rec.name]
            for _ in range(args.queries):
                start = float(rng.uniform(0, y.shape[-1] / sr - duration))
                clip = y[:, int(round(start * sr)):int(round(start * sr)) + int(duration * sr)]
                condition = random_degradation(rng)
                q, qsr = degrade(clip, sr, **condition)
                t = time.perf_counter()
                items = fingerprint(q, qsr).items
                fp_ms.append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                hits = index.search(items, limit=1)
                lookup_ms.append((time.perf_counter() - t) * 1e3)
                if not hits:
                    missed += 1
                    conditions_failed.append(condition | {"song": rec.name, "start": start})
                elif hits[0].key != rec.name:
                    wrong += 1
                    conditions_failed.append(condition | {"song": rec.name, "start": start})
                else:
                    correct += 1
                    errors.append(abs(hits[0].offset_s - start))
        false_accepts = 0
        for rec in left_out:
            length = len(rec.items()) * ITEM_S + 2.6
            start = float(rng.uniform(0, max(0.0, length - duration - 0.5)))
            clip, sr = rec.audio(offset_s=start, duration_s=duration)
            q, qsr = degrade(clip, sr, **random_degradation(rng))
            false_accepts += bool(index.search(fingerprint(q, qsr).items, limit=1))
        n = len(songs) * args.queries
        result["by_duration_s"][str(duration)] = {
            "queries": n, "top1": round(correct / n, 4), "wrong": wrong, "no_match": missed,
            "offset_error_s": percentiles(errors),
            "offset_error_within_0.13s": round(float(np.mean(np.array(errors) <= 0.13)), 4)
            if errors else None,
            "false_accepts": false_accepts, "left_out_queries": len(left_out),
            "fingerprint_ms": percentiles(fp_ms, (50, 95)),
            "lookup_ms": percentiles(lookup_ms, (50, 95)),
            "failed": conditions_failed[:10],
        }
        print(f"{duration:.0f} s done", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
