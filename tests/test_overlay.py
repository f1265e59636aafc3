"""The overlay under Xvfb (Mesa llvmpipe): notes where the chart says, text drawn, transparency,
and the real window with real X key events."""
import dataclasses
import queue
import threading
import time

import numpy as np
import pytest

from chart_store.chart import Note, Phrase, Track
from companion.game.engine import GameEngine
from companion.overlay.state import GameSnapshot, StateBox, snapshot_from_engine
from companion.overlay.style import (
    OverlayStyle, StyleError, highway_left, image_row, lane_x, note_y, parse_color,
)

pytestmark = pytest.mark.xvfb
STYLE = OverlayStyle()
LANES = 5


@pytest.fixture(scope="module")
def renderer(xvfb):
    from companion.overlay.render import OffscreenRenderer
    with OffscreenRenderer(STYLE) as r:
        yield r


def chart_track():
    """Taps in every lane at known times, a chord, no sustains (sustains get their own test)."""
    notes = [Note(1.0 + 0.13 * i, lane=i % LANES) for i in range(20)]
    notes += [Note(4.0, lane=1), Note(4.0, lane=3)]
    return Track(tuple(sorted(notes, key=lambda n: (n.t, n.lane))))


def snap_for(track, now, **kw):
    engine = GameEngine(track)
    engine.update(now - 0.2)  # windows closed so far: earlier notes missed (grey)
    defaults = dict(status="synced", game_time=now, wall_time=0.0, lanes=LANES,
                    title="Known Chart", artist="Test", duration_s=6.0)
    return snapshot_from_engine(engine, **{**defaults, **kw})


def runs(mask):
    """Centres of runs of True in a 1-D boolean array."""
    idx = np.flatnonzero(mask)
    if not idx.size:
        return []
    groups = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return [(g[0] + g[-1]) / 2 for g in groups]


@pytest.mark.parametrize("now", [1.0, 1.37, 2.5, 3.61])
def test_notes_are_at_the_rows_the_chart_predicts(renderer, now):
    track = chart_track()
    snap = snap_for(track, now)
    img = renderer.render(snap, now)
    # The same frame without notes: whatever differs in a lane's column is a note.
    empty = renderer.render(dataclasses.replace(snap, track=Track(()), draw_states=None), now)
    top = STYLE.highway_height - STYLE.note_height  # fully inside the highway
    checked = 0
    for lane in range(LANES):
        x = int(lane_x(lane=lane, lanes=LANES, style=STYLE) + STYLE.lane_width * 0.2)
        found = runs(np.any(img[:, x] != empty[:, x], axis=-1))
        expected = [image_row(note_y(t=n.t, now=now, style=STYLE), STYLE) for n in track
                    if n.lane == lane and n.t > now - 0.09
                    and STYLE.hit_line + 12 < note_y(t=n.t, now=now, style=STYLE) < top]
        # Pads below the hit line share the lane colour: only compare above it.
        found = [r for r in found if r < image_row(STYLE.hit_line + 12, STYLE)]
        assert len(found) == len(expected), (lane, found, expected)
        for row, want in zip(sorted(found), sorted(expected)):
            assert abs(row - want) <= 3, (lane, row, want)
        checked += len(expected)
    assert checked >= 2


def test_missed_notes_turn_grey_and_hit_notes_vanish(renderer):
    track = Track((Note(1.0, lane=0), Note(1.0, lane=2)))
    engine = GameEngine(track)
    engine.queue_input(2, True, 1.0)
    engine.update(1.2)
    now = 0.95  # draw both just above the hit line
    snap = snapshot_from_engine(engine, status="synced", game_time=now, wall_time=0, lanes=LANES)
    img = renderer.render(snap, now)
    row = int(round(image_row(note_y(t=1.0, now=now, style=STYLE), STYLE)))
    grey = np.array(parse_color(STYLE.miss_color)[:3]) * 255
    x0 = int(lane_x(lane=0, lanes=LANES, style=STYLE) + STYLE.lane_width * 0.2)
    x2 = int(lane_x(lane=2, lanes=LANES, style=STYLE) + STYLE.lane_width * 0.2)
    # The chord was missed as a whole (lane 0 never pressed): both grey (near the gem's
    # bottom edge the colour is the plain miss colour; gems lighten towards the top).
    bottom = row + STYLE.note_height // 2 - 2
    assert np.linalg.norm(img[bottom, x0, :3] - grey) < 25
    assert np.linalg.norm(img[bottom, x2, :3] - grey) < 25
    assert np.ptp(img[row, x0, :3]) < 8 and np.ptp(img[row, x2, :3]) < 8  # neutral grey


