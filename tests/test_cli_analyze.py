"""``loopjam analyze``: the --json contract, failures and exit status, resuming after a kill."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf

from companion.cli import main
from tests.fixtures.songs import synth_song

SR = 22050
CONTRACT = {"input", "chart_id", "chart_path", "duration_s", "notes", "elapsed_s"}


def _song(path, seed, seconds=11.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), synth_song(seed, duration_s=seconds, sr=SR), SR)
    return path


def _lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_follow_the_contract(tmp_path, capsys):
    song = _song(tmp_path / "in" / "tune.flac", 4)
    out = tmp_path / "charts"
    assert main(["analyze", str(song), "--json", "--stems", "none", "--out", str(out)]) == 0
    (line,) = _lines(capsys.readouterr().out)
    assert CONTRACT <= set(line) and line["input"] == str(song)
    assert line["chart_path"] == str(out / "tune.chart") and os.path.isfile(line["chart_path"])
    assert set(line["notes"]) <= {"easy", "medium", "hard", "expert"} and line["notes"]["expert"]
    assert abs(line["duration_s"] - 11.0) < 0.01 and line["skipped"] is False
    # the chart is in the store too
    assert main(["chart", "show", line["chart_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == line["chart_id"]


def test_force_charts_a_file_again_and_the_new_chart_replaces_the_old(tmp_path, capsys):
    from chart_store.local import LocalStore

    song = _song(tmp_path / "a.wav", 5)
    assert main(["analyze", str(song), "--json", "--stems", "none"]) == 0
    (first,) = _lines(capsys.readouterr().out)
    assert main(["analyze", str(song), "--json", "--stems", "none", "--lanes", "7"]) == 0
    (again,) = _lines(capsys.readouterr().out)
    assert again["skipped"] and again["chart_id"] == first["chart_id"]   # charted before
    assert main(["analyze", str(song), "--json", "--stems", "none", "--lanes", "7",
                 "--force"]) == 0
    (forced,) = _lines(capsys.readouterr().out)
    assert not forced["skipped"] and forced["chart_id"] != first["chart_id"]
    assert [c.chart_id for c in LocalStore().list()] == [forced["chart_id"]]
    assert LocalStore().get(forced["chart_id"]).lanes == 7


def test_charts_have_the_lanes_the_config_asks_for_unless_lanes_is_given(tmp_path, capsys):
    from chart_store.local import LocalStore
    from companion.config import load_config, save_config

    save_config(load_config().with_value("game.lanes", "4"))
    for name, flags, lanes in (("a", [], 4), ("b", ["--lanes", "7"], 7)):
        song = _song(tmp_path / f"{name}.wav", 5 + len(flags))
        assert main(["analyze", str(song), "--json", "--stems", "none", *flags]) == 0
        (line,) = _lines(capsys.readouterr().out)
        chart = LocalStore().get(line["chart_id"])
        assert chart.lanes == lanes
        assert {n.lane for n in chart.track("expert").notes} == set(range(lanes))


def test_a_file_name_that_is_not_utf8_is_analyzed_identified_and_played(tmp_path):
    # A disk from another system: Latin-1 "café", which Python reads with a surrogate.
    song = _song(tmp_path / os.fsdecode(b"caf\xe9 song.wav"), 9, seconds=20.0)

    def loopjam(*args):
        return subprocess.run([sys.executable, "-m", "companion", *args], capture_output=True,
                              env=dict(os.environ), timeout=120)

    done = loopjam("analyze", str(song), "--json", "--stems", "none")
    assert done.returncode == 0, done.stderr
    (line,) = _lines(done.stdout.decode("utf-8"))          # valid UTF-8, valid JSON
    assert line["input"] == str(song) and line["chart_id"]
    done = loopjam("identify", str(song), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["match"]["title"] == "café song"
    done = loopjam("play", str(song), "--sink", "null", "--speed", "max", "--player", "autoplay",
                   "--no-overlay")
    assert done.returncode == 0 and b"Traceback" not in done.stderr


def test_a_bad_file_is_reported_at_the_end_and_exits_1(tmp_path, capsys):
    _song(tmp_path / "lib" / "good.wav", 5)
    (tmp_path / "lib" / "bad.ogg").write_bytes(b"OggS" + b"\0" * 100)
    _song(tmp_path / "lib" / "short.wav", 6, seconds=4.0)
    assert main(["analyze", str(tmp_path / "lib"), "--json", "--stems", "none"]) == 1
    captured = capsys.readouterr()
    lines = {os.path.basename(l["input"]): l for l in _lines(captured.out)}
    assert set(lines) == {"good.wav", "bad.ogg", "short.wav"}
    assert lines["good.wav"]["chart_id"]
    assert lines["bad.ogg"]["error"].startswith("bad.ogg: ")
    assert lines["short.wav"]["error"] == "short.wav: too short: 4.0 s, the minimum is 10 s"
    assert "2 of 3 files failed" in captured.err and "short.wav: too short" in captured.err


def test_song_folders_are_left_to_loopjam_import(tmp_path, capsys):
    # A Clone Hero song folder's files are one song's stems: not analyzed one by one, and the
    # user is told what takes them.
    song = tmp_path / "lib" / "songs" / "Artist - Title"
    _song(song / "song.ogg", 7)
    (song / "notes.mid").write_bytes(b"")
    (song / "song.ini").write_text("[song]\nname = Title\n")
    assert main(["analyze", str(tmp_path / "lib")]) == 1
    err = capsys.readouterr().err
    assert "no audio to analyze: 1 song folder with a human chart left out" in err
    assert f"'loopjam import {tmp_path / 'lib'}' imports them" in err
    _song(tmp_path / "lib" / "tune.wav", 8)
    assert main(["analyze", str(tmp_path / "lib"), "--json", "--stems", "none"]) == 0
    captured = capsys.readouterr()
    assert [line["input"] for line in _lines(captured.out)] == [str(tmp_path / "lib" / "tune.wav")]
    assert "1 song folder with a human chart left out" in captured.err


def test_a_missing_path_or_a_dangling_link_is_one_failure_and_the_rest_go_on(tmp_path, capsys):
    library = tmp_path / "lib"
    good = _song(library / "good.wav", 6)
    (library / "broken.ogg").symlink_to(tmp_path / "moved-away.ogg")
    typo = tmp_path / "typo.wav"
    assert main(["analyze", str(typo), str(library), "--json", "--stems", "none"]) == 1
    lines = {line["input"]: line for line in _lines(capsys.readouterr().out)}
    assert set(lines) == {str(typo), str(library / "broken.ogg"), str(good)}
    assert lines[str(good)]["chart_id"]
    assert "no such file" in lines[str(typo)]["error"].lower()
    assert "no such file" in lines[str(library / "broken.ogg")]["error"].lower()


def test_missing_path_and_empty_folder_are_one_line_errors(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope")]) == 1
    assert main(["analyze", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].endswith("nope: no such file or folder") and "no audio files" in err[1]
    song = _song(tmp_path / "tune.wav", 3)
    assert main(["analyze", str(song), "--out", str(song)]) == 1
    assert capsys.readouterr().err == f"loopjam: --out {song}: not a folder\n"


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    assert "--jobs" in text and "loopjam analyze ~/Music --jobs 2" in text


def test_a_killed_batch_resumes_where_it_stopped(tmp_path):
    songs = [_song(tmp_path / "lib" / f"{name}.wav", seed)
             for name, seed in (("a", 7), ("b", 8), ("c", 9))]
    cmd = [sys.executable, "-m", "companion", "analyze", str(tmp_path / "lib"), "--json",
           "--stems", "none"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = json.loads(proc.stdout.readline())  # one file done and stored...
    proc.send_signal(signal.SIGKILL)             # ...then the batch dies mid-way
    proc.wait()
    proc.stdout.close()
    assert first["input"] == str(songs[0]) and first["chart_id"]
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0
    lines = {l["input"]: l for l in _lines(rerun.stdout)}
    assert lines[str(songs[0])]["skipped"] and lines[str(songs[0])]["chart_id"] == first["chart_id"]
    assert sum(l["skipped"] for l in lines.values()) < 3  # the rest were analyzed now
    assert all(l.get("chart_id") for l in lines.values())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_stopped_batch_stops_its_workers_and_says_how_far_it_got(tmp_path):
    # A service manager's SIGTERM to the parent (a terminal's Ctrl-C is handled alike): the
    # workers are stopped with it, not left running (or analyzing the queue) on their own.
    for seed in range(4):
        _song(tmp_path / "lib" / f"{seed}.wav", 20 + seed, seconds=90.0)
    proc = subprocess.Popen([sys.executable, "-m", "companion", "analyze", str(tmp_path / "lib"),
                             "--jobs", "2", "--stems", "none", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children = f"/proc/{proc.pid}/task/{proc.pid}/children"
    workers, deadline = [], time.monotonic() + 60
    while len(workers) < 3 and time.monotonic() < deadline:  # the 2 workers + a tracker
        time.sleep(0.05)
        with open(children) as listing:
            workers = [int(pid) for pid in listing.read().split()]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert re.fullmatch(r"loopjam: analyze: interrupted, [0-3] of 4 files done \(run it again "
                        r"to go on: what is done is skipped\)\n", err), err
    time.sleep(0.5)
    alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}")
             and "State:\tZ" not in open(f"/proc/{pid}/status").read()]
    assert alive == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_batch_stopped_while_its_workers_start_says_one_line(tmp_path):
    # The stop comes as the workers are being started (the resource tracker is up, a worker
    # may be reading its start-up data from the parent): it waits until they have started,
    # so no worker dies with a traceback of its own. (Before: 7 of 12 such stops did.)
    for seed in range(4):
        _song(tmp_path / "lib" / f"{seed}.wav", 20 + seed, seconds=20.0)
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "companion", "analyze",
                                 str(tmp_path / "lib"), "--jobs", "2", "--stems", "none",
                                 "--no-store"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children, deadline = [], time.monotonic() + 60
        while len(children) < 1 + attempt % 2 and time.monotonic() < deadline:
            time.sleep(0.002)
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as listing:
                children = listing.read().split()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "Traceback" not in err, err


def test_an_analyzed_chart_exports_and_previews_with_the_file_it_was_made_from(tmp_path, capsys):
    # The store remembers where each analyzed file was last seen: an export then has the song
    # to play without --audio (and a preview its spectrogram), for as long as the file is there
    # unchanged.
    song = _song(tmp_path / "lib" / "tune.flac", 8)
    assert main(["analyze", str(song), "--json", "--stems", "none"]) == 0
    chart_id = _lines(capsys.readouterr().out)[0]["chart_id"]

    def export(name):
        assert main(["export", chart_id, "--format", "clonehero",
                     "--out", str(tmp_path / name)]) == 0
        (folder,) = (tmp_path / name).iterdir()
        return {p.name for p in folder.iterdir()}, capsys.readouterr().err

    files, err = export("a")
    assert "song.ogg" in files and f"song.ogg from {song} (the file the chart was" in err
    # The preview draws that file's spectrogram, as with --audio.
    for name, audio in (("found.png", []), ("given.png", ["--audio", str(song)])):
        assert main(["chart", "preview", chart_id, "-o", str(tmp_path / name), *audio]) == 0
    assert (tmp_path / "found.png").read_bytes() == (tmp_path / "given.png").read_bytes()
    moved = tmp_path / "elsewhere" / "tune.flac"
    moved.parent.mkdir()
    song.rename(moved)
    files, err = export("b")
    assert "song.ogg" not in files and "no song.ogg" in err
    assert main(["analyze", str(moved), "--json", "--stems", "none"]) == 0   # seen again
    assert _lines(capsys.readouterr().out)[0]["skipped"] is True
    files, err = export("c")
    assert "song.ogg" in files and str(moved) in err
    sf.write(moved, synth_song(9, duration_s=11.0, sr=SR), SR, format="FLAC")   # not that song
    files, err = export("d")
    assert "song.ogg" not in files
