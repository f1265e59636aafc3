"""Real time through a real sound server: glitch-free seconds, CPU share and added latency.

Run::

    nice -n 10 .venv/bin/python -m benchmarks.live.realtime [--songs DIR] [--song NAME]
        [--seconds 60] [--latency-ms 100] [--block FRAMES]

A headless PulseAudio (tests/fixtures/pulse.py: null sinks A and B, float32 48 kHz) plays a real
song (the mix of one of the 4 songs, its human chart in the store) into A with paplay, in real
time. ``loopjam play --source loopback:A --sink B --player autoplay`` captures A's monitor,
identifies, syncs, plays, and writes the processed stream (nothing removed: autoplay hits every
note) to B; A's and B's monitors are recorded with parec. Reported:

- glitch-free seconds: share of the song's seconds that B holds sample for sample at the one
  most common lag (no dropped, repeated or inserted samples), and the lags seen;
- CPU share: the play process's CPU time (all threads, /proc) over wall time in steady state
  (from identification to the end), percent of one core, and per thread name (Python threads
  are all "python"; "threaded-ml" is libpulse's);
- latency: A -> B lag; minus the device buffer asked for (--latency-ms) it is what LoopJam adds
  (capture block, processor delay, scheduling); and the sink's latency as the engine states it
  (PulseAudio measures it once playing) for the game clock;
- xruns: capture overruns and output underruns the engine counted (each shows in the log as a
  ``warning``; the output stays at one lag through them);
- sync error (ms) against the truth from the exact stream time of the song's first sample.

The machine's other load counts against these figures (the load average is printed). The
server, paplay and parec get real-time priority (as rtkit gives a desktop's), so the measurement
itself does not glitch.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.data import song_folders, songs_dir
from benchmarks.live.sync import SR, imported_chart, mix48


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` by thread name (threads of one name summed)."""
    out: dict[str, float] = collections.defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name, rest = task.joinpath("stat").read_text().split("(", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue  # the thread ended
        fields = rest.split()
        out[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", default=None,
                        help="folder of song folders (default: the benchmark set)")
    parser.add_argument("--song", default=None, help="the song's folder name (default: the "
                        "second song of --songs, chaos_god in the benchmark set)")
    parser.add_argument("--start", type=float, default=30.0, help="chart second to start at")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--block", type=int, default=None, help="capture block, frames "
                        "(default: loopjam play's)")
    args = parser.parse_args(argv)
    from chart_store.local import LocalStore
    from tests.fixtures.pulse import Parec, find_lag, realtime_cmd, start_pulse, stop_pulse

    tmp = Path(tempfile.mkdtemp(prefix="loopjam-bench-rt-"))
    os.environ["LOOPJAM_HOME"] = str(tmp / "home")
    folders = song_folders(songs_dir(args.songs))
    folder = folders[1] if args.song is None else songs_dir(args.songs) / args.song
    LocalStore().put(imported_chart(folder))
    mix = mix48(folder)
    song = mix[int(args.start * SR):int((args.start + args.seconds) * SR)].copy()
    song[0] = 0.5  # a click on the first sample marks its stream time in the log ("sound")
    lead = np.zeros((SR // 2, 2), np.float32)  # a new stream's first ms never reach the monitor
    sf.write(tmp / "song.wav", np.concatenate([lead, song]), SR, subtype="FLOAT")

    server, pid = start_pulse()
    log = tmp / "live.jsonl"
    try:
        rec_a = Parec.start(server, "A.monitor", tmp / "a.raw")
        rec_b = Parec.start(server, "B.monitor", tmp / "b.raw")
        b_earlier = Parec.start_offset(rec_a, rec_b)
        play = subprocess.Popen(
            [sys.executable, "-m", "companion", "play", "--source", "loopback:A", "--sink", "B",
             "--no-overlay", "--player", "autoplay", "--no-record", "--log", str(log),
             "--latency-ms", str(args.latency_ms),
             *([] if args.block is None else ["--block", str(args.block)])],
            env=server.env | {"LOOPJAM_HOME": os.environ["LOOPJAM_HOME"]},
            stderr=subprocess.DEVNULL)
        while not log.exists():
            time.sleep(0.1)
        time.sleep(1.0)
        player = subprocess.Popen(realtime_cmd(["paplay", "--device=A", "--latency-msec=300",
                                                str(tmp / "song.wav")]), env=server.env)
        while '"identified"' not in log.read_text():
            if player.poll() is not None:
                break
            time.sleep(0.1)
        cpu0, wall0 = cpu_seconds(play.pid), time.monotonic()
        threads0 = thread_cpu_seconds(play.pid)
        player.wait()
        cpu1, wall1 = cpu_seconds(play.pid), time.monotonic()
        threads1 = thread_cpu_seconds(play.pid)
        load = os.getloadavg()
        time.sleep(0.5)
        play.send_signal(signal.SIGINT)
        play.wait(timeout=60)
        a = rec_a.stop()[:, 0]
        b = rec_b.stop()[:, 0]
    finally:
        stop_pulse(server, pid)

    events = [json.loads(line) for line in log.read_text().splitlines()]
    end = events[-1]
    # The device buffer as the sink states it (PulseAudio measures it once playing).
    sink_ms = end.get("sink_latency_samples", args.latency_ms / 1000 * SR) / SR * 1000
    first = int(np.flatnonzero(np.abs(a) > 1e-3)[0])
    last = int(np.flatnonzero(np.abs(a) > 1e-3)[-1])
    starts = list(range(first, last - SR, SR))
    lags = [find_lag(a, b, sr=SR, start=s) for s in starts]
    exact = [np.array_equal(a[s:s + SR], b[s + lag:s + lag + SR]) for s, lag in zip(starts, lags)]
    lags = [lag - b_earlier for lag in lags]  # both recordings on one clock (to about 10 ms)
    mode = collections.Counter(lag for lag, ok in zip(lags, exact) if ok).most_common(1)
    lag = mode[0][0] if mode else None
    clean = [ok and lg == lag for lg, ok in zip(lags, exact)]
    sound = next(e["stream_s"] for e in events if e["event"] == "sound" and e["stream_s"] > 0.5)
    errors = np.array([abs(e["chart_s"] - (args.start + e["stream_s"] - sound))
                       for e in events if e["event"] == "sync"
                       and sound + 2 < e["stream_s"] < sound + args.seconds - 1])
    ident = next((e for e in events if e["event"] == "identified"), None)
    print(json.dumps({
        "song": folder.name, "seconds": len(starts), "glitch_free_seconds": int(sum(clean)),
        "glitch_free_share": round(float(np.mean(clean)), 4) if clean else None,
        "exact_at_some_lag_share": round(float(np.mean(exact)), 4) if exact else None,
        "lags_ms": sorted({round(x / SR * 1000, 2) for x, ok in zip(lags, exact) if ok}),
        "a_to_b_ms": None if lag is None else round(lag / SR * 1000, 2),
        "device_buffer_ms": args.latency_ms,
        "added_ms": None if lag is None else round(lag / SR * 1000 - args.latency_ms, 2),
        "stated_sink_latency_ms": round(sink_ms, 2),
        "overruns": end.get("overruns"), "underruns": end.get("underruns"),
        "stated_output_latency_ms": round(end["output_latency_samples"] / SR * 1000, 2),
        "cpu_share_percent": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 2),
        "cpu_steady_wall_s": round(wall1 - wall0, 1),
        "cpu_share_percent_by_thread": {
            name: round(100 * (threads1[name] - threads0.get(name, 0.0)) / (wall1 - wall0), 2)
            for name in sorted(threads1) if threads1[name] > threads0.get(name, 0.0)},
        "thread_cpu_s": end.get("cpu_s"), "stream_s": end["stream_s"],
        "identified_after_sound_s": None if ident is None else round(ident["after_s"] - sound, 3),
        "sync_median_ms": round(float(np.median(errors)) * 1000, 3) if errors.size else None,
        "sync_p95_ms": round(float(np.percentile(errors, 95)) * 1000, 3) if errors.size else None,
        "audio_priority": end.get("audio_priority"), "load_average": load}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