def test_sustain_tail_spans_the_note_length(renderer):
    track = Track((Note(1.5, dur=0.5, lane=2),))
    now = 1.45
    snap = snap_for(track, now)
    img = renderer.render(snap, now)
    empty = renderer.render(dataclasses.replace(snap, track=Track(()), draw_states=None), now)
    x = int(lane_x(lane=2, lanes=LANES, style=STYLE) + STYLE.lane_width / 2)
    drawn = np.any(img[:, x] != empty[:, x], axis=-1)
    rows = np.flatnonzero(drawn[: int(image_row(STYLE.hit_line + 12, STYLE))])
    top = image_row(note_y(t=2.0, now=now, style=STYLE), STYLE)
    head = image_row(note_y(t=1.5, now=now, style=STYLE), STYLE)
    assert abs(rows.min() - top) <= 3                       # the tail ends at the note's end
    assert abs(rows.max() - (head + STYLE.note_height / 2)) <= 3   # the gem's bottom edge
    assert rows.size >= rows.max() - rows.min() - 1         # continuous
    r, g, b = img[int((top + head) / 2), x, :3].astype(int)
    assert r > 120 and g > 100 and b < 60                   # in the lane's colour (yellow)


def test_beats_are_lines_across_the_highway_under_the_notes(renderer):
    # The highway shows the song's pulse: a faint line at each beat, across every lane and no
    # further; a note on a beat is drawn over its line.
    track = Track((Note(2.0, lane=1),))
    now = 1.6
    beats = np.array([1.5, 2.0, 2.5])
    snap = snap_for(track, now, beats=beats)
    img = renderer.render(snap, now).astype(int)
    bare = renderer.render(dataclasses.replace(snap, beats=None), now).astype(int)
    changed = np.any(img != bare, axis=-1)
    left = int(highway_left(LANES, STYLE))
    right = left + LANES * STYLE.lane_width
    rows = runs(changed[:, right - 3])   # a column no note crosses
    visible = [b for b in beats if 0 < note_y(t=b, now=now, style=STYLE) < STYLE.highway_height]
    assert len(rows) == len(visible) == 2
    for row, b in zip(sorted(rows), sorted(visible, reverse=True)):
        assert abs(row - image_row(note_y(t=b, now=now, style=STYLE), STYLE)) <= 2
    line = int(max(rows))    # beat 1.5, just past the hit line (2.0 has a note on it)
    assert changed[line, left + 1:right - 1].all() and not changed[line, :left - 1].any()
    assert not changed[line, right + 1:].any()
    # faint: lighter than the backdrop, far from the white hit line
    assert 0 < img[line, right - 3, :3].mean() - bare[line, right - 3, :3].mean() < 90
    gem = int(round(image_row(note_y(t=2.0, now=now, style=STYLE), STYLE)))
    x1 = int(lane_x(lane=1, lanes=LANES, style=STYLE) + STYLE.lane_width / 2)
    assert not changed[gem, x1]                  # the gem covers its beat's line


