"""`loopjam play` offline (FILE source, FILE.wav sink, --speed max): the live path block by block.

A synthetic song is charted into the local store (real fingerprint + sync reference); the
"stream" is the same song resampled to 48 kHz, starting part-way, so the true chart time of
every stream second is known."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from analyzer.features import sync_reference
from chart_store.chart import Chart, ChartMeta, Note
from chart_store.fingerprint import fingerprint
from chart_store.local import LocalStore
from companion.cli import main
from tests.fixtures.songs import synth_song

SR = 22050
START_S = 6.3  # chart time of the stream's first sample


def make_chart(seed=3, seconds=40.0):
    y = synth_song(seed, duration_s=seconds, sr=SR)
    notes = tuple(Note(t=float(t), lane=int(i % 5))
                  for i, t in enumerate(np.arange(1, seconds - 1, 0.5)))
    chart = Chart(ChartMeta(f"Synth {seed}", "Synth", duration_s=y.size / SR), {"expert": notes,
                  "easy": notes[::4]}, fingerprint=fingerprint(y, SR), sync=sync_reference(y, SR))
    return chart, y


def stream_file(path, y, *, start_s=START_S, seconds=None, sr=48000):
    from scipy.signal import resample_poly
    z = resample_poly(y, sr // 150, SR // 150).astype(np.float32)  # 22050 -> 48000
    z = z[int(round(start_s * sr)):]
    if seconds is not None:
        z = z[:int(seconds * sr)]
    soundfile.write(path, np.stack([z, z], axis=1), sr, subtype="FLOAT")
    return z


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def song():
    return make_chart()


def test_play_offline_identifies_syncs_and_judges(tmp_path, song):
    chart, y = song
    chart_id = LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=20)
    log = tmp_path / "log.jsonl"
    rc = main(["play", str(tmp_path / "in.wav"), "--sink", str(tmp_path / "out.wav"),
               "--speed", "max", "--player", "autoplay", "--no-overlay", "--log", str(log)])
    assert rc == 0
    events = read_log(log)
    ident = [e for e in events if e["event"] == "identified"]
    assert len(ident) == 1 and ident[0]["chart_id"] == chart_id
    assert ident[0]["after_s"] <= 5.0 and abs(ident[0]["offset_s"] - START_S) < 0.15
    syncs = [e for e in events if e["event"] == "sync"]
    stream = np.array([e["stream_s"] for e in syncs])
    assert np.all(np.diff(stream) <= 0.5 + 1e-6)  # at least twice a second
    errors = np.abs([e["chart_s"] - e["stream_s"] - START_S for e in syncs])
    assert np.median(errors) < 0.005 and np.percentile(errors, 95) < 0.015
    judged = [e for e in events if e["event"] == "judgement"]
    assert judged and all(e["result"] == "hit" and abs(e["error_ms"]) < 20 for e in judged)
    # every expert note from the lock on was judged, in order
    first = judged[0]["note_t"]
    assert [e["note_t"] for e in judged] == [n.t for n in chart.track("expert").notes
                                             if first <= n.t < START_S + 20 - 0.2]
    end = events[-1]
    assert end["event"] == "end" and end["hits"] == len(judged) and end["misses"] == 0
    # the sink carries the stream, delayed by the stated output latency
    x, _ = soundfile.read(tmp_path / "in.wav", dtype="float32")
    out, sr = soundfile.read(tmp_path / "out.wav", dtype="float32")
    lag = end["output_latency_samples"]
    assert sr == 48000 and out.shape[0] == x.shape[0] + lag
    assert np.allclose(out[lag:], x, atol=1e-4)


def test_miss_all_and_difficulty(tmp_path, song):
    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=12)
    log = tmp_path / "log.jsonl"
    assert main(["play", "--source", str(tmp_path / "in.wav"), "--speed", "max", "--player",
                 "miss-all", "--difficulty", "easy", "--no-overlay", "--log", str(log)]) == 0
    events = read_log(log)
    judged = [e for e in events if e["event"] == "judgement"]
    easy = {n.t for n in chart.track("easy").notes}
    assert judged and all(e["result"] == "miss" and e["note_t"] in easy for e in judged)
    assert events[-1]["misses"] == len(judged) and events[-1]["hits"] == 0


def test_unknown_song_is_recorded(tmp_path, song):
    _, y = song  # nothing in the store
    from companion.app import EventLog, LiveOptions, LiveSession
    from companion.audio import open_sink, open_source
    from companion.listen import Listener

    stream_file(tmp_path / "in.wav", y, seconds=30)
    options = LiveOptions(source=str(tmp_path / "in.wav"), sink="null", speed="max",
                          player="autoplay")
    source = open_source(options.source)
    log = EventLog(tmp_path / "log.jsonl")
    session = LiveSession(options, source=source, sink=open_sink("null", sr=source.sr), log=log)
    session.listener = Listener(LocalStore(), sr=source.sr, analyze=False,
                                recordings_dir=tmp_path / "rec")
    session.run()
    log.close()
    events = read_log(tmp_path / "log.jsonl")
    kinds = [e["event"] for e in events]
    assert "identified" not in kinds and "recording" in kinds
    recorded = [e for e in events if e["event"] == "recorded"]
    assert len(recorded) == 1 and not recorded[0]["analyzing"]
    rec, sr = soundfile.read(recorded[0]["path"], dtype="float32")
    # the whole stream was kept (from the first sound), so a chart of it starts at stream 0
    assert sr == 48000 and abs(rec.size - 30 * sr) < 0.1 * sr
    assert fingerprint(rec, sr).items.size > 100


def test_cli_refuses_what_cannot_work(tmp_path, capsys):
    assert main(["play", "--player", "keyboard", "--no-overlay", "--source", "x.wav"]) == 1
    assert "keyboard player needs the overlay" in capsys.readouterr().err
    assert main(["play", "--source", "null", "--speed", "max", "--no-overlay",
                 "--player", "autoplay"]) == 1
    assert "needs a FILE source" in capsys.readouterr().err
    assert main(["play", str(tmp_path / "missing.wav"), "--no-overlay", "--player",
                 "autoplay"]) == 1


def test_sigterm_stops_cleanly(tmp_path, song):
    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=30)
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "companion", "play", str(tmp_path / "in.wav"),
                             "--sink", "null", "--player", "autoplay", "--no-overlay",
                             "--log", str(log)], stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not log.exists() or '"sync"' not in log.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    events = read_log(log)
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "signal SIGTERM"
    assert any(e["event"] == "identified" for e in events)
    assert events[-1]["stream_s"] < 25  # stopped early, real time


def test_song_change_is_followed(tmp_path, song):
    chart_a, y_a = song
    chart_b, y_b = make_chart(seed=8, seconds=30.0)
    store = LocalStore()
    store.put(chart_a)
    store.put(chart_b)
    from scipy.signal import resample_poly
    a = stream_file(tmp_path / "a.wav", y_a, start_s=START_S, seconds=12)
    b = resample_poly(y_b, 320, 147).astype(np.float32)[int(2.0 * 48000):int(14.0 * 48000)]
    z = np.concatenate([a, b])
    soundfile.write(tmp_path / "in.wav", np.stack([z, z], axis=1), 48000, subtype="FLOAT")
    log = tmp_path / "log.jsonl"
    assert main(["play", str(tmp_path / "in.wav"), "--speed", "max", "--player", "autoplay",
                 "--no-overlay", "--log", str(log)]) == 0
    events = read_log(log)
    ident = [e for e in events if e["event"] == "identified"]
    assert [e["chart_id"] for e in ident] == [chart_a.id, chart_b.id]
    assert ident[1]["kind"] == "changed" and 12.0 < ident[1]["after_s"] <= 12.0 + 8.0
    # after the change the clock follows song B: chart 2 s at stream 12 s
    late = [e for e in events if e["event"] == "sync" and e["stream_s"] > ident[1]["after_s"] + 2]
    assert late and all(abs(e["chart_s"] - (2.0 + e["stream_s"] - 12.0)) < 0.015 for e in late)
    assert events[-1]["hits"] > 0 and events[-1]["misses"] == 0
