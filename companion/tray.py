"""The tray companion (``loopjam`` with no arguments): a pystray icon that runs the live engine.

The icon's menu shows a status line (song, chart source, sync state) and offers start/pause,
difficulty, lanes, show/hide overlay, calibrate, analyze files..., import song folders...,
open the store folder, settings and quit.

The live engine runs as a ``loopjam play`` child process (:class:`PlayController`) started with
the user's devices, player and difficulty from the config (the engine itself reads the local
store, and the remote store when ``store.remote_url`` is set); the tray reads the JSON-lines log
the command writes (the CLI contract's ``identified``/``sync``/``end`` events) for its status
line. A separate process keeps the tray responsive whatever the engine does and makes "pause"
a clean stop (routing restored, log flushed). pystray is imported only when the icon is built:
its X11 backend connects to the display on import.
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chart_store.chart import DIFFICULTIES, MAX_LANES, MIN_LANES, song_name
from companion.config import Config, load_config, save_config

__all__ = ["TrayStatus", "PlayController", "Tray", "NoFolderDialog", "choose_folder",
           "icon_image", "open_path", "run_tray", "stop_icon"]

#: Seconds without a ``sync`` event after which the status says "listening" again.
SYNC_STALE_S = 2.0


@dataclass(frozen=True)
class TrayStatus:
    """What the status line says."""

    running: bool = False
    paused: bool = False
    song: str = ""
    chart_source: str = ""
    sync: str = "stopped"      # stopped | listening | syncing | synced | paused | ended

    @property
    def line(self) -> str:
        if not self.running:
            return "Paused" if self.paused else "Stopped"
        song = self.song or "no song yet"
        source = f" ({self.chart_source})" if self.chart_source else ""
        return f"{song}{source} - {self.sync}"


class PlayController:
    """Starts, pauses and stops the live engine (a ``loopjam play`` child process).

    Parameters
    ----------
    config : Config
        Devices, player, difficulty come from here; :meth:`set_difficulty` and friends update
        and save it.
    command : list of str, optional
        The program to run instead of ``python -m companion play`` (its options are appended).
    log_path : path, optional
        Where the child writes its event log (default: a temporary file).
    save : bool
        Save setting changes to the config file.
    """

    def __init__(self, config: Config, *, command: list[str] | None = None,
                 log_path: str | Path | None = None, save: bool = True):
        self.config = config
        self.base_command = command or [sys.executable, "-m", "companion", "play"]
        self.log_path = Path(log_path) if log_path else Path(
            tempfile.gettempdir()) / f"loopjam-tray-{os.getpid()}.jsonl"
        self.save = save
        self.overlay_visible = True
        self.process: subprocess.Popen | None = None
        self.paused = False
        self._lock = threading.Lock()
        self._log_offset = 0   # bytes of the log read into _log_state
        self._log_state = ("", "", "listening")   # song, chart source, sync

    def command(self) -> list[str]:
        """The full command line the engine runs with."""
        audio, game = self.config.audio, self.config.game
        player = game.player
        if not self.overlay_visible and player == "keyboard":
            # Nobody can play without the window: let every note sound (nothing removed).
            player = "autoplay"
        argv = [*self.base_command, "--source", audio.source, "--player", player,
                "--difficulty", game.difficulty, "--lanes", str(game.lanes),
                "--log", str(self.log_path)]
        if audio.sink:
            argv += ["--sink", audio.sink]
        if self.config.store.remote_url:
            argv += ["--remote", self.config.store.remote_url]
        if not self.overlay_visible:
            argv.append("--no-overlay")
        return argv

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("")
            self._log_offset, self._log_state = 0, ("", "", "listening")
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)
            self.paused = False

    def stop(self, *, paused: bool = False) -> None:
        """Stop the engine cleanly (SIGTERM: log flushed, routing restored); kill after 5 s."""
        with self._lock:
            process, self.process = self.process, None
            self.paused = paused
            if process is None or process.poll() is not None:
                return
            process.send_signal(signal.SIGTERM if hasattr(signal, "SIGTERM") else signal.SIGINT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def pause(self) -> None:
        self.stop(paused=True)

    def toggle(self) -> None:
        if self.running:
            self.pause()
        else:
            self.start()

    def _restart_if_running(self) -> None:
        if self.running:
            self.stop()
            self.start()

    def _set(self, key: str, value) -> None:
        self.config = self.config.with_value(key, value)
        if self.save:
            save_config(self.config)

    def set_difficulty(self, difficulty: str) -> None:
        self._set("game.difficulty", difficulty)
        self._restart_if_running()

    def set_lanes(self, lanes: int) -> None:
        self._set("game.lanes", lanes)
        self._restart_if_running()

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_visible = visible
        self._restart_if_running()

    def status(self) -> TrayStatus:
        """The status from the engine's log: the song, where its chart came from, sync state.

        Reads only what the log gained since the last call (the tray asks every second, and
        the log gains a line every quarter of a second and one a note)."""
        if not self.running:
            return TrayStatus(paused=self.paused)
        self._read_log()
        song, source, sync = self._log_state
        if sync not in ("ended", "listening"):
            age = time.time() - self.log_path.stat().st_mtime
            if age > SYNC_STALE_S:  # the engine went quiet: no music, or it is stuck
                sync = "listening"
        return TrayStatus(running=True, song=song, chart_source=source, sync=sync)

    def _read_log(self) -> None:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                data = log.read()
        except OSError:
            return
        complete = data[:data.rfind(b"\n") + 1]  # a line being written waits for its end
        self._log_offset += len(complete)
        for line in complete.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._log_state = _next_state(self._log_state, event)


def _next_state(state: tuple[str, str, str], event: dict) -> tuple[str, str, str]:
    """(song, chart source, sync) after one event of the ``loopjam play`` log."""
    song, source, sync = state
    kind = event.get("event")
    if kind == "identified":
        song = (song_name(event.get("artist", ""), event.get("title", ""))
                or event.get("chart_id", "")[:12])
        source, charter = event.get("source", ""), event.get("charter")
        return song, f"{source}, charted by {charter}" if charter else source, "syncing"
    if kind == "recording":
        return "unknown song", "recording to build a chart", "listening"
    if kind == "lost":
        return "", "", "listening"
    if kind == "sync":
        status = event.get("status", "locked")
        return song, source, {"locked": "synced", "searching": "syncing"}.get(status, status)
    if kind == "end":
        return song, source, "ended"
    return state


def open_path(path: str | Path) -> None:
    """Open a file or folder with the desktop's default application."""
    path = str(path)
    if sys.platform.startswith("win"):
        os.startfile(path)  # noqa: S606 - the documented way on Windows
    else:
        subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class NoFolderDialog(RuntimeError):
    """No way to ask for a folder here (no Tk, zenity or kdialog)."""