def test_the_notes_of_a_star_power_phrase_are_drawn_in_the_star_colour(renderer):
    # A human chart's star power (Clone Hero's white gems): the notes inside the phrase, its
    # ends included, take the star colour; a note after it and a solo keep their lane's.
    track = Track((Note(1.8, lane=0), Note(2.0, lane=1), Note(2.2, lane=2), Note(2.4, lane=3)))
    now = 1.6
    phrases = (Phrase("star_power", 1.8, 0.4), Phrase("solo", 2.4, 1.0))
    plain = renderer.render(snap_for(track, now), now).astype(int)
    starred = renderer.render(snap_for(track, now, phrases=phrases), now).astype(int)
    star = np.array(parse_color(STYLE.star_color)[:3]) * 255
    for note in track:
        y = int(round(image_row(note_y(t=note.t, now=now, style=STYLE), STYLE)))
        x = int(lane_x(lane=note.lane, lanes=LANES, style=STYLE) + STYLE.lane_width / 2)
        if note.t <= 2.2:   # a gem's shading lightens its centre a little
            assert np.abs(starred[y, x, :3] - star).max() < 60, note
            assert np.abs(starred[y, x, :3] - plain[y, x, :3]).max() > 100, note
        else:
            assert (starred[y, x] == plain[y, x]).all(), note


def text_pixels(img, box):
    """White-ish (text) pixels in box = (x0, y0, x1, y1), image coordinates."""
    x0, y0, x1, y1 = box
    return int((img[y0:y1, x0:x1, :3].min(axis=-1) > 150).sum())


