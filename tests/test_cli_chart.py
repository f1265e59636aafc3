"""``loopjam chart show|validate`` and ``loopjam --help``, through the real console script."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chart_store.chartfile import chart_to_json, read_chart
from companion.cli import main
from tests.data.make_example_chart import PATH as EXAMPLE

LOOPJAM = shutil.which("loopjam", path=str(Path(sys.executable).parent)) or "loopjam"


def loopjam(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run([LOOPJAM, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)


def assert_one_line_error(result):
    assert result.stdout == "" or result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def corrupt(tmp_path) -> Path:
    path = tmp_path / "corrupt.chart"
    path.write_bytes(EXAMPLE.read_bytes()[:-100])
    return path


def test_show_json_prints_the_contract_shape():
    result = loopjam("chart", "show", EXAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc == chart_to_json(read_chart(EXAMPLE))
    assert {"format", "version", "id", "title", "artist", "duration_s",
            "difficulties"} <= doc.keys()
    assert (doc["format"], doc["version"], doc["title"]) == ("loopjam-chart", 1, "LoopJam Example")
    assert [len(notes) for notes in doc["difficulties"].values()] == [16, 28, 32, 64]
    note = doc["difficulties"]["expert"][1]
    assert note == {"t": 0.25, "dur": 0.0, "lane": 1, "pitch": 60, "stem": "guitar"}


def test_show_prints_a_human_summary():
    result = loopjam("chart", "show", EXAMPLE)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "The Test Signals - LoopJam Example" in text
    assert "lanes     5" in text and re.search(r"beats\s+\d+, 120\.00 BPM\n", text)
    assert re.search(r"expert\s+64 notes\s+4\.00/s", text)


def test_a_song_without_an_artist_is_named_by_its_title(tmp_path):
    # As everywhere else (chart_store.chart.song_name), not "Unknown artist - ...".
    from dataclasses import replace

    from companion.cli.chart import summary

    chart = read_chart(EXAMPLE)
    chart = replace(chart, meta=replace(chart.meta, artist=""))
    assert summary(chart)[0] == "LoopJam Example (Fixtures)"      # (the album)
    # A human chart's credits are shown; a generated chart has none, and no empty lines.
    assert not any(line.startswith(("charter", "genre", "year")) for line in summary(chart))
    credited = replace(chart, meta=replace(chart.meta, charter="Someone", year="2007"))
    assert {"charter   Someone", "year      2007"} <= set(summary(credited))


def test_show_finds_a_chart_by_id_or_short_id_in_the_local_store():
    from chart_store.local import LocalStore
    store = LocalStore()                       # under this test's LOOPJAM_HOME
    chart_id = store.put(read_chart(EXAMPLE))
    store.close()
    for spec in (chart_id, chart_id[:12]):     # the short id is what `loopjam play` prints
        result = loopjam("chart", "show", spec, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["id"] == chart_id


def test_show_names_an_ambiguous_short_id():
    from chart_store.chart import Chart, ChartMeta, Note
    from chart_store.local import LocalStore
    store = LocalStore()
    ids = [store.put(Chart(ChartMeta(f"song {k}"), {"expert": [Note(1.0)]})) for k in range(40)]
    store.close()
    shared = next(a[0] for a in ids if sum(b[0] == a[0] for b in ids) > 1)  # 40 ids, 16 digits
    result = loopjam("chart", "show", shared)
    assert result.returncode == 1
    assert_one_line_error(result)
    assert "charts: give more of the id" in result.stderr


@pytest.mark.parametrize("spec, message", [
    ("0123456789abcdef01234567", "no chart 0123456789abcdef01234567 in the local store"),
    ("missing/song.chart", "no such file"),
    ("", "no chart given"),                       # not the current folder
])
def test_show_unknown_chart_fails_in_one_line(spec, message):
    result = loopjam("chart", "show", spec)
    assert result.returncode == 1
    assert_one_line_error(result)
    assert message in result.stderr


def test_a_clone_hero_notes_chart_is_told_apart_from_a_broken_chart_file(tmp_path):
    song = tmp_path / "Artist - Song"
    song.mkdir()
    (song / "notes.chart").write_bytes(b"\xef\xbb\xbf[Song]\r\n{\r\n  Resolution = 192\r\n}\r\n")
    for command in ("show", "validate"):
        result = loopjam("chart", command, str(song / "notes.chart"))
        assert result.returncode == 1
        assert "a Clone Hero / Frets on Fire song chart" in result.stderr + result.stdout
        assert f"loopjam import \"{song}\"" in result.stderr + result.stdout


def test_show_corrupt_file_fails_in_one_line(corrupt):
    result = loopjam("chart", "show", corrupt, "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert_one_line_error(result)
    assert result.stderr.startswith(f"loopjam: {corrupt}: not a chart file")


def test_validate_good_bad_and_missing_files(corrupt, tmp_path):
    missing = tmp_path / "absent.chart"
    result = loopjam("chart", "validate", EXAMPLE, corrupt, missing)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{EXAMPLE}: OK ({read_chart(EXAMPLE).id})"
    assert lines[1].startswith(f"{corrupt}: not a chart file")
    assert lines[2] == f"{missing}: No such file or directory"
    assert len(lines) == 3 and result.stderr == ""

    result = loopjam("chart", "validate", EXAMPLE, corrupt, "--json")
    assert result.returncode == 1
    good, bad = map(json.loads, result.stdout.splitlines())
    assert good == {"file": str(EXAMPLE), "ok": True, "id": read_chart(EXAMPLE).id}
    assert bad["ok"] is False and bad["error"].startswith("not a chart file")

    assert loopjam("chart", "validate", EXAMPLE, EXAMPLE).returncode == 0


@pytest.mark.parametrize("args", [("chart",), ("chart", "show"), ("chart", "validate"),
                                  ("chart", "validate", "--bogus", "x.chart"),
                                  ("chart", "frobnicate")])
def test_usage_errors_exit_2(args):
    result = loopjam(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_option_is_told_with_the_subcommands_usage():
    result = loopjam("store", "remove", "abc", "--json")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: loopjam store remove")
    assert result.stderr.endswith("loopjam store remove: error: unrecognized arguments: --json\n")


def test_help_lists_every_command_with_a_one_line_description():
    from companion.cli import build_parser
    commands = build_parser()._subparsers._group_actions[0].choices
    result = loopjam("--help")
    assert result.returncode == 0
    block = result.stdout.split("  COMMAND\n", 1)[1].split("\n\n", 1)[0]
    # "    name   description", or a long name alone with its description on the next line.
    rows = re.findall(r"^    (\S+)(?:\s{2,}|\n {6,})(\S.*)$", block, re.MULTILINE)
    listed = dict(rows)
    alone = re.findall(r"^    \S+$", block, re.MULTILINE)     # names wrapped by argparse
    assert len(block.splitlines()) == len(rows) + len(alone), f"multi-line description: {block}"
    assert set(listed) == set(commands) and "chart" in listed
    assert all(len(text) > 5 for text in listed.values())
    for name in ("chart show", "chart validate"):
        result = loopjam(*name.split(), "--help")
        assert result.returncode == 0 and "examples:" in result.stdout


def test_a_home_or_store_the_machine_refuses_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    # A LOOPJAM_HOME that is a file, or a store file that is not a database, raised a traceback
    # from every command that opens the store.
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("LOOPJAM_HOME", str(home))
    assert main(["store", "list"]) == 1
    assert capsys.readouterr().err == (
        f"loopjam: store: Not a directory: {home / 'store' / 'charts'}\n")
    damaged = tmp_path / "damaged"
    (damaged / "store").mkdir(parents=True)
    (damaged / "store" / "store.sqlite3").write_bytes(b"\x13" * 4096)
    monkeypatch.setenv("LOOPJAM_HOME", str(damaged))
    assert main(["chart", "show", "0123abcd"]) == 1
    assert capsys.readouterr().err == (
        f"loopjam: chart: {damaged / 'store' / 'store.sqlite3'}: file is not a database\n")
    blocked = tmp_path / "blocked"
    (blocked / "store" / "store.sqlite3").mkdir(parents=True)    # cannot even be opened
    monkeypatch.setenv("LOOPJAM_HOME", str(blocked))
    assert main(["store", "list"]) == 1
    assert capsys.readouterr().err == (
        f"loopjam: store: {blocked / 'store' / 'store.sqlite3'}: unable to open database file\n")


def test_a_reader_that_goes_away_is_not_an_error_message():
    # Where there is no SIGPIPE (Windows), writing to a closed pipe raises BrokenPipeError, an
    # OSError: it must end quietly, not as "loopjam: chart: Broken pipe".
    code = ("import signal, sys; del signal.SIGPIPE; from companion.cli import main; "
            f"sys.exit(main(['chart', 'show', {str(EXAMPLE)!r}, '--json']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1 and err == ""
