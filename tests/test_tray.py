"""The tray under Xvfb (pystray's xorg backend): its real Menu items drive the engine controller.

The controller is the tray's real :class:`PlayController`. The first test runs it with a
stand-in for ``loopjam play`` that speaks the CLI contract (``identified``/``sync`` events, an
``end`` event on SIGTERM) so every menu item is checked quickly; the second runs the real
``loopjam play`` (a file source, no overlay) through start, pause and quit.
"""
import gc
import importlib.util
import json
import logging
import sys
import threading
import time

import pytest

from companion.config import load_config
from companion.tray import NoFolderDialog, PlayController, Tray, TrayStatus, choose_folder

pytestmark = pytest.mark.xvfb

STAND_IN = r"""
import json, signal, sys, time
argv = sys.argv[1:]
log = open(argv[argv.index("--log") + 1], "a")
def emit(obj):
    log.write(json.dumps(obj) + "\n"); log.flush()
def stop(*_):
    emit({"event": "end", "score": 0, "accuracy": 1.0, "hits": 0, "misses": 0}); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
emit({"event": "args", "argv": argv})
emit({"event": "identified", "chart_id": "c0ffee", "offset_s": 1.5, "after_s": 2.0,
      "title": "Test Song", "source": "imported-human"})
t = 0.0
while True:
    emit({"event": "sync", "stream_s": t, "chart_s": t + 1.5}); t += 0.1; time.sleep(0.1)
"""


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def log_events(controller):
    return [json.loads(line) for line in controller.log_path.read_text().splitlines() if line]


@pytest.fixture
def pystray_xorg(xvfb, monkeypatch, caplog):
    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    # Xvfb has no system tray, so pystray logs "Failed to dock icon" with a traceback each
    # time it shows the icon; captured, those tracebacks would keep the icon (and its X
    # connection) alive past the X server.
    caplog.set_level(logging.CRITICAL, logger="pystray")
    import pystray
    assert pystray.Icon.__module__ == "pystray._xorg"
    return pystray


def find(menu, text):
    for item in menu.items:
        if item.text == text:
            return item
    raise AssertionError(f"no menu item {text!r} in {[i.text for i in menu.items]}")