def test_judgement_and_score_text_are_drawn(renderer):
    track = chart_track()
    engine = GameEngine(track)
    engine.queue_input(0, True, 1.01)
    engine.update(1.1)
    now = 1.1
    base = dict(status="synced", game_time=now, wall_time=0, lanes=LANES, title="Known Chart",
                artist="Test", duration_s=6)
    with_text = renderer.render(snapshot_from_engine(engine, **base), now)
    without = renderer.render(GameSnapshot(**{**base, "status": "waiting", "title": ""}), now)
    jy = int(image_row(STYLE.hit_line + 90, STYLE))
    judgement_box = (STYLE.width // 2 - 90, jy - 20, STYLE.width // 2 + 90, jy + 20)
    changed = np.any(with_text[judgement_box[1]:judgement_box[3],
                               judgement_box[0]:judgement_box[2]]
                     != without[judgement_box[1]:judgement_box[3],
                                judgement_box[0]:judgement_box[2]], axis=-1)
    assert changed.sum() > 200, "PERFECT is drawn"
    score_box = (0, 30, STYLE.width, 70)   # the HUD's second line: score, combo, accuracy
    assert text_pixels(with_text, score_box) > 300
    assert text_pixels(without, score_box) == 0
    assert without[30:70, :, 3].max() == 0          # nothing at all there
    # The judgement text is the colour of a perfect.
    from companion.overlay.render import JUDGEMENT_COLORS
    want = np.array(parse_color(JUDGEMENT_COLORS["perfect"])[:3]) * 255
    region = with_text[judgement_box[1]:judgement_box[3], judgement_box[0]:judgement_box[2]]
    assert (np.linalg.norm(region[..., :3] - want, axis=-1) < 30).sum() > 100


@pytest.mark.parametrize("anchor_x, anchor_y", [("left", "top"), ("center", "center"),
                                                ("right", "baseline")])
def test_fast_hud_text_sits_where_a_pyglet_label_would(renderer, anchor_x, anchor_y):
    """Score, combo, accuracy and judgement are drawn from glyph quads, not labels (a label
    re-lays itself out at ~0.5 ms a change): the same pixels as the overlay's labels."""
    import pyglet
    from pyglet import gl
    from companion.overlay.render import _HudText, _Label
    text, x, y, size = "Combo 1,234  x4 PERFECT 98.7%", 280, 360, 20

    def grab(draw):
        gl.glClearColor(0, 0, 0, 0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        draw()
        gl.glFinish()
        pixels = np.empty((STYLE.height, STYLE.width, 4), np.uint8)
        gl.glReadPixels(0, 0, STYLE.width, STYLE.height, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE,
                        pixels.ctypes.data)
        return pixels

    def draw_hud():
        gl.glEnable(gl.GL_BLEND)
        gl.glBlendFuncSeparate(gl.GL_SRC_ALPHA, gl.GL_ONE_MINUS_SRC_ALPHA,
                               gl.GL_ONE, gl.GL_ONE_MINUS_SRC_ALPHA)
        hud.draw((float(STYLE.width), float(STYLE.height)))

    renderer.window.switch_to()
    renderer.fbo.bind()
    batch = pyglet.graphics.Batch()
    label = _Label(text, x=x, y=y, anchor_x=anchor_x, anchor_y=anchor_y,
                   font_name=STYLE.font_name, font_size=size, weight="bold", batch=batch)
    hud = _HudText()
    try:
        field = hud.add(font=pyglet.font.load(STYLE.font_name, size, weight="bold"), x=x, y=y,
                        anchor_x=anchor_x, anchor_y=anchor_y)
        hud.set(field, text, (1.0, 1.0, 1.0, 1.0))
        want, got = grab(batch.draw), grab(draw_hud)
    finally:
        hud.delete()
        label.delete()
        renderer.fbo.unbind()
    assert (want[..., 0] > 128).sum() > 1000
    np.testing.assert_array_equal(got, want)
    # Premultiplied alpha, what a compositor expects: white text has alpha == red.
    assert np.abs(got[..., 3].astype(int) - got[..., 0]).max() <= 1


def test_nothing_drawn_means_fully_transparent(renderer):
    now = 2.0
    img = renderer.render(snap_for(chart_track(), now), now)
    left = int(highway_left(LANES, STYLE))
    margin_rows = slice(STYLE.hud_height + 2, STYLE.height)
    assert img[margin_rows, : left - 1, 3].max() == 0
    assert img[margin_rows, STYLE.width - left + 1:, 3].max() == 0
    assert img[margin_rows, left + 2: left + 10, 3].min() > 0   # the lanes' backdrop


def test_frame_alpha_is_premultiplied(renderer):
    """What a compositor expects from a transparent window: no pixel brighter than opaque
    (pyglet's own labels and shapes write alpha squared; the overlay's must not)."""
    track = chart_track()
    engine = GameEngine(track)
    engine.queue_input(0, True, 1.01)
    engine.update(1.1)
    img = renderer.render(snapshot_from_engine(engine, status="synced", game_time=1.1,
                                               wall_time=0, lanes=LANES, title="Known Chart",
                                               artist="Test", duration_s=6), 1.1,
                          pressed=frozenset({2}))
    assert (img[..., 3] > 0).mean() > 0.3            # lanes, notes, pads, text: a full frame
    assert np.all(img[..., :3].max(axis=-1).astype(int) <= img[..., 3].astype(int) + 1)


def test_statuses_and_results_screen(renderer):
    blank = renderer.render(GameSnapshot(status="synced", lanes=LANES), 0.0)
    message_box = (20, int(STYLE.height * 0.3), STYLE.width - 20, int(STYLE.height * 0.5))
    for status in ("waiting", "identifying", "recording", "paused"):
        img = renderer.render(GameSnapshot(status=status, lanes=LANES), 0.0)
        assert text_pixels(img, message_box) > text_pixels(blank, message_box) + 100, status
    engine = GameEngine(chart_track())
    engine.update(10)
    snap = snapshot_from_engine(engine, status="ended", game_time=10, wall_time=0, lanes=LANES)
    assert snap.results is not None and snap.results.misses == len(chart_track())
    img = renderer.render(snap, 10.0)
    assert text_pixels(img, (20, 150, STYLE.width - 20, 500)) > 1000


def test_style_validation_names_the_field():
    with pytest.raises(StyleError, match="scroll_speed"):
        OverlayStyle(scroll_speed=0)
    with pytest.raises(StyleError, match="#12345"):
        OverlayStyle(text_color="#12345")


def test_snapshot_clock_runs_only_while_synced():
    snap = GameSnapshot(status="synced", game_time=10.0, wall_time=100.0)
    assert snap.time_at(100.5) == pytest.approx(10.5)
    assert GameSnapshot(status="paused", game_time=10.0, wall_time=100.0).time_at(105) == 10.0
    with pytest.raises(ValueError, match="status"):
        GameSnapshot(status="dancing")


def test_real_window_title_keys_and_frames(xvfb):
    """run_overlay with a live StateBox: the window is titled LoopJam, borderless and kept above,
    real X key presses (XTEST) reach the key queue as lane events, and the frames show the notes
    moving."""
    from Xlib import X, XK, display as xdisplay
    from Xlib.ext import xtest

    from companion.overlay.window import OverlayControl, run_overlay

    track = chart_track()
    box = StateBox(GameSnapshot(status="synced", game_time=1.0, wall_time=time.monotonic(),
                                track=track, lanes=LANES, title="Live"))
    keys = queue.SimpleQueue()
    control = OverlayControl()
    seen = {}

    def drive():
        try:
            look()
        finally:
            control.stop.set()   # whatever happened, let run_overlay return

    def look():
        d = xdisplay.Display()
        deadline = time.monotonic() + 10
        window = None
        while window is None and time.monotonic() < deadline:
            for w in d.screen().root.query_tree().children:
                for c in [w] + list(w.query_tree().children):
                    if c.get_wm_name() == "LoopJam":   # not "LoopJam (offscreen)"
                        window = w
            time.sleep(0.05)
        seen["title"] = window.get_wm_name() if window else None
        if window is not None:
            geo = window.get_geometry()
            state = window.get_full_property(d.intern_atom("_NET_WM_STATE"), X.AnyPropertyType)
            seen["above"] = d.intern_atom("_NET_WM_STATE_ABOVE") in list(state.value)
            hints = window.get_full_property(d.intern_atom("_MOTIF_WM_HINTS"), X.AnyPropertyType)
            seen["borderless"] = hints is not None and hints.value[2] == 0  # no decorations
            # Focus the view pyglet reads keys from, once the window is on screen.
            view = (window.query_tree().children or [window])[0]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if window.get_attributes().map_state == X.IsViewable:
                    xtest.fake_input(d, X.MotionNotify, x=geo.x + 50, y=geo.y + 50)
                    view.set_input_focus(X.RevertToParent, X.CurrentTime)
                    d.sync()
                    if d.get_input_focus().focus.id == view.id:
                        break
                time.sleep(0.05)
            time.sleep(0.2)
            for name in ("d", "j"):
                code = d.keysym_to_keycode(XK.string_to_keysym(name))
                xtest.fake_input(d, X.KeyPress, code)
                d.sync()
                time.sleep(0.05)
                xtest.fake_input(d, X.KeyRelease, code)
                d.sync()
            time.sleep(0.2)
            from Xlib.ext import shape
            rects = window.shape_get_rectangles(shape.SK.Input).rectangles
            seen["takes_mouse"] = any(r.width >= geo.width and r.height >= geo.height
                                      for r in rects)

            def grab():
                raw = window.get_image(0, 0, geo.width, geo.height, X.ZPixmap, 0xFFFFFFFF).data
                return np.frombuffer(raw, np.uint8).reshape(geo.height, geo.width, -1)

            deadline = time.monotonic() + 5   # the first frame may take a while on llvmpipe
            first = grab()
            while not first.any() and time.monotonic() < deadline:
                time.sleep(0.05)
                first = grab()
            time.sleep(0.25)                  # a frame 0.25 s later: the notes moved
            seen["frames"] = [first, grab()]

    thread = threading.Thread(target=drive)
    thread.start()
    run_overlay(box.get, STYLE, keys, control=control)
    thread.join(5)
    assert seen["title"] and "LoopJam" in seen["title"]
    assert seen["above"] and seen["borderless"], seen
    assert seen["takes_mouse"], seen   # not click-through: the keyboard player needs the focus
    events = []
    while not keys.empty():
        events.append(keys.get())
    assert [(e.lane, e.pressed) for e in events] == [(0, True), (0, False), (3, True), (3, False)]
    assert all(a.wall_time <= b.wall_time for a, b in zip(events, events[1:]))
    first, second = seen["frames"]
    highway = slice(STYLE.hud_height + 10, STYLE.height - STYLE.hit_line - 20)
    assert first[highway].max() > 0                     # something drawn
    assert np.any(first[highway] != second[highway])    # and it moves with the game clock


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_tap_test_measures_a_known_delay(xvfb, kind, monkeypatch):
    """Real X key presses (XTEST) 35 ms after each flash / click (null audio sink): the tap
    test window measures 35 ms."""
    from Xlib import X, XK, display as xdisplay
    from Xlib.ext import xtest

    from companion.overlay.tap_test import WINDOW_TITLE, run_tap_test
    monkeypatch.setenv("LOOPJAM_AUDIO", "null")
    d = xdisplay.Display()
    code = d.keysym_to_keycode(XK.string_to_keysym("space"))
    beats = {}

    def tapper():
        deadline = time.monotonic() + 10
        while "t" not in beats and time.monotonic() < deadline:
            time.sleep(0.01)
        root = d.screen().root
        for w in root.query_tree().children:            # focus the calibration window
            if (w.get_wm_name() or "") == WINDOW_TITLE:
                w.set_input_focus(X.RevertToParent, X.CurrentTime)
        d.sync()
        for t in beats["t"]:
            delay = t + 0.035 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            xtest.fake_input(d, X.KeyPress, code)
            xtest.fake_input(d, X.KeyRelease, code)
            d.sync()

    thread = threading.Thread(target=tapper)
    thread.start()
    result = run_tap_test(kind=kind, bpm=300, beats=12, sink="null" if kind == "audio" else None,
                          on_beats=lambda t: beats.setdefault("t", t))
    thread.join(10)
    d.close()
    assert result.calibration is not None, result.error
    assert result.calibration.used >= 9
    # Key events are stamped when the window's loop dispatches them, which can be up to a frame
    # (a few ms, more on a busy machine with llvmpipe) late; they are never early.
    assert 35 - 6 <= result.calibration.offset_ms <= 35 + 20


class _SettlingSink:
    """A sink that states the buffer it was asked for (4096 frames) until it plays, then the
    960 it really queues, as PulseAudio's measured latency replaces the requested one."""

    sr, channels = 48000, 1

    def __init__(self):
        self.latency_samples = 4096

    def write(self, frames):
        self.latency_samples = 960

    def close(self):
        pass


def test_the_click_track_is_timed_with_the_latency_the_device_states_once_it_plays(xvfb):
    # The live clock takes the sink's latency as it plays; the tap test must take the same
    # figure, or the difference would land in offsets.audio_ms and count twice in play.
    from companion.overlay.tap_test import ClickPlayer

    player = ClickPlayer(_SettlingSink(), np.zeros(24_000, np.float32))
    player.run()
    assert player.latency_s == 960 / 48000
    assert abs(player.start_heard - player.t0) < 0.005   # paced by what it states


def test_overlay_settings_from_config(xvfb):
    from companion.config import Config
    from companion.overlay.window import overlay_settings
    cfg = Config().with_value("offsets.video_ms", "14").with_value("overlay.opacity", "0.5")
    settings = overlay_settings(cfg, player="keyboard")
    assert settings["style"].opacity == 0.5 and settings["video_offset_ms"] == 14
    assert settings["click_through"] is False and settings["keys"] is None
    assert overlay_settings(cfg, player="autoplay")["click_through"] is True
    cfg = cfg.with_value("overlay.click_through", "yes").with_value("game.keys", "q,w,e,r,t")
    settings = overlay_settings(cfg, player="keyboard")
    assert settings["click_through"] is True and settings["keys"] == ("q", "w", "e", "r", "t")
