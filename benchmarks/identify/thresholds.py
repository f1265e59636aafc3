"""Measure the bit error rates that set the open-set rejection threshold, on generic music.

Only the distractor tracks are used (never the 4 benchmark songs): every other track is
indexed, the rest are held out. Degraded excerpts (random codec at 96 kbps, gain ±10 dB,
44.1/48 kHz, mono/stereo, fade) of 3, 5 and 10 s are searched with no threshold at all:

- true BER: the bit error rate of the correct track at the found alignment (indexed queries);
- impostor BER: the lowest bit error rate of any wrong track (indexed and held-out queries).

``chart_store.index.ACCEPT_BER`` (5 s and longer) and ``SHORT_ACCEPT_BER`` (3 s) sit
between the two distributions.

    nice -n 10 .venv/bin/python -m benchmarks.identify.thresholds [--per-track 1] [--max-tracks N]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from benchmarks.identify.common import (degrade, distractors, percentiles, random_degradation,
                                        unique)
from chart_store.fingerprint import ITEM_S, fingerprint
from chart_store.index import FingerprintIndex

DURATIONS = (3.0, 5.0, 10.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-track", type=int, default=1, help="excerpts per track and length")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-tracks", type=int, default=None,
                        help="use only this many tracks (spread over the packages)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    tracks = unique(distractors())
    if args.max_tracks and args.max_tracks < len(tracks):
        tracks = [tracks[i] for i in np.linspace(0, len(tracks) - 1, args.max_tracks).astype(int)]
    indexed, held_out = tracks[0::2], tracks[1::2]
    index = FingerprintIndex(accept_ber=0.5, short_accept_ber=0.5)  # see every candidate
    for rec in indexed:
        index.add(rec.name, rec.items())
    true_ber = {d: [] for d in DURATIONS}
    impostor_ber = {d: [] for d in DURATIONS}
    missed = {d: 0 for d in DURATIONS}
    for n, rec in enumerate(tracks):
        length = len(rec.items()) * ITEM_S + 2.6
        for duration in DURATIONS:
            for _ in range(args.per_track):
                start = float(rng.uniform(0, max(0.0, length - duration - 0.5)))
                y, sr = rec.audio(offset_s=start, duration_s=duration)
                y, sr = degrade(y, sr, **random_degradation(rng))
                hits = index.search(fingerprint(y, sr).items, limit=50)
                right = [h.bit_error_rate for h in hits if h.key == rec.name]
                wrong = [h.bit_error_rate for h in hits if h.key != rec.name]
                if wrong:
                    impostor_ber[duration].append(min(wrong))
                if rec in indexed:
                    if right:
                        true_ber[duration].append(right[0])
                    else:
                        missed[duration] += 1
        print(f"\r{n + 1}/{len(tracks)} tracks", end="", file=sys.stderr)
    print(file=sys.stderr)
    result = {"tracks": len(tracks), "indexed": len(indexed), "held_out": len(held_out),
              "by_duration_s": {}}
    for d in DURATIONS:
        result["by_duration_s"][str(d)] = {
            "true_ber": percentiles(true_ber[d], (50, 90, 99)),
            "true_not_found": missed[d],
            "impostor_best_ber": {"min": round(float(min(impostor_ber[d], default=1)), 4),
                                  **percentiles(impostor_ber[d], (1, 5, 50))},
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
