"""notes.chart and song.ini reading, from texts written by the tests."""
from __future__ import annotations

import codecs

import pytest

from analyzer.formats.chart_text import parse_chart_text
from analyzer.formats.common import FormatError
from analyzer.formats.songini import format_song_ini, parse_song_ini
from chart_store.chart import Phrase, TimeSignature

CHART = """\
[Song]
{
  Name = "Example Song"
  Artist = "Example Artist"
  Resolution = 192
  Offset = 0.5
  MusicStream = "song.ogg"
}
[SyncTrack]
{
  0 = TS 4
  0 = B 120000
  384 = A 1000000
  384 = B 60000
  768 = TS 3 3
}
[Events]
{
  0 = E "section Intro"
}
[ExpertSingle]
{
  0 = N 0 0
  0 = N 4 0
  192 = N 2 96
  192 = N 5 0
  384 = N 7 0
  384 = N 1 192
  576 = S 2 192
  576 = E solo
  768 = S 0 192
  960 = E soloend
}
[HardSingle]
{
  0 = N 3 0
  0 = S 2 384
}
[ExpertDoubleBass]
{
  0 = N 1 0
}
"""


def test_chart_notes_tempo_offset_and_sustains():
    chart = parse_chart_text(CHART.encode())
    assert chart.instrument == "guitar" and chart.lanes == 5 and chart.offset_s == 0.5
    assert chart.tags["Name"] == "Example Song"
    expert = [(n.t, n.lane, n.dur) for n in chart.difficulties["expert"]]
    # 120 BPM for two beats (1 s), then 60 BPM; Offset 0.5 s makes every note 0.5 s later;
    # the modifier (5) is not a note, the open note (7: a strum with no fret) is one on lane 0.
    assert expert == [(0.5, 0, 0.0), (0.5, 4, 0.0), (1.0, 2, 0.25), (1.5, 0, 0.0),
                      (1.5, 1, 1.0)]
    assert [(n.t, n.lane) for n in chart.difficulties["hard"]] == [(0.5, 3)]
    assert chart.beats(3.6).tolist() == [0.5, 1.0, 1.5, 2.5, 3.5]
    # The hardest section's star power (S 2; S 0 is a face-off mark) and solo (E solo..soloend).
    assert chart.phrases == (Phrase("star_power", 2.5, 1.0), Phrase("solo", 2.5, 2.0))
    # TS 4 is 4/4 (a quarter note a beat when k is left out); TS 3 3 is 3/8.
    assert chart.time_signatures == (TimeSignature(0.5, 4, 4), TimeSignature(3.5, 3, 8))


def test_chart_offset_override_cutoff_and_instrument():
    chart = parse_chart_text(CHART.encode(), offset_s=0.0, sustain_cutoff_ticks=96)
    assert [n.dur for n in chart.difficulties["expert"]] == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert chart.difficulties["expert"][0].t == 0.0
    bass = parse_chart_text(CHART.encode(), instrument="bass")
    assert bass.stem == "bass" and [n.lane for n in bass.difficulties["expert"]] == [1]


def test_chart_six_fret_lanes_and_encodings():
    text = CHART.replace("Single", "GHLGuitar").replace("0 = N 4 0", "0 = N 8 0")
    data = codecs.BOM_UTF16_LE + text.replace("Example Song", "Café").encode("utf-16-le")
    chart = parse_chart_text(data)
    assert chart.lanes == 6 and chart.tags["Name"] == "Café"
    assert [n.lane for n in chart.difficulties["expert"]] == [0, 5, 2, 0, 1]
    cp1252 = parse_chart_text(CHART.replace("Example Song", "Café").encode("cp1252"))
    assert cp1252.tags["Name"] == "Café"


@pytest.mark.parametrize("text, message", [
    ("", "no \\[Song\\] section"),
    ("hello world\nthis is not a chart", "line 1: unexpected"),
    ("[Song]\n{\n Resolution = abc\n}\n", "Resolution/Offset is not a number"),
    ("[Song]\n{\n Resolution = 192\n", "never closed"),
    ("[Song]\n{\n}\n[SyncTrack]\n{\n 0 = B 0\n}\n", "tempo must be > 0"),
    ("[Song]\n{\n}\n[SyncTrack]\n{\n 0 = B inf\n}\n", "tempo must be > 0"),
    ("[Song]\n{\n Offset = nan\n}\n", "Resolution/Offset is not a number"),
    ("[Song]\n{\n Resolution = inf\n}\n", "Resolution/Offset is not a number"),
    ("[Song]\n{\n}\n[ExpertSingle]\n{\n x = N 1 0\n}\n", "line 6: 'x' is not a tick"),
    ("[Song]\n{\n}\n[ExpertSingle]\n{\n 0 = N one 0\n}\n", "line 6: bad note"),
    ("[Song]\n{\n}\n[ExpertDrums]\n{\n 0 = N 1 0\n}\n", "no notes"),
    ("[Song]\n{\n}\n[ExpertSingle]\n{\n 0 = N 5 0\n}\n", "hold no notes"),
])
def test_garbage_chart_raises_one_clear_error(text, message):
    with pytest.raises(FormatError, match=message):
        parse_chart_text(text.encode())


def test_binary_garbage_is_not_a_chart():
    with pytest.raises(FormatError, match="binary"):
        parse_chart_text(bytes(range(256)) * 4)


def test_song_ini_is_read_tolerantly():
    data = (codecs.BOM_UTF8 + "; comment\r\nname = before any section\r\n[SONG]\r\n"
            "Name = Fire Song\r\nARTIST = Björk\r\nalbum=\r\ndelay = 1500.5\r\n"
            "sustain_cutoff_threshold = 80\r\nsong_length = 183000\r\nweird line\r\n"
            "[other]\r\nname = not this\r\n".encode())
    ini = parse_song_ini(data)
    assert (ini.title, ini.artist, ini.album) == ("Fire Song", "Björk", "")
    assert ini.delay_s == pytest.approx(1.5005) and ini.sustain_cutoff_ticks == 80
    assert ini.song_length_s == 183.0
    latin = parse_song_ini("[song]\nartist = Mötley\ndelay = soon\n".encode("cp1252"))
    assert latin.artist == "Mötley" and latin.delay_s == 0.0
    utf16 = parse_song_ini(codecs.BOM_UTF16_LE + "[song]\nname = Ünï\n".encode("utf-16-le"))
    assert utf16.title == "Ünï"


def test_song_ini_round_trip():
    text = format_song_ini({"name": "A\nB", "artist": "C", "album": None, "delay": 0})
    assert text == "[song]\nname = A B\nartist = C\ndelay = 0\n"
    assert parse_song_ini(text.encode()).title == "A B"
