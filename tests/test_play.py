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
from pathlib import Path

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
    # the tray's status line shows where the chart came from, and who charted it
    assert (ident[0]["source"], ident[0]["charter"]) == (chart.meta.source.value, "")
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


def test_a_chart_server_that_does_not_answer_is_reported_once(tmp_path, song):
    _, y = song  # an unknown song: the local store misses, so the server is asked
    stream_file(tmp_path / "in.wav", y, seconds=12)
    log = tmp_path / "log.jsonl"
    assert main(["play", str(tmp_path / "in.wav"), "--speed", "max", "--player", "autoplay",
                 "--no-overlay", "--no-record", "--remote", "http://127.0.0.1:9",
                 "--log", str(log)]) == 0
    warnings = [e for e in read_log(log) if e.get("kind") == "remote"]
    assert len(warnings) == 1 and "only the local store is asked" in warnings[0]["message"]


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


def test_a_chart_with_more_lanes_than_the_player_plays_is_folded_onto_theirs(tmp_path, song):
    from companion.config import load_config, save_config

    chart, y = song  # 5 lanes
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=12)

    def played(*flags):
        log = tmp_path / "log.jsonl"
        assert main(["play", str(tmp_path / "in.wav"), "--speed", "max", "--player", "autoplay",
                     "--no-overlay", "--log", str(log), *flags]) == 0
        return {e["note_t"]: e["lane"] for e in read_log(log) if e["event"] == "judgement"}

    charted = {n.t: n.lane for n in chart.track("expert").notes}
    save_config(load_config().with_value("game.lanes", "4"))   # the config's lanes...
    lanes = played()
    assert len(lanes) > 10 and set(charted[t] for t in lanes) == {0, 1, 2, 3, 4}
    assert all(lane == (0, 1, 2, 2, 3)[charted[t]] for t, lane in lanes.items())  # edges stay
    # ... and --lanes over it; a chart with fewer lanes than asked plays as charted.
    assert all(lane == charted[t] for t, lane in played("--lanes", "7").items())


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
    session.listener = Listener(LocalStore(), sr=source.sr, recordings_dir=tmp_path / "rec",
                                lanes=4)
    session.run()
    log.close()
    events = read_log(tmp_path / "log.jsonl")
    kinds = [e["event"] for e in events]
    assert "identified" not in kinds and "recording" in kinds
    recorded = [e for e in events if e["event"] == "recorded"]
    assert len(recorded) == 1 and recorded[0]["analyzing"]
    rec, sr = soundfile.read(recorded[0]["path"], dtype="float32")
    # the whole stream was kept (from the first sound), so a chart of it starts at stream 0
    assert sr == 48000 and abs(rec.size - 30 * sr) < 0.1 * sr
    assert fingerprint(rec, sr).items.size > 100
    # The background process charts it (on the player's lanes) into the store, with the
    # recording as its source file.
    from analyzer.batch import source_file

    (process,) = session.background
    assert process.wait(timeout=120) == 0
    (info,) = LocalStore().list()
    chart = LocalStore().get(info.chart_id)
    assert chart.meta.source.value == "recorded-live" and chart.difficulties["expert"]
    assert chart.lanes == 4
    assert source_file(info.chart_id) == Path(recorded[0]["path"])


def test_the_game_clock_stops_when_the_audio_stops(tmp_path, song):
    # Between blocks the clock runs on with the wall clock; when the device stops delivering
    # it stops once the output has played what it holds, so no unheard note is judged.
    from companion.app import EventLog, LiveOptions, LiveSession
    from companion.audio import open_sink, open_source

    _, y = song
    stream_file(tmp_path / "in.wav", y, seconds=2)
    options = LiveOptions(source=str(tmp_path / "in.wav"), sink="null", speed="realtime",
                          block_frames=1024)
    source = open_source(options.source, block_frames=1024, realtime=True)
    sink = open_sink("null", sr=source.sr)
    session = LiveSession(options, source=source, sink=sink,
                          log=EventLog(tmp_path / "log.jsonl"))
    for _ in range(5):
        assert session.audio_step()
    now = time.monotonic()
    heard = session.stream_s_at(now)
    assert session.stream_s_at(now + 0.002) == pytest.approx(heard + 0.002, abs=1e-9)
    run_on = (sink.latency_samples + 1024) / source.sr
    assert session.stream_s_at(now + 10.0) - heard <= run_on
    source.close()


