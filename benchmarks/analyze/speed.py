"""Speed of ``loopjam analyze``'s default path on the real songs: wall time, real-time factor,
peak memory, and where the time goes.

Each song's mix (every stem summed, here song.ogg + guitar.ogg; stereo, written as Ogg Vorbis
like the originals; any Frets on Fire / Clone Hero / YARG song folder, see
:func:`benchmarks.data.song_parts`) is
analyzed as an unknown file in a fresh Python process, so the wall time includes interpreter start,
imports and model loading, as a user running ``loopjam analyze song.ogg`` pays them. Peak memory
is the child's peak resident set size.

    nice -n 10 .venv/bin/python -m benchmarks.analyze.speed [--set bench|dev] [--songs DIR]
        [--stems auto] [--limit N]

Prints one JSON line per song and a summary line. ``realtime_x`` is seconds of audio per second
of wall time; on a shared machine ``cpu_realtime_x`` (audio seconds per CPU second of the child)
and the per-stage CPU times are the figures that do not depend on the other load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_STARTED = time.perf_counter()


def write_mix(folder: Path, out: Path) -> float:
    """Sum the song folder's stems (stereo, the first stem's rate) into ``out``; returns its
    seconds."""
    import numpy as np
    import soundfile as sf

    from benchmarks.data import song_parts

    parts = song_parts(folder, mono=False)
    mix = parts.mix
    frames = (mix / max(float(np.max(np.abs(mix))), 1.0)).T
    # libsndfile's Vorbis encoder crashes on very large single writes: feed it in blocks.
    with sf.SoundFile(out, "w", parts.sr, 2, format="OGG", subtype="VORBIS") as f:
        for i in range(0, len(frames), 1 << 16):
            f.write(frames[i:i + (1 << 16)])
    return mix.shape[1] / parts.sr


def child(path: str, stems: str) -> None:
    """Analyze one file in this process; print stage times as JSON."""
    def mark(name):
        marks.append((name, time.perf_counter(), time.process_time()))

    marks = []
    mark("imports")
    from analyzer.pipeline import analyze_file
    chart = analyze_file(path, stems=stems, progress=mark)
    mark("end")
    # seconds from each mark to the next: wall, and CPU of all this process's threads
    stages = {name: round(marks[i + 1][1] - t, 3) for i, (name, t, _) in enumerate(marks[:-1])}
    cpu = {name: round(marks[i + 1][2] - c, 3) for i, (name, _, c) in enumerate(marks[:-1])}
    print(json.dumps({"stages_s": stages, "stages_cpu_s": cpu,
                      "in_process_s": round(marks[-1][1] - _STARTED, 3),
                      "tool_version": chart.meta.tool_version,
                      "notes": {d: len(t) for d, t in chart.difficulties.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("songs_pos", nargs="?", metavar="SONGS_DIR",
                        help="songs folder (same as --songs)")
    parser.add_argument("--songs", help="songs folder (overrides --set)")
    parser.add_argument("--set", dest="song_set", choices=("bench", "dev"), default="bench",
                        help="the benchmark songs (default) or the development songs")
    parser.add_argument("--stems", default="auto")
    parser.add_argument("--limit", type=int, default=0, help="only the first N songs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.stems)

    from benchmarks.data import dev_songs_dir, song_folders, songs_dir

    explicit = args.songs or args.songs_pos
    root = songs_dir(explicit) if explicit or args.song_set == "bench" else dev_songs_dir()
    folders = song_folders(root)
    folders = folders[:args.limit or None]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in folders:
            mix = Path(tmp) / f"{folder.name}.ogg"
            duration = write_mix(folder, mix)
            env = dict(os.environ, LOOPJAM_HOME=str(Path(tmp) / "home"))
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "benchmarks.analyze.speed", "--child",
                                     str(mix), "--stems", args.stems], env=env,
                                    stdout=subprocess.PIPE, text=True)
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
            wall = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status):
                raise SystemExit(f"{folder.name}: analysis failed ({status})")
            row = {"song": folder.name, "duration_s": round(duration, 2), "wall_s": round(wall, 2),
                   "realtime_x": round(duration / wall, 1),
                   "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                   "cpu_realtime_x": round(duration / (usage.ru_utime + usage.ru_stime), 1),
                   "peak_rss_mb": round(usage.ru_maxrss / 1024), **json.loads(out)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {"songs": len(rows), "stems": args.stems, "cores": os.cpu_count(),
               "mean_realtime_x": round(sum(r["realtime_x"] for r in rows) / len(rows), 1),
               "min_realtime_x": min(r["realtime_x"] for r in rows),
               "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
               # duration / CPU seconds: what an idle machine's wall clock would show for a
               # (mostly) single-threaded pipeline, whatever else this machine is running
               "mean_cpu_realtime_x": round(sum(r["cpu_realtime_x"] for r in rows) / len(rows), 1),
               "mean_stage_cpu_s": {stage: round(sum(r["stages_cpu_s"][stage] for r in rows)
                                                 / len(rows), 2)
                                    for stage in rows[0]["stages_cpu_s"]},
               "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
