"""StepMania and osu!mania export, read back by small independent readers; folder exports."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from analyzer.formats.common import FormatError
from analyzer.formats.folder import export_chart, read_song_folder
from analyzer.formats.osu import export_osu
from analyzer.formats.stepmania import export_sm
from chart_store.chart import Chart, ChartMeta, Note, fold_lanes
from tests.test_formats_midi import playable_charts


# -- small readers, written from the format descriptions, sharing no code with the writers ---

def read_sm(text: str) -> dict[str, list[tuple[float, int, float]]]:
    """difficulty name → [(time s, column, hold s)] from a dance-single .sm."""
    tags = dict(re.findall(r"#([A-Z]+):([^;]*);", text))
    offset = float(tags["OFFSET"])
    bpms = [tuple(map(float, p.split("="))) for p in tags["BPMS"].split(",")]

    def seconds(beat):
        t, (b0, bpm0) = -offset, bpms[0]
        for b1, bpm1 in bpms[1:]:
            if beat < b1:
                break
            t += (b1 - b0) * 60 / bpm0
            b0, bpm0 = b1, bpm1
        return t + (beat - b0) * 60 / bpm0

    out = {}
    for block in text.split("#NOTES:")[1:]:
        fields = [f.strip() for f in block.split(":")]
        assert fields[0] == "dance-single"
        measures = fields[5].split(";")[0].split(",")
        notes, open_holds = [], {}
        for m, measure in enumerate(measures):
            rows = [r.strip() for r in measure.split("\n") if r.strip()
                    and not r.strip().startswith("//")]
            assert len(rows) in (4, 8, 12, 16, 24, 32, 48, 64, 192)
            for k, row in enumerate(rows):
                assert len(row) == 4
                beat = 4 * m + 4 * k / len(rows)
                for col, c in enumerate(row):
                    if c == "1":
                        notes.append([seconds(beat), col, 0.0])
                    elif c == "2":
                        open_holds[col] = len(notes)
                        notes.append([seconds(beat), col, 0.0])
                    elif c == "3":
                        head = notes[open_holds.pop(col)]
                        head[2] = seconds(beat) - head[0]
        assert not open_holds
        out[fields[2]] = sorted(tuple(n) for n in notes)
    return out


def read_osu(text: str) -> tuple[int, list[tuple[float, int, float]]]:
    """(keys, [(time s, column, hold s)]) of an osu!mania beatmap."""
    keys = int(re.search(r"^CircleSize:(\d+)", text, re.M).group(1))
    assert re.search(r"^Mode: 3$", text, re.M)
    objects = text.split("[HitObjects]")[1].split()
    notes = []
    for line in objects:
        x, _, time, kind, _, params = line.split(",", 5)
        col = min(keys - 1, int(x) * keys // 512)
        end = int(params.split(":")[0]) if int(kind) & 128 else int(time)
        notes.append((int(time) / 1000, col, (end - int(time)) / 1000))
    return keys, sorted(notes)


def _chart(notes, *, lanes=5, beats=None, difficulty="expert"):
    beats = np.arange(0.25, 30, 0.5) if beats is None else beats
    return Chart(ChartMeta("Song: #1; test", "Artist"), {difficulty: tuple(notes)}, lanes=lanes,
                 beats=beats)


def test_sm_places_notes_holds_and_bpm_changes():
    beats = np.r_[np.arange(0.1, 4, 0.5), np.arange(4.1, 9, 0.375)]  # 120 then 160 BPM
    chart = _chart([Note(0.6, 0, 0), Note(0.6, 0, 4), Note(1.1, 1.0, 2), Note(4.1 + 0.375 / 3,
                                                                               0, 1)], beats=beats)
    text = export_sm(chart, music="song.ogg")
    assert "#MUSIC:song.ogg;" in text and "#TITLE:Song - 1, test;" in text
    notes = read_sm(text)["Challenge"]
    want = [(0.6, 0, 0.0), (0.6, 3, 0.0), (1.1, 2, 1.0), (4.1 + 0.125, 1, 0.0)]
    assert [c for _, c, _ in notes] == [c for _, c, _ in want]
    for (t, _, d), (wt, _, wd) in zip(notes, want):
        assert t == pytest.approx(wt, abs=1e-4) and d == pytest.approx(wd, abs=1e-4)


def test_sm_measure_subdivision_is_the_smallest_that_fits():
    chart = _chart([Note(0.5, 0, 0), Note(1.0, 0, 1)], beats=np.arange(0, 8, 0.5))
    body = export_sm(chart).split("#NOTES:")[1].split(":")[5].split(";")[0]
    assert body.split(",")[0].split() == ["0000", "1000", "0100", "0000"]
    triplet = _chart([Note(0.5 + 0.5 / 3, 0, 0)], beats=np.arange(0, 8, 0.5))
    first = export_sm(triplet).split("#NOTES:")[1].split(":")[5].split(";")[0].split(",")[0].split()
    assert len(first) == 12 and first[4] == "1000"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(playable_charts())
def test_sm_round_trip_times_and_lanes(chart):
    text = export_sm(chart)
    back = read_sm(text)
    names = {"easy": "Easy", "medium": "Medium", "hard": "Hard", "expert": "Challenge"}
    for name, track in chart.difficulties.items():
        want = fold_lanes(track.notes, lanes=chart.lanes, to_lanes=4)
        got = back[names[name]]
        # 192nd-note grid: a note moves by at most 1/96 beat; beats here are <= 0.9 s long.
        # Notes of one lane closer than a row merge, so match both ways rather than count.
        tolerance = 0.9 / 96 + 1e-6
        for lane in range(4):
            want_times = np.array([n.t for n in want if n.lane == lane])
            got_times = np.array([t for t, col, _ in got if col == lane])
            assert len(got_times) == len(want_times) or np.min(np.diff(want_times)) < 2 * tolerance
            for a, b in ((want_times, got_times), (got_times, want_times)):
                for t in a:
                    assert np.min(np.abs(b - t)) <= tolerance


def test_osu_columns_times_and_holds():
    chart = _chart([Note(0.5004, 0, 0), Note(0.5004, 0, 6), Note(1.0, 0.75, 3), Note(1.4, 0, 3)],
                   lanes=7, beats=np.arange(0, 30, 0.5))
    text = export_osu(chart, "expert", audio="song.ogg")
    assert "AudioFilename: song.ogg" in text and "Version:Expert" in text
    keys, notes = read_osu(text)
    # The hold is cut 1 ms before the next note of its column.
    assert keys == 7 and notes == [(0.5, 0, 0.0), (0.5, 6, 0.0), (1.0, 3, 0.399), (1.4, 3, 0.0)]
    timing = text.split("[TimingPoints]")[1].split("[HitObjects]")[0].split()
    assert timing[0].split(",")[:2] == ["0", "500.0"] and len(timing) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(playable_charts())
def test_osu_round_trip_times_lanes_and_holds(chart):
    for name, track in chart.difficulties.items():
        if not len(track):
            continue
        keys, notes = read_osu(export_osu(chart, name))
        assert keys == chart.lanes
        for lane in range(chart.lanes):
            want = [n for n in track if n.lane == lane]
            got = [n for n in notes if n[1] == lane]
            assert len(got) == len(want)
            for (t, _, d), n in zip(got, want):
                assert abs(t - n.t) <= 0.0005 + 1e-9 and abs(t + d - n.end) <= 0.001 + 1e-9


def test_exports_reject_notes_before_zero():
    chart = _chart([Note(-0.5, 0, 0)])
    with pytest.raises(FormatError, match="before the song start"):
        export_sm(chart)
    with pytest.raises(FormatError, match="before the song start"):
        export_osu(chart, "expert")


def _stems(sr=8000):
    t = np.arange(2 * sr) / sr
    return {"song": (np.stack([np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32) * .2, sr),
            "guitar": ((np.sin(2 * np.pi * 440 * t) * .2).astype(np.float32), sr),
            "drums": ((np.sign(np.sin(2 * np.pi * 2 * t)) * .1).astype(np.float32), sr)}


@pytest.mark.parametrize("fmt, files", [
    ("clonehero", {"notes.mid", "song.ini", "song.ogg", "guitar.ogg", "drums.ogg"}),
    ("fof", {"notes.mid", "song.ini", "song.ogg", "guitar.ogg"}),
])
def test_song_folder_exports_read_back(tmp_path, fmt, files):
    chart = _chart([Note(0.5, 0, 0), Note(0.5, 0.8, 4), Note(1.75, 0, 2)])
    folder = export_chart(chart, fmt, tmp_path, stems=_stems())
    assert folder == tmp_path / "Artist - Song #1; test"
    assert {p.name for p in folder.iterdir()} == files
    song = read_song_folder(folder)
    assert song.title == "Song: #1; test" and song.artist == "Artist"
    got = [(round(n.t, 4), n.lane, round(n.dur, 4)) for n in song.notes.difficulties["expert"]]
    assert got == [(0.5, 0, 0.0), (0.5, 4, 0.8), (1.75, 2, 0.0)]
    assert set(song.stems) == {f[:-4] for f in files if f.endswith(".ogg")}


def test_export_without_stems_writes_no_audio(tmp_path):
    chart = _chart([Note(0.5, 0, 0)])
    folder = export_chart(chart, "clonehero", tmp_path)
    assert {p.name for p in folder.iterdir()} == {"notes.mid", "song.ini"}
    sm = export_chart(chart, "stepmania", tmp_path / "sm", stems=_stems())
    assert {p.name for p in sm.iterdir()} == {"song.ogg", "Song #1; test.sm"}
    osu = export_chart(chart, "osu", tmp_path / "osu")
    assert [p.suffix for p in osu.iterdir()] == [".osu"]
    with pytest.raises(FormatError, match="unknown export format"):
        export_chart(chart, "guitarpro", tmp_path)


def test_long_stems_are_written_whole(tmp_path):
    # libsndfile 1.2 crashes encoding ~4M frames of Vorbis in one write: stems go in blocks.
    import soundfile as sf
    long = np.zeros(4_200_000, np.float32)
    folder = export_chart(_chart([Note(0.5, 0, 0)]), "clonehero", tmp_path,
                          stems={"song": (long, 8000)})
    assert sf.info(folder / "song.ogg").frames == long.size
