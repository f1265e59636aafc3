"""Linux routing with ``pactl`` (PulseAudio, and PipeWire through pipewire-pulse).

:meth:`PulseRouter.setup` creates the ``LoopJam`` null sink, makes it the default output (so
players send their audio there), moves the streams already playing to it, and loads a loopback
from its monitor to the previous default output, so audio still reaches the speakers while the
companion is not running. While ``loopjam play`` runs, :meth:`PulseRouter.companion_running`
unloads that loopback (the companion plays the processed audio to the previous default instead)
and loads it back when play stops, by any means short of SIGKILL; :meth:`PulseRouter.repair`
(run by every set-up and play) fixes what a SIGKILL left. :meth:`PulseRouter.remove` restores
everything. What was changed is kept in ``LOOPJAM_HOME/routing.json``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from companion.audio.base import STREAM_SR, DeviceInfo, match_device
from companion.routing import NoSoundServer, RoutingError

__all__ = ["PulseRouter", "RoutingState", "SINK_NAME"]

SINK_NAME = "LoopJam"
LOOPBACK_LATENCY_MS = 30


@dataclass
class RoutingState:
    """What set-up changed: the sink and loopback modules, the default output before, and the
    streams moved (sink-input index -> the sink it came from)."""

    sink: str
    sink_module: int
    previous_default: str
    loopback_module: int | None = None
    moved: dict[str, str] = field(default_factory=dict)


class PulseRouter:
    """Routing on a PulseAudio-compatible server.

    Parameters
    ----------
    state_path : Path, optional
        Where the state is kept (default ``LOOPJAM_HOME/routing.json``).
    """

    def __init__(self, *, state_path: Path | None = None):
        if state_path is None:
            from chart_store.home import loopjam_home
            state_path = loopjam_home() / "routing.json"
        self.state_path = Path(state_path)

    # -- pactl --------------------------------------------------------------------------------
    def _pactl(self, *args: str) -> str:
        if shutil.which("pactl") is None:
            raise RoutingError("pactl is not installed (Debian/Ubuntu: apt install "
                               "pulseaudio-utils; it also drives PipeWire)")
        try:
            out = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=15)
        except subprocess.TimeoutExpired:
            raise RoutingError(f"pactl {' '.join(args)}: the sound server did not answer"
                               ) from None
        if out.returncode != 0:
            if "Connection" in out.stderr and ("refused" in out.stderr or "failure" in out.stderr):
                raise NoSoundServer("no sound server (PulseAudio or PipeWire) is running for "
                                    "this user: start it (or log in to a desktop session) first")
            raise RoutingError(f"pactl {' '.join(args)}: {out.stderr.strip() or 'failed'}")
        return out.stdout

    def _json(self, *what: str) -> list[dict]:
        return json.loads(self._pactl("--format=json", "list", *what) or "[]")

    def sinks(self) -> list[DeviceInfo]:
        default = self.default_sink()
        return [DeviceInfo(s["name"], s.get("description") or s["name"], "output", "pulse",
                           is_default=s["name"] == default) for s in self._json("sinks")]

    def default_sink(self) -> str:
        return self._pactl("get-default-sink").strip()

    def _modules(self) -> set[int]:
        # pactl 16's JSON module list has no index: use the short listing (index<TAB>name...).
        return {int(line.split("\t", 1)[0])
                for line in self._pactl("list", "short", "modules").splitlines() if line.strip()}

    def streams(self) -> list[DeviceInfo]:
        """Applications' playing streams (sink inputs; loopbacks left out): id = index, name =
        application name, ``backend`` = the name of the sink they play to."""
        names = {int(s["index"]): s["name"] for s in self._json("sinks")}
        out = []
        for stream in self._json("sink-inputs"):
            if "loopback" in str(stream.get("driver", "")):  # ours (or another loopback)
                continue
            props = stream.get("properties", {})
            label = props.get("application.name") or props.get("media.name") or "?"
            out.append(DeviceInfo(str(stream["index"]), label, "stream",
                                  names.get(int(stream["sink"]), "")))
        return out

    # -- state --------------------------------------------------------------------------------
    def state(self) -> RoutingState | None:
        """The recorded set-up, or None when LoopJam's routing is not set up."""
        try:
            return RoutingState(**json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:
            raise RoutingError(f"{self.state_path} is damaged ({error}); delete it and run "
                               "`loopjam setup-audio` again") from None

    def _save(self, state: RoutingState) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=1))
        os.replace(tmp, self.state_path)

    # -- set-up and undo ----------------------------------------------------------------------
    def setup(self, *, move_streams: bool = True) -> RoutingState:
        """Create the LoopJam sink (idempotent), make it the default, move playing streams."""
        state = self.repair()
        if state is None:
            previous = self.default_sink()
            if previous == SINK_NAME:  # a LoopJam sink not ours (state lost): pick a real one
                others = [s.id for s in self.sinks() if s.id != SINK_NAME]
                if not others:
                    raise RoutingError("no output device besides LoopJam to play to")
                previous = others[0]
            module = int(self._pactl("load-module", "module-null-sink", f"sink_name={SINK_NAME}",
                                     f"sink_properties=device.description={SINK_NAME}",
                                     *self._spec_args(previous)).strip())
            state = RoutingState(SINK_NAME, module, previous)
            self._save(state)
            state.loopback_module = self._load_loopback(state)
            self._pactl("set-default-sink", SINK_NAME)
            self._save(state)
        if move_streams:
            for stream in self.streams():
                if stream.backend != SINK_NAME:
                    self._move(state, stream)
        return state

    def move_stream(self, query: str) -> DeviceInfo:
        """Move the playing stream whose application ``query`` names to the LoopJam sink."""
        state = self.state()
        if state is None:
            raise RoutingError("routing is not set up: run `loopjam setup-audio` first")
        stream = match_device(query, self.streams())
        self._move(state, stream)
        return stream

    def _move(self, state: RoutingState, stream: DeviceInfo) -> None:
        self._pactl("move-sink-input", stream.id, SINK_NAME)
        state.moved[stream.id] = stream.backend
        self._save(state)

    def remove(self) -> bool:
        """Undo everything :meth:`setup` did; False when nothing was set up."""
        state = self.state()
        if state is None:
            return False
        known = {s.id for s in self.sinks()}
        target = state.previous_default if state.previous_default in known else None
        for stream in self.streams():
            if stream.backend == SINK_NAME:
                back = state.moved.get(stream.id, target)
                if back in known and back != SINK_NAME:
                    self._pactl("move-sink-input", stream.id, back)
        if target is not None:
            self._pactl("set-default-sink", target)
        loaded = self._modules()
        for module in (state.loopback_module, state.sink_module):
            if module is not None and module in loaded:
                self._pactl("unload-module", str(module))
        self.state_path.unlink(missing_ok=True)
        return True

    def repair(self) -> RoutingState | None:
        """Bring the server back in line with the recorded state after a crash: recreate a sink
        that vanished (server restart), reload a loopback a killed companion left unloaded."""
        state = self.state()
        if state is None:
            return None
        loaded = self._modules()
        sinks = {s.id for s in self.sinks()}
        if state.sink_module not in loaded or SINK_NAME not in sinks:
            self.state_path.unlink(missing_ok=True)  # the server forgot it: set up afresh
            return self.setup(move_streams=False)
        if state.loopback_module is None or state.loopback_module not in loaded:
            state.loopback_module = self._load_loopback(state)
            self._save(state)
        return state

    def _spec_args(self, sink: str) -> list[str]:
        """The LoopJam device's ``format=`` ``rate=`` ``channels=``: float32 at the rate the
        companion records it (:data:`STREAM_SR`), so its capture is never converted (the
        server's default, s16le 44.1 kHz, was converted twice: 30-34 dB SNR through the
        pass-through; float32 48 kHz speakers now get the music bit-exact), with the channels
        of ``sink``, the output it replaces. Not the output's rate: the companion would resample
        a 44.1 kHz device there and back anyway, and with a 96 kHz device at both ends
        PulseAudio 16's pass-through loopback aborted the server within seconds (speex
        resampler assertion, 3 runs of 3)."""
        spec = next((s.get("sample_specification", "") for s in self._json("sinks")
                     if s.get("name") == sink), "")
        match = re.fullmatch(r"\w+ (\d+)ch \d+Hz", spec.strip())
        channels = [f"channels={match[1]}"] if match else []
        return ["format=float32le", f"rate={STREAM_SR}", *channels]

    def _load_loopback(self, state: RoutingState) -> int:
        return int(self._pactl("load-module", "module-loopback",
                               f"source={state.sink}.monitor", f"sink={state.previous_default}",
                               f"latency_msec={LOOPBACK_LATENCY_MS}",
                               "source_dont_move=true", "sink_dont_move=true").strip())

    @contextlib.contextmanager
    def companion_running(self):
        """While the companion plays the processed audio, the pass-through loopback is off.

        Yields the state (None when routing is not set up: then nothing changes)."""
        state = self.repair()
        if state is None:
            yield None
            return
        if state.loopback_module is not None:
            self._pactl("unload-module", str(state.loopback_module))
            state.loopback_module = None
            self._save(state)
        try:
            yield state
        finally:
            with contextlib.suppress(RoutingError):
                state.loopback_module = self._load_loopback(state)
                self._save(state)
