"""Calibration offsets, the tap test, the click track, and local high scores."""
import numpy as np
import pytest

from companion.game.calibration import (
    CalibrationError, Offsets, click_track, draw_time, heard_time, input_time, offset_from_taps,
)
from companion.game.engine import Results
from companion.game.highscores import HighScoreError, HighScores


def test_offsets_move_the_clocks_the_documented_way():
    o = Offsets(audio_ms=40, video_ms=15, input_ms=8)
    assert heard_time(10.0, o) == pytest.approx(9.96)
    assert draw_time(10.0, o) == pytest.approx(10.015)
    assert input_time(10.0, o) == pytest.approx(9.992)


def test_tap_offset_is_the_median_and_ignores_outliers():
    rng = np.random.default_rng(5)
    beats = 1.0 + np.arange(32) * 0.6
    taps = beats + 0.042 + rng.normal(0, 0.008, beats.size)
    taps[[3, 9, 20]] += [0.15, -0.12, 0.2]                 # fumbled taps
    taps = np.concatenate([taps, [beats[5] + 0.3, 30.0]])   # a double tap, a stray one
    cal = offset_from_taps(taps=taps, beats=beats)
    assert cal.offset_ms == pytest.approx(42, abs=4)
    assert cal.outliers >= 4 and cal.used >= 28
    assert 3 < cal.spread_ms < 15


def test_tap_offset_negative_when_early():
    beats = np.arange(20) * 0.5
    assert offset_from_taps(taps=beats - 0.020, beats=beats).offset_ms == pytest.approx(-20)


def test_too_few_taps_is_an_error():
    beats = np.arange(20) * 0.5
    with pytest.raises(CalibrationError, match="need 8"):
        offset_from_taps(taps=beats[:5], beats=beats)
    with pytest.raises(CalibrationError, match="ascending"):
        offset_from_taps(taps=beats, beats=beats[::-1])


def test_click_track_has_clicks_exactly_at_the_beats():
    y, beats = click_track(sr=16000, bpm=120, beats=8, lead_in_s=0.5)
    assert y.dtype == np.float32 and beats.tolist() == [0.5 + 0.5 * i for i in range(8)]
    onsets = np.flatnonzero((np.abs(y[1:]) > 0.05) & (np.abs(y[:-1]) <= 0.05))
    starts = onsets[np.insert(np.diff(onsets) > 1000, 0, True)] / 16000
    assert np.allclose(starts, beats, atol=0.001)


def results(score, accuracy=0.9):
    return Results(score=score, accuracy=accuracy, hits=9, misses=1, perfect=5, great=3, good=1,
                   max_combo=7, notes=10, sustains_held=0, sustains=0)


def test_highscores_keep_the_best_first(loopjam_home):
    table = HighScores()
    assert table.best("c1", "expert") is None
    assert table.submit("c1", "expert", results(500))
    assert not table.submit("c1", "expert", results(300))
    assert table.submit("c1", "expert", results(900), player="autoplay")
    assert [e["score"] for e in table.top("c1", "expert")] == [900, 500, 300]
    assert table.best("c1", "expert")["player"] == "autoplay"
    assert table.best("c1", "easy") is None
    assert (loopjam_home / "highscores.json").exists()
    assert HighScores().best("c1", "expert")["score"] == 900   # persisted


def test_corrupt_highscore_file_is_named(tmp_path):
    path = tmp_path / "hs.json"
    path.write_text("{not json")
    with pytest.raises(HighScoreError, match="hs.json"):
        HighScores(path).best("c", "expert")


def test_calibrate_cli_sets_offsets_from_taps(tmp_path, capsys):
    import json as json_

    from companion.cli import main
    from companion.config import load_config
    beats = np.arange(24) * 0.5
    taps = tmp_path / "taps.json"
    taps.write_text(json_.dumps({"taps": (beats + 0.031).tolist(), "beats": beats.tolist()}))
    assert main(["calibrate", "--from-taps", str(taps), "--kind", "audio", "--video-ms", "12",
                 "--json"]) == 0
    out = json_.loads(capsys.readouterr().out)
    assert out["measured"]["offset_ms"] == pytest.approx(31)
    assert load_config().offsets.audio_ms == pytest.approx(31)
    assert load_config().offsets.video_ms == 12
    taps.write_text('{"taps": [1.0], "beats": [0.0, 0.5, 1.0]}')
    assert main(["calibrate", "--from-taps", str(taps)]) == 1
    assert "need 8" in capsys.readouterr().err
    taps.write_text("[1.0, 2.0]")                       # not what a tap file holds
    assert main(["calibrate", "--from-taps", str(taps)]) == 1
    assert capsys.readouterr().err == (f'loopjam: {taps}: expected a JSON object with "taps" '
                                       'and "beats" (seconds)\n')