def test_menu_drives_the_engine(pystray_xorg, tmp_path, loopjam_home):
    controller = PlayController(load_config(), command=[sys.executable, "-c", STAND_IN],
                                log_path=tmp_path / "play.jsonl")
    opened, spawned = [], []
    tray = Tray(controller, open_file=opened.append, spawn=spawned.append,
                ask_folder=lambda title: str(tmp_path / "music"))
    icon = tray.build_icon()
    shown = threading.Event()

    def setup(icon):
        icon.visible = True
        shown.set()

    loop = threading.Thread(target=icon.run, args=(setup,), daemon=True)
    loop.start()
    try:
        assert shown.wait(10)
        menu = icon.menu
        status = menu.items[0]
        assert status.text == "Stopped" and not status.enabled

        # Start: the engine process runs with the config's settings; the status line follows.
        find(menu, "Start")(icon)
        assert controller.running
        assert wait_for(lambda: controller.status().sync == "synced")
        assert status.text == "Test Song (imported-human) - synced"
        argv = log_events(controller)[0]["argv"]
        assert argv[argv.index("--difficulty") + 1] == "expert"
        assert argv[argv.index("--player") + 1] == "keyboard"

        # Pause: the engine is stopped cleanly (SIGTERM → its end event).
        process = controller.process
        find(menu, "Pause")(icon)
        assert process.poll() == 0 and not controller.running
        assert log_events(controller)[-1]["event"] == "end"
        assert controller.status() == TrayStatus(paused=True) and status.text == "Paused"

        # Difficulty and lanes: radio items change and save the config.
        difficulty = find(menu, "Difficulty").submenu
        find(difficulty, "Hard")(icon)
        assert find(difficulty, "Hard").checked and not find(difficulty, "Expert").checked
        find(find(menu, "Lanes").submenu, "6")(icon)
        saved = load_config()
        assert (saved.game.difficulty, saved.game.lanes) == ("hard", 6)

        # Start again with the new settings; hiding the overlay restarts with --no-overlay.
        find(menu, "Start")(icon)
        assert wait_for(lambda: log_events(controller))
        argv = log_events(controller)[0]["argv"]
        assert argv[argv.index("--difficulty") + 1] == "hard"
        assert argv[argv.index("--lanes") + 1] == "6"   # the engine plays on 6 lanes at most
        find(menu, "Show overlay")(icon)
        assert not find(menu, "Show overlay").checked
        assert wait_for(lambda: log_events(controller))
        argv = log_events(controller)[0]["argv"]
        assert "--no-overlay" in argv
        assert argv[argv.index("--player") + 1] == "autoplay"  # no window: nothing removed

        # The other items.
        find(menu, "Open store folder")(icon)
        find(menu, "Settings")(icon)
        assert opened == [loopjam_home, loopjam_home / "config.toml"]
        assert (loopjam_home / "config.toml").exists()
        find(menu, "Analyze files...")(icon)
        find(menu, "Import song folders...")(icon)
        find(menu, "Calibrate...")(icon)
        assert spawned[0][-2:] == ["analyze", str(tmp_path / "music")]
        assert spawned[1][-2:] == ["import", str(tmp_path / "music")]
        assert spawned[2][-1] == "calibrate"

        # Quit: engine stopped, icon loop ended.
        process = controller.process
        find(menu, "Quit")(icon)
        assert process.poll() == 0 and not controller.running
        # The icon's loop thread ends (stop_icon flushes the window's destruction).
        assert not icon._running
        loop.join(5)
        assert not loop.is_alive()
    finally:
        controller.stop()
        if icon._running:
            icon.stop()
        # Let pystray close its X connection now, while the X server still runs.
        tray.icon = icon = None
        gc.collect()


def test_the_status_line_follows_the_log_and_waits_for_a_line_to_end(tmp_path, loopjam_home):
    controller = PlayController(load_config(), log_path=tmp_path / "play.jsonl", save=False,
                                command=[sys.executable, "-c", "import time; time.sleep(60)"])
    controller.start()
    try:
        with open(controller.log_path, "a") as log:
            def emit(text):
                log.write(text)
                log.flush()

            emit(json.dumps({"event": "identified", "chart_id": "c0ffee", "title": "One",
                             "artist": "A", "source": "analyzed"}) + "\n")
            emit(json.dumps({"event": "sync", "status": "locked"}) + "\n")
            assert controller.status() == TrayStatus(running=True, song="A - One",
                                                     chart_source="analyzed", sync="synced")
            line = json.dumps({"event": "identified", "chart_id": "beef", "title": "Two",
                               "source": "recorded-live"}) + "\n"
            emit(line[:20])
            assert controller.status().song == "A - One"   # half a line is not an event yet
            emit(line[20:])
            assert controller.status() == TrayStatus(running=True, song="Two",
                                                     chart_source="recorded-live", sync="syncing")
            emit(json.dumps({"event": "identified", "chart_id": "f00d", "title": "Three",
                             "source": "imported-human", "charter": "Someone"}) + "\n")
            assert controller.status().line == (
                "Three (imported-human, charted by Someone) - syncing")
    finally:
        controller.stop()