#: Folder pickers tried after Tk: GNOME's and KDE's, as desktops ship them.
FOLDER_DIALOGS = (("zenity", "--file-selection", "--directory", "--title"),
                  ("kdialog", "--getexistingdirectory", ".", "--title"))


def choose_folder(title: str) -> str | None:
    """Ask for a folder (Tk's dialog, else zenity or kdialog), titled ``title``; None when the
    user cancels. Raises :class:`NoFolderDialog` when none can be shown: guessing a folder
    would start a long job on one the user never chose."""
    try:
        import tkinter
        from tkinter import filedialog
    except ImportError as error:  # Python built without Tk (Debian: python3-tk)
        why = f"Tk: {error}"
    else:
        try:
            root = tkinter.Tk()
        except tkinter.TclError as error:  # no display for it
            why = f"Tk: {error}"
        else:
            root.withdraw()
            try:
                return filedialog.askdirectory(title=title) or None
            finally:
                root.destroy()
    for *argv, title_flag in FOLDER_DIALOGS:
        if shutil.which(argv[0]):
            done = subprocess.run([*argv, title_flag, title], capture_output=True, text=True,
                                  cwd=Path.home())
            return done.stdout.strip() or None   # cancelled: exit status 1, nothing printed
    raise NoFolderDialog(f"no folder dialog ({why}; no zenity or kdialog either)")


