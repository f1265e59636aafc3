"""Sync and identification on the 4 real songs, through the live path (offline, block by block).

Run::

    nice -n 10 .venv/bin/python -m benchmarks.live.sync [--songs DIR] [--limit N] [--starts 3] [--seeks 1] [--pauses 1]
        [--charts imported,generated]

For each song of ``--songs`` (default :func:`benchmarks.data.songs_dir`, the benchmark set; tune
on :func:`benchmarks.data.dev_songs_dir`) every run is made twice, against a fresh local store
holding the human chart (:func:`analyzer.formats.import_song`: notes from notes.mid, fingerprint
and sync reference of the mix) and against one holding the chart generated from the mix
(:func:`analyzer.pipeline.analyze_audio`). Both charts are cached under the data folder, keyed
on what :func:`analyzer.features.sync_reference` makes (a change there makes them anew). Streams
are the mix (every stem summed: song.ogg + guitar.ogg) decoded at 48 kHz stereo at -6 dB,
re-encoded with a lossy codec at about 96 kbit/s (``--codec``, default opus; encoders delay the
signal by a few ms, which counts as error here), built as:

- ``start``: playback from a random point, 40 s;
- ``seek``: 20 s from one random point, then a jump to another, 20 s;
- ``pause``: 15 s, 3 s of silence (the player paused), then on from where it stopped, 15 s;
- ``pause-seek`` (``--pause-seeks``, none by default): the same, but playback resumes at
  another random point (a seek made while paused);
- ``change`` (``--changes``, none by default): 20 s of the song, then 20 s of the song before
  it in the list (a playlist moving on with no gap; that chart is in the store), and
  ``unknown``: 20 s of the song, then 20 s of the next one, which is not in the store yet. They
  measure how long the old chart stays on after the change (until ``changed`` or ``lost``), and
  how many of its notes are judged over the other song meanwhile.

Each stream runs through :class:`companion.app.LiveSession` at ``--speed max`` (the same code as
live), and the log's ``sync`` events are compared with the truth. Prints one JSON line per run
and a summary line: sync error (ms) median and p95 once locked, outside the 2 s after a seek or
a resume (those are the re-lock figures), time to identify (stream seconds), re-lock time after
each seek and resume (seconds until the error stays below 15 ms; for seeks also their median
and how many took at most 2 s).
"""
from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.data import song_folders, songs_dir
from benchmarks.identify.common import CODECS, DATA

SR = 48000
RELOCK_TOL_S = 0.015


def imported_chart(folder: Path):
    """The human chart of ``folder``, imported once and cached beside the data (importing
    computes masks: minutes per song on a busy machine)."""
    from analyzer.formats import import_song
    return _cached(folder.name, lambda: import_song(folder).chart)


def generated_chart(folder: Path):
    """The chart the analyzer makes from ``folder``'s mix, cached like :func:`imported_chart`."""
    def make():
        import soxr

        from analyzer.pipeline import ANALYSIS_SR, analyze_audio
        from chart_store.chart import ChartMeta

        mono = mix48(folder).mean(axis=1)
        y = soxr.resample(mono, SR, ANALYSIS_SR).astype(np.float32)
        return analyze_audio(y, ANALYSIS_SR, meta=ChartMeta(title=folder.name))
    return _cached(f"{folder.name}-generated", make)


@functools.lru_cache(maxsize=1)
def _sync_key() -> str:
    """8 hex digits naming what :func:`analyzer.features.sync_reference` makes: the hash of
    its reference of a fixed noise."""
    import hashlib

    from analyzer.features import sync_reference

    probe = sync_reference(np.random.default_rng(0).uniform(-0.5, 0.5, 44100)
                           .astype(np.float32), 44100)
    digest = hashlib.sha256(probe.envelope.tobytes() + repr(probe.frame_rate).encode())
    if probe.bands is not None:
        digest.update(probe.bands.tobytes() + repr(probe.band_rate).encode())
    return digest.hexdigest()[:8]


