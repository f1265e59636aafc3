"""Song folder import (synthetic folders: notes.mid/notes.chart, song.ini, ogg stems) and the
``loopjam import`` / ``loopjam export`` commands."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from analyzer.decode import load
from analyzer.features import sync_reference
from analyzer.formats import FormatError, find_song_folders, import_song, read_song_folder
from chart_store.chart import Phrase, Source
from chart_store.fingerprint import fingerprint
from chart_store.local import LocalStore
from chart_store.stems import StemStore
from companion.cli import main
from tests.test_formats_chart_text import CHART
from tests.test_formats_midi import midi_bytes

SR = 22050
SECONDS = 6.0
# Expert: a chord at beat 1, a sustain at beat 2 (120 BPM), then 60 BPM from beat 4.
NOTES = [(480, 1, 96), (480, 1, 98), (960, 480, 97), (1920, 1, 100), (2400, 1, 99),
         (480, 1, 84), (1920, 1, 72), (960, 1, 60)]
TEMPOS = ((0, 500_000), (1920, 1_000_000))


def tone(freq: float, *, seconds: float = SECONDS, amp: float = 0.2, stereo: bool = True):
    t = np.arange(int(seconds * SR)) / SR
    y = (amp * np.sin(2 * np.pi * freq * t) * (1 + np.sin(2 * np.pi * 1.5 * t)) / 2)
    y = y.astype(np.float32)
    return np.stack([y, y * 0.5]) if stereo else y


def write_song(folder, *, ini="[song]\nname = Test Song\nartist = Tester\nalbum = Demo\n",
               notes=NOTES, stems=("song", "guitar", "drums")):
    folder.mkdir(parents=True, exist_ok=True)
    if ini is not None:
        (folder / "song.ini").write_text(ini)
    if notes is not None:
        (folder / "notes.mid").write_bytes(midi_bytes([("PART GUITAR", notes)], tempos=TEMPOS))
    freqs = {"song": 110.0, "guitar": 440.0, "drums": 60.0, "bass": 55.0}
    for name in stems:
        y = tone(freqs[name], seconds=SECONDS - (0.5 if name == "drums" else 0))
        sf.write(folder / f"{name}.ogg", y.T, SR, format="OGG", subtype="VORBIS")
    return folder


def test_import_song_notes_meta_beats_and_mix(tmp_path):
    song = import_song(write_song(tmp_path / "Tester - Test Song", ini=(
        "\ufeff[Song]\r\nNAME = Test Song\r\nArtist = Tester\r\nalbum = Demo\r\ndelay = 100\r\n")))
    chart = song.chart
    assert chart.meta.title == "Test Song" and chart.meta.artist == "Tester"
    assert chart.meta.album == "Demo" and chart.meta.source is Source.IMPORTED_HUMAN
    assert chart.lanes == 5 and chart.meta.duration_s == pytest.approx(SECONDS, abs=0.01)
    expert = [(round(n.t, 9), n.lane, round(n.dur, 9), n.stem, n.pitch)
              for n in chart.track("expert")]
    assert expert == [(0.6, 0, 0.0, "guitar", None), (0.6, 2, 0.0, "guitar", None),
                      (1.1, 1, 0.5, "guitar", None), (2.1, 4, 0.0, "guitar", None),
                      (3.1, 3, 0.0, "guitar", None)]
    assert {d: len(t) for d, t in chart.difficulties.items()} == {
        "easy": 1, "medium": 1, "hard": 1, "expert": 5}
    # Beats: every quarter note of the tempo map shifted by the delay, to the end of the audio.
    np.testing.assert_allclose(chart.beats, [0.1, 0.6, 1.1, 1.6, 2.1, 3.1, 4.1, 5.1])
    # The fingerprint and sync reference are of the mix of every stem.
    decoded = [load(song.stems[n], mono=True)[0] for n in ("song", "guitar", "drums")]
    mix = np.zeros(max(map(len, decoded)), np.float32)
    for y in decoded:
        mix[:len(y)] += y
    assert chart.fingerprint == fingerprint(mix, SR)
    assert chart.sync == sync_reference(mix, SR)
    assert set(song.stems) == {"song", "guitar", "drums"} and song.sr == SR
    # Masks come from the guitar stem: every note has one.
    assert len(chart.masks) and all(n.mask is not None for t in chart.difficulties.values()
                                    for n in t)
    assert song.audio["guitar"].shape == (2, int(SECONDS * SR))


def test_import_without_the_instruments_stem_marks_notes_as_mix(tmp_path):
    song = import_song(write_song(tmp_path / "s", stems=("song",)))
    assert {n.stem for n in song.chart.track("expert")} == {"mix"}


def test_import_chart_text_folder_without_song_ini(tmp_path):
    folder = tmp_path / "chart-song"
    folder.mkdir()
    (folder / "notes.chart").write_text(CHART)
    (folder / "Song.OGG").write_bytes(b"")  # names are matched in any case
    sf.write(folder / "Song.OGG", tone(220.0).T, SR, format="OGG", subtype="VORBIS")
    chart = import_song(folder).chart
    assert chart.meta.title == "Example Song" and chart.meta.artist == "Example Artist"
    assert [n.t for n in chart.track("expert")] == [0.5, 0.5, 1.0, 1.5, 1.5]
    # The credits a .chart carries itself; Frets on Fire's editor wrote the year as ", 2007".
    (folder / "notes.chart").write_text(CHART.replace(
        '  Resolution', '  Charter = "Someone"\n  Genre = "Rock"\n  Year = ", 2007"\n  Resolution'))
    meta = import_song(folder).chart.meta
    assert (meta.charter, meta.genre, meta.year) == ("Someone", "Rock", "2007")


def test_song_ini_delay_wins_over_chart_offset_and_sets_the_cutoff(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "notes.chart").write_text(CHART)
    (folder / "song.ini").write_text("[song]\nname = X\ndelay = -250\n"
                                     "sustain_cutoff_threshold = 100\n")
    song = read_song_folder(folder)
    assert song.title == "X"
    assert [(n.t, n.dur) for n in song.notes.difficulties["expert"]] == [
        (-0.25, 0.0), (-0.25, 0.0), (0.25, 0.0), (0.75, 0.0), (0.75, 1.0)]


def test_find_song_folders_recursively(tmp_path):
    write_song(tmp_path / "a" / "one", stems=())
    write_song(tmp_path / "b" / "c" / "two", stems=())
    (tmp_path / "b" / "not-a-song").mkdir()
    assert find_song_folders(tmp_path) == [tmp_path / "a" / "one", tmp_path / "b" / "c" / "two"]
    assert find_song_folders(tmp_path / "a" / "one") == [tmp_path / "a" / "one"]
    assert find_song_folders(tmp_path / "a" / "one" / "notes.mid") == [tmp_path / "a" / "one"]
    with pytest.raises(FormatError, match="no song folder"):
        find_song_folders(tmp_path / "b" / "not-a-song")
    # A song pack linked in from elsewhere is followed; a link back up is no loop.
    write_song(tmp_path / "elsewhere" / "pack" / "three", stems=())
    library = tmp_path / "library"
    library.mkdir()
    (library / "pack").symlink_to(tmp_path / "elsewhere" / "pack")
    (library / "pack-again").symlink_to(tmp_path / "elsewhere" / "pack")
    (library / "up").symlink_to(library)
    assert find_song_folders(library) == [library / "pack" / "three"]


@pytest.mark.parametrize("breakage, message", [
    ("no-ini", "no song.ini beside notes.mid"),
    ("truncated", "notes.mid: not a readable MIDI file"),
    ("no-audio", "no audio"),
    ("garbage-chart", "notes.chart line 1: unexpected"),
    ("bad-audio", "guitar.ogg"),
])
def test_broken_folders_raise_one_clear_error(tmp_path, breakage, message):
    folder = write_song(tmp_path / "s", ini=None if breakage == "no-ini" else "[song]\nname=x\n",
                        stems=() if breakage == "no-audio" else ("song", "guitar"),
                        notes=None if breakage == "garbage-chart" else NOTES)
    if breakage == "truncated":
        data = (folder / "notes.mid").read_bytes()
        (folder / "notes.mid").write_bytes(data[:30])
    if breakage == "garbage-chart":
        (folder / "notes.chart").write_bytes(b"this is no chart at all\n\x01\x02")
    if breakage == "bad-audio":
        (folder / "guitar.ogg").write_bytes(b"OggS but not really")
    with pytest.raises(ValueError, match=message):
        import_song(folder)


# -- the commands ------------------------------------------------------------------------------

def test_cli_import_saves_chart_and_stems(tmp_path, capsys):
    root = tmp_path / "songs"
    write_song(root / "one")
    write_song(root / "more" / "two", stems=("song", "guitar"))
    assert main(["import", str(root), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == [str(root / "more" / "two"), str(root / "one")]
    first = lines[1]
    assert first["title"] == "Test Song" and first["artist"] == "Tester"
    assert first["notes"] == {"easy": 1, "medium": 1, "hard": 1, "expert": 5}
    store = LocalStore()
    chart = store.get(first["chart_id"])
    assert chart.meta.source is Source.IMPORTED_HUMAN and len(chart.track("expert")) == 5
    assert StemStore().names(first["chart_id"]) == ("drums", "guitar", "song")
    y, sr = StemStore().get(first["chart_id"], "guitar")
    assert sr == SR and y.shape == (2, int(SECONDS * SR))


def test_cli_import_skips_unchanged_songs(tmp_path, capsys, monkeypatch):
    import analyzer.formats

    folder = write_song(tmp_path / "one")
    assert main(["import", str(folder), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    calls = []
    real = analyzer.formats.import_song
    monkeypatch.setattr(analyzer.formats, "import_song", lambda f: calls.append(f) or real(f))
    assert main(["import", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first and calls == []
    assert main(["import", str(folder), "--json", "--force"]) == 0
    assert json.loads(capsys.readouterr().out) == first and [c.folder for c in calls] == [folder]
    (folder / "song.ini").write_text("[song]\nname = Renamed\nartist = Tester\n")
    assert main(["import", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Renamed" and len(calls) == 2


def test_cli_import_failures_are_one_line_each_and_exit_1(tmp_path, capsys):
    write_song(tmp_path / "good")
    write_song(tmp_path / "bad", ini=None)
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "notes.chart").write_bytes(b"\x00\xff" * 100)
    (tmp_path / "packed.sng").write_bytes(b"SNGPKG")   # Clone Hero's one-file songs: unread
    code = main(["import", str(tmp_path), str(tmp_path / "missing")])
    out, err = capsys.readouterr()
    assert code == 1
    assert len(out.splitlines()) == 1 and "Tester - Test Song" in out
    errors = err.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("loopjam: import") for e in errors)
    assert f"loopjam: import {tmp_path / 'packed.sng'}: a packed .sng song" in err
    assert f"loopjam: import: {tmp_path / 'missing'}: no such folder" in errors
    assert "Traceback" not in err
    assert any("no song.ini" in e for e in errors) and any("no such folder" in e for e in errors)
    assert main(["import", str(tmp_path / "bad"), "--json"]) == 1
    failure = json.loads(capsys.readouterr().out)
    assert failure["input"] == str(tmp_path / "bad") and "no song.ini" in failure["error"]


def test_cli_export_round_trip_through_clone_hero(tmp_path, capsys):
    write_song(tmp_path / "in" / "one")
    assert main(["import", str(tmp_path / "in"), "--json"]) == 0
    chart_id = json.loads(capsys.readouterr().out)["chart_id"]
    assert main(["export", chart_id, "--format", "clonehero", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "Tester - Test Song"
    assert capsys.readouterr().out.strip() == str(folder)
    assert {p.name for p in folder.iterdir()} == {"notes.mid", "song.ini", "song.ogg",
                                                  "guitar.ogg", "drums.ogg"}
    original = LocalStore().get(chart_id)
    again = import_song(folder).chart
    for name, track in original.difficulties.items():
        got = again.track(name)
        assert [n.lane for n in got] == [n.lane for n in track]
        assert np.allclose([n.t for n in got], [n.t for n in track], atol=1e-3)
        assert np.allclose([n.end for n in got], [n.end for n in track], atol=1e-3)
    assert again.meta.title == original.meta.title


def test_the_charter_genre_and_year_are_kept_through_the_store_and_an_export(tmp_path, capsys):
    # Charts are shared: whoever plays or exports a human chart still sees who made it.
    write_song(tmp_path / "in" / "one", ini="[song]\nname = Test Song\nartist = Tester\n"
               "charter = Someone\ngenre = Thrash\nyear = 2009\n")
    assert main(["import", str(tmp_path / "in"), "--json"]) == 0
    chart_id = json.loads(capsys.readouterr().out)["chart_id"]
    meta = LocalStore().get(chart_id).meta
    assert (meta.charter, meta.genre, meta.year) == ("Someone", "Thrash", "2009")
    assert main(["chart", "show", chart_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["charter"] == "Someone"
    for fmt in ("clonehero", "stepmania", "osu"):
        assert main(["export", chart_id, "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    capsys.readouterr()
    folder = tmp_path / "clonehero" / "Tester - Test Song"
    again = import_song(folder).chart.meta
    assert (again.charter, again.genre, again.year, again.source) == (
        "Someone", "Thrash", "2009", Source.IMPORTED_HUMAN)
    sm = next((tmp_path / "stepmania" / "Tester - Test Song").glob("*.sm")).read_text()
    assert "#CREDIT:Someone;" in sm and "#GENRE:Thrash;" in sm
    osu = next((tmp_path / "osu" / "Tester - Test Song").glob("*.osu")).read_text()
    assert "Creator:Someone" in osu


def test_star_power_and_solos_are_kept_through_the_store_and_a_clone_hero_export(tmp_path,
                                                                                 capsys):
    # 120 BPM to tick 1920 (2 s), then 60 BPM: star power 0.5-1.5 s, a solo 2.0-4.0 s.
    write_song(tmp_path / "in" / "one", notes=NOTES + [(480, 960, 116), (1920, 960, 103)])
    assert main(["import", str(tmp_path / "in"), "--json"]) == 0
    chart_id = json.loads(capsys.readouterr().out)["chart_id"]
    phrases = (Phrase("star_power", 0.5, 1.0), Phrase("solo", 2.0, 2.0))
    assert LocalStore().get(chart_id).phrases == phrases
    assert main(["chart", "show", chart_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["phrases"][1] == {"kind": "solo", "t": 2.0,
                                                                 "dur": 2.0}
    assert main(["chart", "show", chart_id]) == 0
    shown = capsys.readouterr().out
    assert "phrases   1 star power, 1 solo" in shown and "metre" not in shown
    assert main(["export", chart_id, "--format", "clonehero", "--out", str(tmp_path / "ch")]) == 0
    again = import_song(tmp_path / "ch" / "Tester - Test Song").chart
    assert again.phrases == phrases


def test_cli_export_says_when_the_format_folds_the_lanes(tmp_path, capsys):
    from chart_store.chart import Chart, ChartMeta, Note

    # 7 lanes: a chord on lanes 4 and 5 meets on Clone Hero's fret 3 (edges stay edges).
    notes = (Note(1.0, lane=0), Note(2.0, lane=4), Note(2.0, lane=5), Note(3.0, lane=6))
    chart = Chart(ChartMeta("Seven", "Lanes", duration_s=5.0), {"expert": notes}, lanes=7)
    chart_id = LocalStore().put(chart)
    assert main(["export", chart_id, "--format", "clonehero", "--out", str(tmp_path)]) == 0
    assert ("loopjam: export: clonehero has 5 lanes: the chart's 7 were folded onto them "
            "(1 chord notes met on one lane and merged)") in capsys.readouterr().err
    assert main(["export", chart_id, "--format", "osu", "--out", str(tmp_path)]) == 0
    assert "folded" not in capsys.readouterr().err         # osu!mania has 7 keys


def test_a_bass_chart_exports_as_bass_and_keeps_its_stem_on_the_way_back(tmp_path, capsys):
    folder = write_song(tmp_path / "in" / "bass", notes=None, stems=("song", "bass"))
    (folder / "notes.mid").write_bytes(midi_bytes([("PART BASS", NOTES)], tempos=TEMPOS))
    assert main(["import", str(folder), "--json"]) == 0
    chart_id = json.loads(capsys.readouterr().out)["chart_id"]
    assert main(["export", chart_id, "--format", "clonehero", "--out", str(tmp_path / "out")]) == 0
    exported = tmp_path / "out" / "Tester - Test Song"
    assert b"PART BASS" in (exported / "notes.mid").read_bytes()   # Clone Hero files it as bass
    again = import_song(exported).chart
    assert {n.stem for n in again.track("expert")} == {"bass"}     # bass.ogg is its stem again


def test_a_song_with_a_negative_delay_exports_with_silence_before_it(tmp_path, capsys):
    # delay = -250: the first notes come 0.25 s before the audio starts (Clone Hero plays it).
    folder = write_song(tmp_path / "in" / "early",
                        ini="[song]\nname = Early\nartist = Tester\ndelay = -250\n")
    (folder / "notes.mid").write_bytes(midi_bytes([("PART GUITAR", [(0, 1, 96), (480, 1, 97)])],
                                                  tempos=TEMPOS))
    assert main(["import", str(folder), "--json"]) == 0
    chart_id = json.loads(capsys.readouterr().out)["chart_id"]
    original = LocalStore().get(chart_id)
    first = min(track.times[0] for track in original.difficulties.values())
    assert first < 0
    for fmt in ("clonehero", "stepmania", "osu"):
        assert main(["export", chart_id, "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    exported = tmp_path / "clonehero" / "Tester - Early"
    again = import_song(exported).chart
    lead = -first
    for name, track in original.difficulties.items():   # every note as far into the audio
        assert np.allclose(again.track(name).times, track.times + lead, atol=1e-3)
    y, _ = load(exported / "song.ogg", mono=True)
    x, _ = load(folder / "song.ogg", mono=True)
    assert abs((y.size - x.size) / 22050 - lead) < 0.01        # the audio waits as long


def test_export_never_mixes_an_old_songs_stems_with_new_notes(tmp_path, capsys):
    # Two different charts of the same artist and title: the second export is refused (Clone
    # Hero would play the first one's drums.ogg with it), unless asked to replace the first.
    for name in ("a", "b"):
        write_song(tmp_path / name, stems=("song", "drums") if name == "a" else ("song",),
                   notes=NOTES if name == "a" else NOTES[2:4])
    assert main(["import", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    first, second = (json.loads(line)["chart_id"]
                     for line in capsys.readouterr().out.splitlines())
    out = tmp_path / "out"
    assert main(["export", first, "--format", "clonehero", "--out", str(out)]) == 0
    assert main(["export", first, "--format", "osu", "--out", str(out)]) == 0  # beside it: fine
    capsys.readouterr()
    assert main(["export", second, "--format", "clonehero", "--out", str(out)]) == 1
    assert "already holds a song" in capsys.readouterr().err
    assert main(["export", second, "--format", "clonehero", "--out", str(out), "--force"]) == 0
    folder = out / "Tester - Test Song"
    assert not (folder / "drums.ogg").exists() and any(folder.glob("*.osu"))
    assert len(import_song(folder).chart.track("expert")) == 2   # the second chart's notes


def test_cli_export_errors(tmp_path, capsys):
    assert main(["export", "0123456789abcdef", "--format", "osu", "--out", str(tmp_path)]) == 1
    assert "0123456789abcdef" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["export", "x", "--format", "guitarpro", "--out", str(tmp_path)])
    assert usage.value.code == 2


def test_imported_chart_wins_over_a_generated_chart_of_the_same_song(tmp_path):
    from dataclasses import replace

    song = import_song(write_song(tmp_path / "s"))
    human = song.chart
    generated = replace(human, meta=replace(human.meta, source=Source.ANALYZED),
                        difficulties={"expert": human.track("expert").notes[:2]})
    store = LocalStore()
    generated_id, human_id = store.put(generated), store.put(human)
    assert generated_id != human_id
    match = store.identify(human.fingerprint)
    assert match is not None and match.chart_id == human_id


def test_a_generated_chart_exports_with_its_audio_and_imports_back_as_generated(tmp_path, capsys):
    # A chart analyzed from a file keeps no stems: --audio gives the song folder its song.ogg
    # (without it the game would have nothing to play, and the command says so). Imported
    # back, its song.ini "charter = LoopJam" keeps it a generated chart: it must not outrank
    # charts as a human one would.
    from dataclasses import replace

    human = import_song(write_song(tmp_path / "s")).chart
    generated = replace(human, meta=replace(human.meta, source=Source.ANALYZED))
    chart_id = LocalStore().put(generated)
    sf.write(tmp_path / "song.wav", tone(220.0).T, SR)
    out = tmp_path / "out"
    assert main(["export", chart_id, "--format", "clonehero", "--out", str(out / "bare")]) == 0
    assert "no audio written, no song.ogg: add the song's audio with --audio FILE" in (
        capsys.readouterr().err)
    StemStore().put(chart_id, "guitar", tone(440.0), SR)   # what a Demucs analysis keeps
    assert main(["export", chart_id, "--format", "fof", "--out", str(out / "stem")]) == 0
    assert "only guitar written, no song.ogg" in capsys.readouterr().err
    assert main(["export", chart_id, "--format", "clonehero", "--out", str(out / "full"),
                 "--audio", str(tmp_path / "song.wav")]) == 0
    folder = out / "full" / "Tester - Test Song"
    assert {p.name for p in folder.iterdir()} == {"notes.mid", "song.ini", "song.ogg"}
    again = import_song(folder).chart
    assert again.meta.source is Source.ANALYZED and human.meta.source is Source.IMPORTED_HUMAN
    assert len(again.track("expert")) == len(human.track("expert"))
    assert main(["export", chart_id, "--format", "osu", "--out", str(out),
                 "--audio", str(tmp_path / "nothing.mp3")]) == 1
    assert "nothing.mp3: no such file" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main(["export", chart_id, "--format", "osu", "--out", str(tmp_path / "a-file")]) == 1
    assert capsys.readouterr().err == (
        f"loopjam: export: Not a directory: {tmp_path / 'a-file' / 'Tester - Test Song'}\n")
