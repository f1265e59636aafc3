"""Identification at scale: lookup latency and index memory with 100,000 indexed tracks.

How the 100,000 tracks are built (honestly, from real music): the real recordings (4
benchmark songs + the unique distractors, ~10 hours) are indexed with their libchromaprint
fingerprints; the rest are pitch/tempo variants of the distractors — every distractor
re-pitched by 1..11 semitones (12-bin chroma rotation) and re-timed by factors 0.8..1.25
(chroma frames resampled), fingerprinted by the NumPy port of Chromaprint's pipeline in
:mod:`benchmarks.identify.variants` (bit-identical to libchromaprint on the same input). So
the index holds the item statistics of real music — repeated items, common values, long
posting lists — at the size of a large catalogue. ``--left-out`` distractors (and their
variants) stay out of the index for the false-accept count.

Queries: degraded excerpts (as ``benchmarks.identify.run``) of the 4 songs and of left-out
tracks. Reported: top-1, offset error, false accepts, lookup latency (median, p95) of
``FingerprintIndex.search`` alone, the index's memory (its arrays) and build time.

    nice -n 10 .venv/bin/python -m benchmarks.identify.scale [--tracks 100000] [--queries 10]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time

import numpy as np

from analyzer.decode import load
from benchmarks.identify.common import (CACHE, Recording, benchmark_songs, degrade, percentiles,
                                        random_degradation, split_distractors)
from benchmarks.identify.variants import SR, chroma, variants
from chart_store.fingerprint import ITEM_S, fingerprint
from chart_store.index import FingerprintIndex

DURATIONS = (3.0, 5.0, 10.0)


def raw_chroma(rec: Recording) -> np.ndarray:
    """Chroma frames of the recording's mono mix at 11025 Hz (cached)."""
    key = hashlib.sha1(("chroma|" + "|".join(rec.paths)).encode()).hexdigest()
    cached = CACHE / f"{key}.npy"
    if cached.exists():
        return np.load(cached)
    parts = [load(p, sr=SR, mono=True)[0] for p in rec.paths]
    n = min(len(p) for p in parts)
    y = sum(p[:n] for p in parts)
    raw = chroma(np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cached, raw)
    return raw


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10, help="per song and length")
    parser.add_argument("--left-out", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    songs = benchmark_songs()
    kept, left_out = split_distractors(rng, args.left_out)
    index = FingerprintIndex()
    for rec in songs + kept:
        index.add(rec.name, rec.items())
    t0 = time.perf_counter()
    originals = len(index)
    per_track = int(np.ceil((args.tracks - originals) / len(kept)))
    n_tempi = int(np.ceil(per_track / 11))
    tempi = np.geomspace(0.8, 1.25, n_tempi)
    for n, rec in enumerate(kept):
        raw = raw_chroma(rec)
        for tempo in tempi:
            if len(index) >= args.tracks:
                break
            for semitones, items in zip(range(1, 12), variants(raw, semitones=range(1, 12),
                                                               tempo=float(tempo))):
                if len(index) < args.tracks:
                    index.add(f"{rec.name}#{semitones:+d}st@{tempo:.3f}", items)
        print(f"\r{n + 1}/{len(kept)} recordings, {len(index)} tracks", end="", file=sys.stderr)
    print(file=sys.stderr)
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.search(songs[0].items()[:40])  # builds the arrays
    build_s = time.perf_counter() - t0
    snapshot = index._snapshot()
    result = {
        "tracks": len(index), "real_recordings": originals,
        "variants": len(index) - originals, "items": int(snapshot.items.size),
        "hours": round(snapshot.items.size * ITEM_S / 3600, 1),
        "distinct_item_values": int(snapshot.values.size),
        "index_bytes": index.nbytes, "index_mib": round(index.nbytes / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "variant_generation_s": round(generate_s, 1), "index_build_s": round(build_s, 1),
        "by_duration_s": {},
    }
    audio = {rec.name: rec.audio() for rec in songs}
    for duration in DURATIONS:
        correct, errors, lookup_ms, false_accepts = 0, [], [], 0
        for rec in songs:
            y, sr = audio[rec.name]
            for _ in range(args.queries):
                start = float(rng.uniform(0, y.shape[-1] / sr - duration))
                clip = y[:, int(round(start * sr)):int(round(start * sr)) + int(duration * sr)]
                q, qsr = degrade(clip, sr, **random_degradation(rng))
                items = fingerprint(q, qsr).items
                t = time.perf_counter()
                hits = index.search(items, limit=1)
                lookup_ms.append((time.perf_counter() - t) * 1e3)
                if hits and hits[0].key == rec.name:
                    correct += 1
                    errors.append(abs(hits[0].offset_s - start))
        for rec in left_out:
            length = len(rec.items()) * ITEM_S + 2.6
            start = float(rng.uniform(0, max(0.0, length - duration - 0.5)))
            clip, sr = rec.audio(offset_s=start, duration_s=duration)
            q, qsr = degrade(clip, sr, **random_degradation(rng))
            items = fingerprint(q, qsr).items
            t = time.perf_counter()
            false_accepts += bool(index.search(items, limit=1))
            lookup_ms.append((time.perf_counter() - t) * 1e3)
        n = len(songs) * args.queries
        result["by_duration_s"][str(duration)] = {
            "queries": n, "top1": round(correct / n, 4),
            "offset_error_s": percentiles(errors),
            "false_accepts": false_accepts, "left_out_queries": len(left_out),
            "lookup_ms": percentiles(lookup_ms, (50, 95)),
        }
        print(f"{duration:.0f} s done", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