def _cached(name: str, make):
    """The chart ``make()`` gives, cached as ``NAME.KEY.ljchart`` (KEY: :func:`_sync_key`)."""
    from chart_store.chartfile import read_chart, write_chart

    cache = DATA / "live-charts" / f"{name}.{_sync_key()}.ljchart"
    if cache.exists():
        return read_chart(cache)
    chart = make()
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_chart(chart, cache)
    return chart


CHARTS = {"imported": imported_chart, "generated": generated_chart}


def mix48(folder: Path) -> np.ndarray:
    """The song's mix at 48 kHz, (n, 2) float32, at -6 dB."""
    from benchmarks.data import song_parts

    return (0.5 * song_parts(folder, mono=False, sr=SR).mix.T).astype(np.float32)


def scenario(kind: str, mix: np.ndarray, rng, other: np.ndarray | None = None
             ) -> tuple[np.ndarray, list]:
    """(stream, pieces): pieces are (stream_start_s, stream_end_s, chart_start_s or None);
    for ``change`` and ``unknown`` the second piece is from ``other`` (chart_start_s None)."""
    dur = mix.shape[0] / SR
    if kind in ("change", "unknown"):
        a = rng.uniform(0, dur - 25)
        b = rng.uniform(0, other.shape[0] / SR - 25)
        n = int(20 * SR)
        first = mix[int(round(a * SR)):int(round(a * SR)) + n]
        return (np.concatenate([first, other[int(round(b * SR)):int(round(b * SR)) + n]]),
                [(0.0, 20.0, a), (20.0, 40.0, None)])
    if kind == "start":
        a = rng.uniform(0, dur - 45)
        pieces = [(0.0, 40.0, a)]
    elif kind == "seek":
        a, b = rng.uniform(0, dur - 25, size=2)
        while abs(a - b) < 10:
            b = rng.uniform(0, dur - 25)
        pieces = [(0.0, 20.0, a), (20.0, 40.0, b)]
    elif kind == "pause":
        a = rng.uniform(0, dur - 35)
        pieces = [(0.0, 15.0, a), (15.0, 18.0, None), (18.0, 33.0, a + 15.0)]
    else:  # pause-seek
        a, b = rng.uniform(0, dur - 20, size=2)
        while abs(a + 15.0 - b) < 10:
            b = rng.uniform(0, dur - 20)
        pieces = [(0.0, 15.0, a), (15.0, 18.0, None), (18.0, 33.0, b)]
    out = []
    for s0, s1, c0 in pieces:
        n = int(round((s1 - s0) * SR))
        out.append(np.zeros((n, 2), np.float32) if c0 is None
                   else mix[int(round(c0 * SR)):int(round(c0 * SR)) + n])
    return np.concatenate(out), pieces


def streamed(path: Path, codec: str) -> Path:
    """``path`` through a lossy codec at about 96 kbit/s and back to 48 kHz float WAV."""
    import subprocess

    args, ext = CODECS[codec]
    coded = path.with_suffix(f".{ext}")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), *args, str(coded)],
                   check=True)
    from analyzer.decode import load

    y, _ = load(coded, sr=SR, mono=False)
    out = path.with_name(path.stem + "-coded.wav")
    sf.write(out, y.T, SR, subtype="FLOAT")
    return out


def truth(pieces, stream_s: float):
    for s0, s1, c0 in pieces:
        if s0 <= stream_s < s1:
            return None if c0 is None else c0 + stream_s - s0
    return None


def run_stream(path: Path, log_path: Path, store) -> list[dict]:
    from companion.app import EventLog, LiveOptions, LiveSession
    from companion.audio import open_sink, open_source

    options = LiveOptions(source=str(path), sink="null", speed="max", player="autoplay",
                          record_unknown=False)
    source = open_source(options.source)
    log = EventLog(log_path)
    session = LiveSession(options, source=source, sink=open_sink("null", sr=source.sr), log=log,
                          resolver=store)
    session.run()
    log.close()
    return [json.loads(line) for line in log_path.read_text().splitlines()]