def test_cli_refuses_what_cannot_work(tmp_path, capsys):
    assert main(["play", "--player", "keyboard", "--no-overlay", "--source", "x.wav"]) == 1
    assert "keyboard player needs the overlay" in capsys.readouterr().err
    assert main(["play", "--source", "null", "--speed", "max", "--no-overlay",
                 "--player", "autoplay"]) == 1
    assert "needs a FILE source" in capsys.readouterr().err
    assert main(["play", str(tmp_path / "missing.wav"), "--no-overlay", "--player",
                 "autoplay"]) == 1
    capsys.readouterr()
    # A replay file is read before any song: a missing one raised a traceback once the first
    # song was identified, and an unidentified song hid it.
    assert main(["play", "--source", "null", "--no-overlay", "--player",
                 f"replay:{tmp_path / 'none.jsonl'}"]) == 1
    assert capsys.readouterr().err == (f"loopjam: --player replay:{tmp_path / 'none.jsonl'}: "
                                       f"{tmp_path / 'none.jsonl'}: No such file or directory\n")
    assert main(["play", "--source", "null", "--no-overlay", "--player", "robot"]) == 1
    assert "unknown player 'robot'" in capsys.readouterr().err
    # Nothing of the user's is overwritten: not the song by its own output, nor an output
    # file by a run that cannot write its log.
    song, kept = tmp_path / "song.wav", tmp_path / "kept.wav"
    for path in (song, kept):
        soundfile.write(path, np.full((4800, 2), 0.25, np.float32), 48000)
    run = ["play", str(song), "--no-overlay", "--player", "autoplay", "--speed", "max"]
    assert main([*run, "--sink", str(song)]) == 1
    assert "is the song being played" in capsys.readouterr().err
    assert main([*run, "--sink", str(kept), "--log", str(tmp_path / "no" / "log.jsonl")]) == 1
    assert "cannot write the log" in capsys.readouterr().err
    for path in (song, kept):
        assert soundfile.info(path).frames == 4800
    # An output file in another format is written as its extension says, or refused in a line.
    assert main([*run, "--sink", str(tmp_path / "out.flac")]) == 0
    assert soundfile.info(tmp_path / "out.flac").format == "FLAC"
    assert main([*run, "--sink", str(tmp_path / "out.m4a")]) == 1
    assert "not a file type libsndfile writes" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["play", "--block", "0"], "argument --block: must be 64..16384, got 0"),
    (["play", "--latency-ms", "-4"], "argument --latency-ms: must be 1..2000, got -4"),
    (["serve", "--port", "99999"], "argument --port: must be 1..65535, got 99999"),
    (["serve", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
    (["analyze", "x.wav", "--jobs", "two"], "argument --jobs/-j: not a number: 'two'"),
])
def test_numbers_out_of_range_are_usage_errors(args, message, capsys):
    # serve --port 99999 hung with no word, and play --block 0 ran on empty blocks.
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and capsys.readouterr().err.strip().endswith(message)


def test_without_a_display_only_a_bot_plays_on(tmp_path, song):
    # The keyboard player cannot play without the window (every note would be missed and
    # taken out of the music): a one-line error. A bot plays on without it.
    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=8)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}

    def play(*flags):
        return subprocess.run([sys.executable, "-m", "companion", "play", str(tmp_path / "in.wav"),
                               "--sink", "null", "--speed", "max", *flags],
                              capture_output=True, text=True, env=env, timeout=120)

    done = play()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("loopjam: no overlay") and "keyboard player" in done.stderr
    done = play("--player", "autoplay")
    assert done.returncode == 0, done.stderr
    assert "playing without it" in done.stderr and "score" in done.stderr


