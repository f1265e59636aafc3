"""Identification at scale: accuracy, false accepts, lookup latency and index memory with
100,000 indexed tracks.

How the 100,000 tracks are built (from real music): the real recordings — the 4 benchmark
songs, the 4 development songs and the de-duplicated distractors of ``fetch_distractors.sh``
(tracks of Debian game-music packages) that are not left out, about 100 recordings — are
indexed with their libchromaprint fingerprints; the rest are pitch/tempo variants of the
indexed distractors: each re-pitched by 1..11 semitones (12-bin chroma rotation) and re-timed
by factors 0.8..1.25 (chroma frames resampled), fingerprinted by the NumPy port of
Chromaprint's pipeline in :mod:`benchmarks.identify.variants` (bit-identical to libchromaprint
on the same input), about 1,000 variants per recording. So the index holds the item statistics
of real music — repeated items, common values (silence), long posting lists — at the size of a
large catalogue (245 million items, 8,400 hours). What it lacks is the variety of 100,000
different songs: neighbouring tempo variants of one recording (0.5 % apart) share most of
their items, so its wrong matches are correlated, and impostors of a real 100,000-song
catalogue may come closer than here. The variants are cached on disk (generating them takes
minutes), and so are the de-duplicated distractors and the degraded queries.

The distractors are split at random (``--seed``) into indexed ones, ``--left-out`` ones whose
excerpts measure false accepts on songs the index does not know, and 40 more set aside for
``benchmarks.identify.thresholds`` (thresholds are tuned on those and on the development
songs, never on what this script reports).

Queries: ``--queries`` excerpts per length of the queried songs (``--songs DIR``, default the
4 benchmark songs; ``benchmarks.data.dev_songs_dir()`` is the development set thresholds are
tuned on), from random points, each through a random streaming condition (as
``benchmarks.identify.run``), and one excerpt per left-out track and length. Reported per
length: top-1 with its 95 % Wilson interval, wrong / no-match counts, offset error, false
accepts with a 95 % upper bound on their rate, lookup latency of ``FingerprintIndex.search``
alone (wall and CPU time); the index's memory (its arrays), peak RSS and build time.

    nice -n 10 .venv/bin/python -m benchmarks.identify.scale [--tracks 100000] [--queries 100]
        [--left-out 60] [--songs DIR]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from dataclasses import dataclass

import numpy as np

from analyzer.decode import load
from benchmarks.data import dev_songs_dir
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


def fill_with_variants(index: FingerprintIndex, recordings: list[Recording], tracks: int) -> None:
    """Add pitch/tempo variants of ``recordings`` until ``index`` holds ``tracks`` tracks:
    each recording gets the same number, 11 pitches at each of a few tempi in 0.8..1.25."""
    per_track = int(np.ceil(max(0, tracks - len(index)) / max(1, len(recordings))))
    tempi = np.geomspace(0.8, 1.25, int(np.ceil(per_track / 11)))
    for n, rec in enumerate(recordings):
        raw = raw_chroma(rec)
        for tempo in tempi:
            if len(index) >= tracks:
                break
            for semitones, items in zip(range(1, 12), variants(raw, semitones=range(1, 12),
                                                               tempo=float(tempo))):
                if len(index) < tracks:
                    index.add(f"{rec.name}#{semitones:+d}st@{tempo:.3f}", items)
        print(f"\r{n + 1}/{len(recordings)} recordings, {len(index)} tracks", end="",
              file=sys.stderr)
    print(file=sys.stderr)


@dataclass(frozen=True)
class Scale:
    """The recordings of one scale experiment.

    ``songs`` (the benchmark songs and the development songs) and ``kept`` distractors are
    indexed; ``report`` and ``tune`` are two disjoint sets of distractors left out of the
    index: false accepts are reported on ``report``, thresholds are tuned on ``tune``.
    """

    songs: list[Recording]
    kept: list[Recording]
    report: list[Recording]
    tune: list[Recording]


def scale_recordings(seed: int = 11, *, report: int = 60, tune: int = 40) -> Scale:
    """The benchmark and development songs, and the distractors (minus those songs) split at
    random into indexed, left out for reporting and left out for tuning."""
    songs = benchmark_songs() + benchmark_songs(dev_songs_dir())
    rng = np.random.default_rng(seed)
    kept, left_out = split_distractors(rng, report + tune, songs=songs)
    return Scale(songs, kept, left_out[:report], left_out[report:])


def scale_index(scale: Scale, tracks: int, **options) -> FingerprintIndex:
    """The index of ``scale``'s songs and kept distractors filled up to ``tracks`` tracks with
    variants (the variants' items are cached on disk: generating them takes minutes)."""
    index = FingerprintIndex(**options)
    for rec in scale.songs + scale.kept:
        index.add(rec.name, rec.items())
    names = "|".join(rec.name for rec in scale.kept) + f"|{tracks}"
    cached = CACHE / f"variants-{hashlib.sha1(names.encode()).hexdigest()[:16]}.npz"
    if cached.exists():
        with np.load(cached) as saved:
            items, lengths, keys = saved["items"], saved["lengths"], saved["keys"]
        for key, run in zip(keys, np.split(items, np.cumsum(lengths)[:-1])):
            index.add(str(key), run)
        return index
    originals = set(index._runs)
    fill_with_variants(index, scale.kept, tracks)
    added = [key for key in index._runs if key not in originals]
    runs = [index._runs[key] for key in added]
    np.savez(cached, items=np.concatenate(runs) if runs else np.zeros(0, np.uint32),
             lengths=np.array([len(r) for r in runs], np.int64), keys=np.array(added))
    return index


@dataclass(frozen=True)
class Query:
    """A degraded excerpt: the recording it comes from, where it starts, its items."""

    name: str
    start_s: float
    items: np.ndarray


def song_queries(songs: list[Recording], duration: float, count: int, seed: int
                 ) -> list[Query]:
    """``count`` degraded excerpts spread evenly over ``songs``, from random points."""
    rng = np.random.default_rng([seed, int(duration * 1000), 1])
    audio = {rec.name: rec.audio() for rec in songs}
    queries = []
    for k in range(count):
        rec = songs[k % len(songs)]
        y, sr = audio[rec.name]
        start = float(rng.uniform(0, y.shape[-1] / sr - duration))
        clip = y[:, int(round(start * sr)):int(round(start * sr)) + int(duration * sr)]
        q, qsr = degrade(clip, sr, **random_degradation(rng))
        queries.append(Query(rec.name, start, fingerprint(q, qsr).items))
    return queries


def track_queries(recordings: list[Recording], duration: float, seed: int) -> list[Query]:
    """One degraded excerpt from a random point of each recording."""
    rng = np.random.default_rng([seed, int(duration * 1000), 2])
    queries = []
    for rec in recordings:
        length = len(rec.items()) * ITEM_S + 2.6
        start = float(rng.uniform(0, max(0.0, length - duration - 0.5)))
        clip, sr = rec.audio(offset_s=start, duration_s=duration)
        q, qsr = degrade(clip, sr, **random_degradation(rng))
        queries.append(Query(rec.name, start, fingerprint(q, qsr).items))
    return queries


def cached(make, *args) -> list[Query]:
    """``make(*args)``, kept on disk: degrading hundreds of excerpts through ffmpeg takes
    minutes, and the queries do not depend on the index."""
    recordings = args[0]
    key = "|".join([make.__name__, *(r.name for r in recordings), *map(str, args[1:])])
    path = CACHE / f"queries-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
    if path.exists():
        return [Query(name, start, np.array(items, np.uint32))
                for name, start, items in json.loads(path.read_text())]
    queries = make(*args)
    path.write_text(json.dumps([[q.name, q.start_s, q.items.tolist()] for q in queries]))
    return queries


def wilson(successes: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def timed_search(index: FingerprintIndex, items: np.ndarray, wall: list, cpu: list):
    t, c = time.perf_counter(), time.process_time()
    hits = index.search(items, limit=1)
    wall.append((time.perf_counter() - t) * 1e3)
    cpu.append((time.process_time() - c) * 1e3)
    return hits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100, help="song excerpts per length")
    parser.add_argument("--left-out", type=int, default=60, help="distractors not indexed")
    parser.add_argument("--songs", default=None, help="folder of queried songs (default: the "
                        "4 benchmark songs)")
    parser.add_argument("--durations", default="3,5,10", help="excerpt lengths, seconds")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    scale = scale_recordings(args.seed, report=args.left_out)
    songs = benchmark_songs(args.songs)
    t0 = time.perf_counter()
    index = scale_index(scale, args.tracks)
    for rec in songs:  # songs from another folder than the two sets
        if rec.name not in index:
            index.add(rec.name, rec.items())
    generate_s = time.perf_counter() - t0
    originals = len(scale.songs) + len(scale.kept)
    t0 = time.perf_counter()
    snapshot = index._snapshot()  # builds the arrays
    build_s = time.perf_counter() - t0
    left_out = scale.report
    result = {
        "tracks": len(index), "real_recordings": originals, "variants": len(index) - originals,
        "items": int(snapshot.items.size),
        "hours": round(snapshot.items.size * ITEM_S / 3600, 1),
        "postings": int(snapshot.postings.size),
        "index_bytes": index.nbytes, "index_mib": round(index.nbytes / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "variants_s": round(generate_s, 1), "index_build_s": round(build_s, 1),
        "songs": [rec.name for rec in songs], "by_duration_s": {},
    }
    for duration in [float(d) for d in args.durations.split(",")]:
        correct, wrong, missed, errors, wall, cpu, failed = 0, 0, 0, [], [], [], []
        for q in cached(song_queries, songs, duration, args.queries, args.seed):
            hits = timed_search(index, q.items, wall, cpu)
            if hits and hits[0].key == q.name:
                correct += 1
                errors.append(abs(hits[0].offset_s - q.start_s))
            else:
                wrong += bool(hits)
                missed += not hits
                failed.append({"song": q.name, "start_s": round(q.start_s, 2),
                               "got": hits[0].key if hits else None,
                               "ber": round(hits[0].bit_error_rate, 4) if hits else None})
        false_accepts = []
        for q in cached(track_queries, left_out, duration, args.seed):
            hits = timed_search(index, q.items, wall, cpu)
            if hits:
                false_accepts.append({"track": q.name, "got": hits[0].key,
                                      "ber": round(hits[0].bit_error_rate, 4)})
        n = args.queries
        result["by_duration_s"][str(duration)] = {
            "queries": n, "top1": round(correct / n, 4), "top1_95ci": wilson(correct, n),
            "wrong": wrong, "no_match": missed,
            "offset_error_s": percentiles(errors),
            "offset_error_within_0.13s": round(float(np.mean(np.array(errors) <= 0.13)), 4)
            if errors else None,
            "false_accepts": len(false_accepts), "left_out_queries": len(left_out),
            # With no false accept in n tries, the rate is below 3/n at 95 % ("rule of three").
            "false_accept_rate_95_upper": wilson(len(false_accepts), len(left_out))[1]
            if false_accepts else round(3 / max(1, len(left_out)), 4),
            "lookup_ms": percentiles(wall, (50, 95)), "lookup_cpu_ms": percentiles(cpu, (50, 95)),
            "failed": failed[:10], "false_accepted": false_accepts[:10],
        }
        print(f"{duration:.0f} s done", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