def change_figures(events, change_s: float = 20.0) -> dict:
    """After the song changes at ``change_s``: seconds until the old chart is dropped (a
    ``changed``, ``lost`` or new ``identified`` event; None: never), and the old chart's notes
    judged over the other song meanwhile."""
    dropped = next((e["stream_s"] if "stream_s" in e else e["after_s"] for e in events
                    if e["event"] in ("changed", "lost", "identified")
                    and e.get("stream_s", e.get("after_s", 0)) >= change_s), None)
    until = np.inf if dropped is None else dropped
    judged = sum(1 for e in events if e["event"] == "judgement"
                 and change_s <= e["stream_s"] < until)
    return {"old_chart_kept_s": None if dropped is None else round(dropped - change_s, 2),
            "old_notes_judged": judged}


def evaluate(events, pieces) -> dict:
    ident = next((e for e in events if e["event"] == "identified"), None)
    syncs = [e for e in events if e["event"] == "sync"]
    jumps = [s0 for s0, _, c0 in pieces[1:] if c0 is not None]  # seek or resume
    errors, relocks = [], []
    for e in syncs:
        t = truth(pieces, e["stream_s"])
        if t is None or any(j <= e["stream_s"] < j + 2.0 for j in jumps):
            continue
        errors.append(abs(e["chart_s"] - t))
    for j in jumps:
        after = [(e["stream_s"], truth(pieces, e["stream_s"])) for e in syncs
                 if e["stream_s"] >= j]
        after = [(s, abs(c["chart_s"] - t)) for (s, t), c in
                 zip(after, [e for e in syncs if e["stream_s"] >= j]) if t is not None]
        bad = [s for s, err in after if err > RELOCK_TOL_S]
        ok_from = next((s for s, err in after if s > (bad[-1] if bad else j - 1)), None)
        relocks.append(None if ok_from is None else ok_from - j)
    return {"identified_after_s": None if ident is None else ident["after_s"],
            "errors_ms": [round(1000 * e, 3) for e in errors], "relock_s": relocks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", default=None,
                        help="folder of song folders (default: the benchmark set; "
                             "benchmarks.data.dev_songs_dir() for tuning)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N songs")
    parser.add_argument("--starts", type=int, default=3, help="random-start runs per song")
    parser.add_argument("--seeks", type=int, default=1, help="seek runs per song")
    parser.add_argument("--pauses", type=int, default=1, help="pause runs per song")
    parser.add_argument("--pause-seeks", type=int, default=0,
                        help="runs per song that resume elsewhere after a pause")
    parser.add_argument("--changes", type=int, default=0,
                        help="runs per song that move on to another song, known and unknown")
    parser.add_argument("--charts", default="imported,generated",
                        help="comma-separated: imported (human notes.mid), generated (analyzer)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--codec", default="opus", choices=("none", *CODECS),
                        help="re-encode each stream as streaming services do (default opus "
                             "96 kbit/s)")
    args = parser.parse_args(argv)
    import os

    from chart_store.local import LocalStore

    kinds = [k for k in args.charts.split(",") if k]
    if not kinds or any(k not in CHARTS for k in kinds):
        parser.error(f"--charts takes {', '.join(CHARTS)}")
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="loopjam-bench-live-"))
    os.environ["LOOPJAM_HOME"] = str(tmp / "home")
    stores = {kind: LocalStore(tmp / f"store-{kind}") for kind in kinds}
    all_errors, idents, relocks = [], [], {"seek": [], "pause": [], "pause-seek": []}
    changes = {"change": [], "unknown": []}
    root = songs_dir(args.songs)
    folders = song_folders(root)[:args.limit]
    for index, folder in enumerate(folders):
        t0 = time.perf_counter()
        for kind in kinds:
            stores[kind].put(CHARTS[kind](folder))
        mix = mix48(folder)
        import_s = time.perf_counter() - t0
        # The song before this one is in the store by now; the one after is not yet.
        others = {"change": folders[index - 1] if index else None,
                  "unknown": folders[index + 1] if index + 1 < len(folders) else None}
        scenes = (["start"] * args.starts + ["seek"] * args.seeks + ["pause"] * args.pauses
                  + ["pause-seek"] * args.pause_seeks
                  + [k for k in ("change", "unknown") if others[k]] * args.changes)
        for scene in scenes:
            other = mix48(others[scene]) if scene in others else None
            stream, pieces = scenario(scene, mix, rng, other)
            path = tmp / "stream.wav"
            sf.write(path, stream, SR, subtype="FLOAT")
            if args.codec != "none":
                path = streamed(path, args.codec)
            for kind in kinds:
                t0 = time.perf_counter()
                events = run_stream(path, tmp / f"log-{folder.name}-{len(idents)}-{scene}"
                                    f"-{kind}.jsonl", stores[kind])
                wall = time.perf_counter() - t0
                result = evaluate(events, pieces)
                errors = np.array(result.pop("errors_ms"))
                all_errors += list(errors)
                idents.append(result["identified_after_s"])
                if scene in relocks:
                    relocks[scene] += result["relock_s"]
                if scene in changes:
                    result.update(change_figures(events))
                    changes[scene].append(result)
                print(json.dumps({"song": folder.name, "chart": kind, "kind": scene,
                                  "pieces": [[round(x, 2) if x is not None else None
                                              for x in p] for p in pieces],
                                  **result,
                                  "sync_median_ms": round(float(np.median(errors)), 3)
                                  if errors.size else None,
                                  "sync_p95_ms": round(float(np.percentile(errors, 95)), 3)
                                  if errors.size else None,
                                  "sync_max_ms": round(float(errors.max()), 3)
                                  if errors.size else None,
                                  "sync_events": int(errors.size),
                                  "run_wall_s": round(wall, 1),
                                  "import_s": round(import_s, 1)}), flush=True)
    errors = np.array(all_errors)
    found = [i for i in idents if i is not None]

    def worst(values):
        return max((r for r in values if r is not None), default=None)

    def median(values):  # a re-lock that never came counts as the slowest (None: most)
        middle = np.median([np.inf if r is None else r for r in values]) if values else np.inf
        return round(float(middle), 3) if np.isfinite(middle) else None

    print(json.dumps({"summary": True, "songs": str(root), "charts": kinds, "logs": str(tmp),
                      "runs": len(idents), "identified": len(found),
                      "sync_median_ms": round(float(np.median(errors)), 3),
                      "sync_p95_ms": round(float(np.percentile(errors, 95)), 3),
                      "sync_max_ms": round(float(errors.max()), 3),
                      "sync_over_15ms_share": round(float(np.mean(errors > 15)), 4),
                      "identify_median_s": round(float(np.median(found)), 3) if found else None,
                      "identify_max_s": max(found) if found else None,
                      "relock_seek_s": relocks["seek"], "relock_pause_s": relocks["pause"],
                      "relock_seek_median_s": median(relocks["seek"]),
                      "relock_seek_within_2s": sum(r is not None and r <= 2.0
                                                   for r in relocks["seek"]),
                      "relock_seek_max_s": worst(relocks["seek"]),
                      "relock_pause_max_s": worst(relocks["pause"]),
                      **({"relock_pause_seek_s": relocks["pause-seek"],
                          "relock_pause_seek_within_2s": sum(r is not None and r <= 2.0
                                                             for r in relocks["pause-seek"]),
                          "relock_pause_seek_median_s": median(relocks["pause-seek"])}
                         if relocks["pause-seek"] else {}),
                      "relock_failed": sum(r is None for rs in relocks.values() for r in rs),
                      **{f"{scene}_old_chart_kept_s": [r["old_chart_kept_s"] for r in runs]
                         for scene, runs in changes.items() if runs},
                      **{f"{scene}_old_notes_judged": sum(r["old_notes_judged"] for r in runs)
                         for scene, runs in changes.items() if runs},
                      }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