def stop_icon(icon) -> None:
    """Stop a pystray icon so that its loop really ends.

    pystray's X11 backend destroys its window from its loop thread and waits for the
    DestroyNotify, but python-xlib's flush from one thread while another blocks reading the
    same connection can leave the destroy request in the send buffer: the loop then waits
    forever and the icon (with its X connection) outlives the tray. A round trip on the
    connection sends whatever is buffered.
    """
    icon.stop()
    display = getattr(icon, "_display", None)   # the X11 backend's connection
    if display is not None:
        try:
            display.sync()
        except Exception:  # the connection is already gone: nothing left to flush
            pass


def icon_image(size: int = 64):
    """The tray icon: three falling notes over a hit line (PIL RGBA image)."""
    from PIL import Image, ImageDraw
    from companion.overlay.style import DEFAULT_LANE_COLORS
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 6, fill=(16, 16, 24, 255))
    lane = size / 4
    for i, (top, color) in enumerate(zip((0.18, 0.42, 0.28), DEFAULT_LANE_COLORS)):
        x0 = lane * (i + 0.5) + 2
        draw.rectangle((x0, size * top, x0 + lane - 4, size * top + size / 8), fill=color)
    draw.rectangle((size * 0.1, size * 0.78, size * 0.9, size * 0.82), fill=(255, 255, 255, 255))
    return image