def _play_process(source, log, *args) -> subprocess.Popen:
    """``loopjam play SOURCE`` with autoplay, no overlay, logging to ``log``; stderr piped."""
    return subprocess.Popen([sys.executable, "-m", "companion", "play", str(source), *args,
                             "--player", "autoplay", "--no-overlay", "--log", str(log)],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _terminate(proc: subprocess.Popen, log, *, timeout: float) -> list[dict]:
    """SIGTERM ``proc``; it must exit 0 with a last ``end`` event saying why. The log's events."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    events = read_log(log)
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "signal SIGTERM"
    return events


def test_sigterm_stops_cleanly(tmp_path, song):
    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=30)
    log = tmp_path / "log.jsonl"
    proc = _play_process(tmp_path / "in.wav", log, "--sink", "null")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not log.exists() or '"sync"' not in log.read_text()):
        time.sleep(0.2)
    events = _terminate(proc, log, timeout=20)
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


# -- wiring: replays, high scores, mask mode, signals, overlay settings (real subprocess runs) --
def loopjam(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "companion", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def test_record_inputs_replays_and_high_scores(tmp_path, song):
    from companion.game.highscores import HighScores

    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=12)
    replay, log = tmp_path / "run.replay", tmp_path / "log.jsonl"
    done = loopjam("play", tmp_path / "in.wav", "--sink", tmp_path / "out.wav", "--speed", "max",
                   "--player", "autoplay", "--no-overlay", "--record-inputs", replay,
                   "--log", log)
    assert done.returncode == 0, done.stderr
    first = read_log(log)
    header = json.loads(replay.read_text().splitlines()[0])
    assert header["chart_id"] == chart.id and header["difficulty"] == "expert"
    assert len(replay.read_text().splitlines()) == 1 + 2 * first[-1]["hits"]  # press + release
    result = [e for e in first if e["event"] == "result"]
    assert len(result) == 1 and result[0]["score"] == first[-1]["score"]
    assert not result[0]["ranked"] and not result[0]["best"]   # a bot's score is no record
    # the replay plays the same game back
    done = loopjam("play", tmp_path / "in.wav", "--sink", tmp_path / "out.wav", "--speed", "max",
                   "--player", f"replay:{replay}", "--no-overlay", "--log", log)
    assert done.returncode == 0, done.stderr
    again = read_log(log)
    assert [(e["note_t"], e["grade"]) for e in again if e["event"] == "judgement"] == \
        [(e["note_t"], e["grade"]) for e in first if e["event"] == "judgement"]
    assert HighScores().top(chart.id, "expert") == []      # nor a replay's


def test_a_person_who_plays_a_song_to_the_end_gets_a_high_score(tmp_path, song):
    from companion.app import EventLog, LiveOptions, LiveSession
    from companion.audio import open_sink, open_source
    from companion.game.engine import GameEngine
    from companion.game.highscores import HighScores

    chart, y = song
    stream_file(tmp_path / "in.wav", y, seconds=2)
    source = open_source(str(tmp_path / "in.wav"))
    log = EventLog(tmp_path / "log.jsonl")

    def played(until_s):
        session = LiveSession(LiveOptions(player="keyboard"), source=source,
                              sink=open_sink("null", sr=source.sr), log=log)
        session.chart, session.difficulty = chart, "easy"
        session.engine = GameEngine(chart.track("easy"))
        for note in chart.track("easy").notes:   # the lane keys, on time
            if note.t < until_s:
                session.engine.queue_input(note.lane, True, note.t)
                session.engine.queue_input(note.lane, False, note.t + 0.05)
        session.engine.update(until_s)
        session._finish_engine()

    played(10.0)                                  # stopped half-way: no record
    assert HighScores().top(chart.id, "easy") == []
    played(chart.meta.duration_s)                 # the whole song
    (entry,) = HighScores().top(chart.id, "easy")
    assert entry["player"] == "keyboard" and entry["misses"] == 0
    log.close()
    results = [e for e in read_log(tmp_path / "log.jsonl") if e["event"] == "result"]
    assert [(e["ranked"], e["best"]) for e in results] == [(False, False), (True, True)]
    source.close()


@pytest.fixture(scope="module")
def masked_song(song):
    from analyzer.masks import attach_masks

    chart, y = song
    bank, diffs = attach_masks({"expert": chart.difficulties["expert"]}, y=y, sr=SR)
    return Chart(chart.meta, diffs, fingerprint=chart.fingerprint, sync=chart.sync,
                 masks=bank), y


@pytest.mark.parametrize("mode, player, removes", [
    ("hit-only", "autoplay", True),      # notes removed until hit: the attacks go
    ("drop-missed", "autoplay", False),  # nothing missed, nothing removed
    ("off", "miss-all", False),          # everything missed, removal off
    ("drop-missed", "miss-all", True),
])
def test_mask_mode(tmp_path, masked_song, mode, player, removes):
    chart, y = masked_song
    LocalStore().put(chart)
    x = stream_file(tmp_path / "in.wav", y, seconds=10)
    # "off" comes from the config, the others from --mask-mode
    if mode == "off":
        from companion.config import load_config, save_config
        save_config(load_config().with_value("removal.mask_mode", "off"))
        flags = ()
    else:
        flags = ("--mask-mode", mode)
    done = loopjam("play", tmp_path / "in.wav", "--sink", tmp_path / "out.wav", "--speed", "max",
                   "--player", player, "--no-overlay", "--log", tmp_path / "log.jsonl", *flags)
    assert done.returncode == 0, done.stderr
    end = read_log(tmp_path / "log.jsonl")[-1]
    out, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    lag = end["output_latency_samples"]
    changed = np.abs(out[lag:, 0] - x).max()
    assert (changed > 0.01) if removes else (changed < 1e-4)


def caught_signals(pid):
    """The signal numbers process ``pid`` has handlers for (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        mask = int(next(line for line in status if line.startswith("SigCgt:")).split()[1], 16)
    return {n for n in range(1, 64) if mask >> (n - 1) & 1}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_during_the_set_up_still_ends_cleanly(tmp_path, song):
    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=20)
    log = tmp_path / "log.jsonl"
    started = time.monotonic()
    proc = _play_process(tmp_path / "in.wav", log, "--sink", str(tmp_path / "out.wav"),
                         "--speed", "max")
    # the moment the handler exists (before the slow imports and the set-up), SIGTERM
    while signal.SIGTERM not in caught_signals(proc.pid):
        assert proc.poll() is None and time.monotonic() - started < 10
        time.sleep(0.001)
    events = _terminate(proc, log, timeout=30)
    assert events[-1]["stream_s"] == 0  # taken during the set-up: not one block was played


@pytest.mark.xvfb
def test_the_window_closes_and_play_exits_when_the_song_ends(tmp_path, song, xvfb):
    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=10)
    done = subprocess.run([sys.executable, "-m", "companion", "play", str(tmp_path / "in.wav"),
                           "--sink", "null", "--speed", "max", "--player", "autoplay"],
                          capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert done.returncode == 0 and "(source ended)" in done.stderr, done.stderr


@pytest.mark.xvfb
def test_overlay_takes_its_look_from_the_config(tmp_path, song, xvfb):
    from companion.config import load_config, save_config

    chart, y = song
    LocalStore().put(chart)
    stream_file(tmp_path / "in.wav", y, seconds=30)
    config = load_config()
    for key, value in (("overlay.width", "333"), ("overlay.height", "444"),
                       ("overlay.x", "21"), ("overlay.y", "34")):
        config = config.with_value(key, value)
    save_config(config)
    proc = subprocess.Popen([sys.executable, "-m", "companion", "play", str(tmp_path / "in.wav"),
                             "--sink", "null", "--player", "autoplay"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline, geometry = time.monotonic() + 30, ""
        while time.monotonic() < deadline and "333x444+21+34" not in geometry:
            time.sleep(0.3)
            geometry = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True,
                                      text=True).stdout
        assert "333x444+21+34" in geometry, geometry
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_the_identified_line_names_the_song_as_everywhere_else(capsys):
    from companion.cli.play import _echo

    _echo({"event": "identified", "chart_id": "0123456789abcdef", "after_s": 4.2,
           "title": "track2", "artist": ""})
    _echo({"event": "identified", "chart_id": "0123456789abcdef", "after_s": 4.2,
           "title": "Chaos God", "artist": "Muldjord"})
    assert capsys.readouterr().err.splitlines() == [
        "identified: track2 [0123456789ab] after 4.2 s",
        "identified: Muldjord - Chaos God [0123456789ab] after 4.2 s"]
