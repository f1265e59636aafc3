"""analyzer.preview and ``loopjam chart preview``: note heads, lanes and beat grid drawn where
the chart puts them."""
import numpy as np
import pytest
from PIL import Image

from analyzer import preview
from chart_store.chart import Chart, ChartMeta, Note, SyncReference
from chart_store.chartfile import write_chart
from companion.cli import main

SR = 22050


def _chart():
    notes = (Note(1.0, lane=0, pitch=57), Note(2.0, dur=1.0, lane=2, pitch=64),
             Note(3.5, lane=4, pitch=69), Note(3.5, lane=1, pitch=60))
    envelope = np.zeros(600, np.float32)
    envelope[[100, 200, 350]] = 1.0
    return Chart(ChartMeta(title="Grid", artist="Test", duration_s=6.0), {"expert": notes},
                 lanes=5, beats=np.arange(0.5, 6.0, 0.5),
                 sync=SyncReference(envelope=envelope, frame_rate=100.0))


def _note_centre(note, *, width=1200, row_s=6.0, lanes=5):
    x = preview._LEFT + note.t * (width - preview._LEFT) / row_s
    y = 30 + preview._SPEC_H + note.lane * preview._LANE_H + preview._LANE_H // 2
    return int(round(x)), int(y)


def test_note_heads_sit_on_their_lane_in_their_colour():
    chart = _chart()
    t = np.arange(6 * SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    image = np.asarray(preview.render_preview(chart, y=y, sr=SR, row_s=6.0, width=1200))
    assert image.shape[1] == 1200
    for note in chart.track("expert"):
        x, ly = _note_centre(note)
        assert tuple(image[ly, x]) == preview.LANE_COLOURS[note.lane], note
    # the sustain of the lane-2 note is drawn to its end; an empty lane stays background
    x_mid, ly = _note_centre(Note(2.6, lane=2))
    assert tuple(image[ly, x_mid]) != tuple(image[ly + 2 * preview._LANE_H, x_mid])
    # the 220 Hz tone is the bright band of the spectrogram strip (the loudest rows saturate)
    strip = image[30:30 + preview._SPEC_H, preview._LEFT + 10:].astype(int).sum(axis=(1, 2))
    bright = np.flatnonzero(strip >= 0.95 * strip.max())
    assert abs(bright.mean() - preview._hz_to_row(220, preview._SPEC_H)) <= 2
    assert bright.max() - bright.min() < 15


def test_cli_preview_writes_png_rows(tmp_path, capsys):
    chart_file = tmp_path / "grid.chart"
    write_chart(_chart(), chart_file)
    png = tmp_path / "grid.png"
    assert main(["chart", "preview", str(chart_file), "-o", str(png), "--row", "2",
                 "--width", "800"]) == 0
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width == 800
        one_row = preview._SPEC_H + 5 * preview._LANE_H + preview._LABEL_H + preview._GAP
        assert image.height == 30 + 3 * one_row  # 6 s in rows of 2 s
    assert main(["chart", "preview", str(chart_file), "-o", str(png), "--difficulty",
                 "easy"]) == 1
    assert "no easy difficulty" in capsys.readouterr().err


def test_the_last_row_stops_at_the_end_asked_for():
    # 0-3.2 s in rows of 2 s: the second row is drawn to 3.2 s and no further (the 3.5 s notes
    # are past the end), at the same scale as the first.
    chart = _chart()
    image = np.asarray(preview.render_preview(chart, end_s=3.2, row_s=2.0, width=1200))
    one_row = preview._SPEC_H + 5 * preview._LANE_H + preview._LABEL_H + preview._GAP
    lanes_mid = 30 + one_row + preview._SPEC_H + 2 * preview._LANE_H
    px_s = (1200 - preview._LEFT) / 2.0
    end_x = preview._LEFT + int(1.2 * px_s)
    background = tuple(image[0, -1])
    assert tuple(image[lanes_mid, end_x - 5]) != background     # the lanes run to 3.2 s
    assert (image[30 + one_row:, end_x + 5:] == background).all()   # and stop there


def test_a_sustain_starting_in_a_rows_last_pixel_goes_on_in_the_next_row():
    # Its head sits a fraction of a pixel past the row's last column: that row has no room for
    # its tail (drawn there, it was a rectangle of negative width, and the preview raised); the
    # next row draws the tail.
    chart = _chart()
    row_s, width = 2.0, 1200
    px_s = (width - preview._LEFT) / row_s
    late = Note(2.0 - 0.3 / px_s, dur=0.8, lane=3, pitch=62)
    chart = Chart(chart.meta, {"expert": tuple(sorted((*chart.track("expert"), late),
                                                      key=lambda n: n.t))},
                  lanes=5, beats=chart.beats, sync=chart.sync)
    image = np.asarray(preview.render_preview(chart, row_s=row_s, width=width))
    one_row = preview._SPEC_H + 5 * preview._LANE_H + preview._LABEL_H + preview._GAP
    ly = 30 + one_row + preview._SPEC_H + 3 * preview._LANE_H + preview._LANE_H // 2
    tail_x = preview._LEFT + int(0.4 * px_s)                 # 2.4 s, on the second row
    assert tuple(image[ly, tail_x]) != tuple(image[ly + preview._LANE_H, tail_x])


def test_bad_stretches_and_sizes_are_one_line_errors(tmp_path, capsys):
    chart_file = tmp_path / "grid.chart"
    write_chart(_chart(), chart_file)
    png = str(tmp_path / "grid.png")
    cases = {("--row", "0"): "--row must be more than 0 seconds",
             ("--width", "100"): "--width must be at least 200 pixels",
             ("--start", "4", "--end", "3"): "--end must be after --start",
             ("--start", "9"): "--start 9 s is outside the chart (0-6.0 s)",
             ("--start", "-1"): "--start -1 s is outside the chart"}
    for args, message in cases.items():
        assert main(["chart", "preview", str(chart_file), "-o", png, *args]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, args
    with pytest.raises(SystemExit):   # nan passed every range check, then raised while drawing
        main(["chart", "preview", str(chart_file), "-o", png, "--start", "nan"])
    assert "argument --start: not a finite number: 'nan'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="must be after the start"):
        preview.render_preview(_chart(), start_s=4.0, end_s=3.0)
    with pytest.raises(ValueError, match="at least 200 px wide"):
        preview.render_preview(_chart(), width=120)