class Tray:
    """The tray icon and its menu, driving a controller (:class:`PlayController`).

    ``open_file`` opens folders and files (default :func:`open_path`); ``spawn`` starts helper
    commands such as ``loopjam analyze`` (default: a detached ``subprocess.Popen``).
    """

    def __init__(self, controller: PlayController, *,
                 open_file: Callable[[Path], None] = open_path,
                 spawn: Callable[[list[str]], object] | None = None,
                 ask_folder: Callable[[str], str | None] = choose_folder):
        self.controller = controller
        self.open_file = open_file
        self.spawn = spawn or (lambda argv: subprocess.Popen(argv, stdin=subprocess.DEVNULL))
        self.ask_folder = ask_folder
        self.icon = None
        self._quit = threading.Event()   # Quit chosen: stop refreshing the menu
        self._done = threading.Event()   # engine and icon stopped

    # -- actions (each takes pystray's (icon, item) and ignores them) ---------------------------
    def toggle(self, icon=None, item=None) -> None:
        self.controller.toggle()
        self._refresh()

    def difficulty_action(self, name: str):
        def action(icon=None, item=None):
            self.controller.set_difficulty(name)
            self._refresh()
        return action

    def lanes_action(self, lanes: int):
        def action(icon=None, item=None):
            self.controller.set_lanes(lanes)
            self._refresh()
        return action

    def toggle_overlay(self, icon=None, item=None) -> None:
        self.controller.set_overlay_visible(not self.controller.overlay_visible)
        self._refresh()

    def calibrate(self, icon=None, item=None) -> None:
        self.spawn([sys.executable, "-m", "companion", "calibrate"])

    def analyze(self, icon=None, item=None) -> None:
        self._on_folder("LoopJam: analyze a music folder", "analyze")

    def import_songs(self, icon=None, item=None) -> None:
        # 'loopjam analyze' leaves a Clone Hero / Frets on Fire song folder to 'loopjam import'.
        self._on_folder("LoopJam: import Clone Hero / Frets on Fire songs", "import")

    def _on_folder(self, title: str, command: str) -> None:
        """Run ``loopjam COMMAND FOLDER`` in the background on the folder the user picks."""
        try:
            folder = self.ask_folder(title)
        except NoFolderDialog as error:
            self.tell(f"{error}: run 'loopjam {command} FOLDER' in a terminal")
            return
        if folder:
            self.spawn([sys.executable, "-m", "companion", command, folder])

    def tell(self, message: str) -> None:
        """A message for the user: a desktop notification where the icon can show one, else
        standard error (the terminal, or the session's log)."""
        if self.icon is not None and self.icon.HAS_NOTIFICATION:
            self.icon.notify(message, "LoopJam")
        else:
            print(f"loopjam: {message}", file=sys.stderr)

    def open_store(self, icon=None, item=None) -> None:
        from chart_store.home import loopjam_home
        home = loopjam_home()
        home.mkdir(parents=True, exist_ok=True)
        self.open_file(home)

    def settings(self, icon=None, item=None) -> None:
        from companion.config import config_path
        path = config_path()
        if not path.exists():
            save_config(self.controller.config, path)
        self.open_file(path)

    def quit(self, icon=None, item=None) -> None:
        self._quit.set()
        self.controller.stop()
        if self.icon is not None:
            stop_icon(self.icon)
        self._done.set()

    def _refresh(self) -> None:
        if self.icon is not None:
            self.icon.update_menu()

    # -- menu -------------------------------------------------------------------------------
    def menu(self):
        """The pystray Menu (built on demand: pystray connects to the display on import)."""
        from pystray import Menu, MenuItem as Item
        c = self.controller
        return Menu(
            Item(lambda item: c.status().line, None, enabled=False),
            Menu.SEPARATOR,
            Item(lambda item: "Pause" if c.running else "Start", self.toggle, default=True),
            Item("Difficulty", Menu(*[
                Item(d.capitalize(), self.difficulty_action(d), radio=True,
                     checked=lambda item, d=d: c.config.game.difficulty == d)
                for d in DIFFICULTIES])),
            Item("Lanes", Menu(*[
                Item(str(n), self.lanes_action(n), radio=True,
                     checked=lambda item, n=n: c.config.game.lanes == n)
                for n in range(MIN_LANES, MAX_LANES + 1)])),
            Item("Show overlay", self.toggle_overlay, checked=lambda item: c.overlay_visible),
            Menu.SEPARATOR,
            Item("Calibrate...", self.calibrate),
            Item("Analyze files...", self.analyze),
            Item("Import song folders...", self.import_songs),
            Item("Open store folder", self.open_store),
            Item("Settings", self.settings),
            Menu.SEPARATOR,
            Item("Quit", self.quit),
        )

    def build_icon(self):
        import pystray
        self.icon = pystray.Icon("loopjam", icon_image(), "LoopJam", menu=self.menu())
        return self.icon

    def run(self, *, autostart: bool = True) -> None:
        """Show the icon and block until Quit (starts the engine first when ``autostart``)."""
        icon = self.build_icon()

        def setup(icon):
            icon.visible = True
            if autostart:
                self.toggle()
            while not self._quit.wait(1.0):  # keep the status line fresh
                self._refresh()

        # Ctrl-C or a session's SIGTERM is Quit: the engine is stopped cleanly (its end
        # event, the audio routing restored), not left running without its tray.
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = ({s: signal.signal(s, lambda *_: self.quit()) for s in stops}
                    if threading.current_thread() is threading.main_thread() else {})
        try:
            if sys.platform.startswith("linux"):
                # The X11 backend's loop runs in a thread so that Quit returns here even if the
                # loop outlives stop_icon's nudge (daemon: it never holds the process open).
                loop = threading.Thread(target=icon.run, args=(setup,), name="loopjam-tray",
                                        daemon=True)
                loop.start()
                while not self._done.wait(0.5):  # timed: signal handlers run in between
                    pass
                loop.join(2.0)
            else:  # macOS and Windows want the icon's loop on the main thread
                icon.run(setup)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        # pystray's X11 icon sits in reference cycles (its methods rebound to itself), so only
        # the cyclic collector frees it and closes its X connection: let that happen now,
        # while the display is there, not at exit after the X server may be gone.
        self.icon = icon = None
        gc.collect()


def run_tray(*, config: Config | None = None, autostart: bool = True) -> None:
    """``loopjam tray``: the icon with a :class:`PlayController` from the user's config."""
    Tray(PlayController(config or load_config())).run(autostart=autostart)