def test_a_folder_is_asked_for_never_guessed(tmp_path, monkeypatch, capsys):
    # Without Tk, GNOME's zenity (here a stand-in on PATH) asks; cancelling it is no folder.
    monkeypatch.setitem(sys.modules, "tkinter", None)          # import tkinter fails
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    zenity = bin_dir / "zenity"
    zenity.write_text(f"#!/bin/sh\n[ \"$4\" = 'Pick one' ] && echo {tmp_path}/music\n")
    zenity.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert choose_folder("Pick one") == f"{tmp_path}/music"
    assert choose_folder("cancelled") is None
    # With no dialog at all the tray says what to run instead, and starts nothing.
    zenity.unlink()
    with pytest.raises(NoFolderDialog, match="no folder dialog"):
        choose_folder("Pick one")
    # Tk installed but no display to open it on (its TclError is no RuntimeError).
    monkeypatch.delitem(sys.modules, "tkinter")
    monkeypatch.delenv("DISPLAY", raising=False)
    if importlib.util.find_spec("tkinter") is not None:
        with pytest.raises(NoFolderDialog, match="no folder dialog"):
            choose_folder("Pick one")
    spawned = []
    tray = Tray(PlayController(load_config(), save=False), spawn=spawned.append)
    tray.analyze()
    tray.import_songs()
    assert spawned == []
    err = capsys.readouterr().err
    assert "run 'loopjam analyze FOLDER'" in err and "run 'loopjam import FOLDER'" in err


def test_tray_runs_the_real_live_engine(pystray_xorg, tmp_path, loopjam_home):
    import soundfile

    from companion.game.calibration import click_track
    y, _ = click_track(sr=44100, bpm=120, beats=40)
    soundfile.write(tmp_path / "clicks.wav", y, 44100)
    config = (load_config().with_value("audio.source", str(tmp_path / "clicks.wav"))
              .with_value("game.player", "autoplay"))
    controller = PlayController(config, log_path=tmp_path / "play.jsonl", save=False)
    controller.overlay_visible = False
    tray = Tray(controller)
    menu = tray.menu()
    try:
        find(menu, "Start")(None)
        assert wait_for(lambda: any(e["event"] == "sound" for e in log_events(controller)), 30)
        assert menu.items[0].text.startswith("no song yet")
        process = controller.process
        find(menu, "Pause")(None)
        assert process.poll() == 0
        end = log_events(controller)[-1]
        assert end["event"] == "end" and end["reason"] == "signal SIGTERM"
        assert menu.items[0].text == "Paused"
        find(menu, "Start")(None)
        assert controller.running
        assert wait_for(lambda: any(e["event"] == "sound" for e in log_events(controller)), 30)
        process = controller.process
        find(menu, "Quit")(None)
        assert process.poll() == 0 and not controller.running
    finally:
        controller.stop()


def test_tray_run_starts_the_engine_and_returns_on_quit(pystray_xorg, tmp_path):
    """`loopjam tray`'s loop: the engine starts with the icon, and Quit ends run()."""
    controller = PlayController(load_config(), command=[sys.executable, "-c", STAND_IN],
                                log_path=tmp_path / "play.jsonl", save=False)
    tray = Tray(controller)
    started = {}

    def quit_when_started():
        started["ok"] = wait_for(lambda: controller.running and log_events(controller))
        tray.quit()

    threading.Thread(target=quit_when_started, daemon=True).start()
    begin = time.monotonic()
    tray.run(autostart=True)
    assert started["ok"] and not controller.running
    assert log_events(controller)[-1]["event"] == "end"   # stopped cleanly
    assert time.monotonic() - begin < 15


def test_a_signal_quits_the_tray_and_stops_its_engine(pystray_xorg, tmp_path):
    """SIGTERM (a session ending) or Ctrl-C is Quit: the engine was left running on its own,
    its overlay open and its capture going."""
    import os
    import signal

    controller = PlayController(load_config(), command=[sys.executable, "-c", STAND_IN],
                                log_path=tmp_path / "play.jsonl", save=False)
    tray = Tray(controller)

    def terminate_when_started():
        if wait_for(lambda: controller.running and log_events(controller)):
            os.kill(os.getpid(), signal.SIGTERM)   # handled by the tray's run: it quits

    threading.Thread(target=terminate_when_started, daemon=True).start()
    previous = signal.getsignal(signal.SIGTERM)
    tray.run(autostart=True)
    assert not controller.running and log_events(controller)[-1]["event"] == "end"
    assert signal.getsignal(signal.SIGTERM) is previous     # the handler was the tray's alone
