"""companion.routing (Linux, pactl) and `loopjam setup-audio` / `loopjam devices` against a real
headless PulseAudio."""
import json
import subprocess
import time

import pytest

from companion.cli import main
from companion.routing.linux import SINK_NAME, PulseRouter

pytestmark = pytest.mark.pulseaudio


def _sink_of(server, app_stream_id):
    for stream in json.loads(server.pactl("--format=json", "list", "sink-inputs")):
        if str(stream["index"]) == app_stream_id:
            names = {s["index"]: s["name"]
                     for s in json.loads(server.pactl("--format=json", "list", "sinks"))}
            return names[stream["sink"]]
    return None


def test_setup_play_guard_and_remove(pulse_server, tmp_path, capsys):
    server = pulse_server
    server.pactl("set-default-sink", "A")
    player = subprocess.Popen(["paplay", "--raw", "--device=A", "--client-name=SongPlayer",
                               "/dev/zero"], env=server.env)
    try:
        router = PulseRouter()
        deadline = time.monotonic() + 10
        while not router.streams() and time.monotonic() < deadline:
            time.sleep(0.1)
        stream = router.streams()[0]
        server.pactl("load-module", "module-null-sink", "sink_name=C", "format=s16le",
                     "rate=22050", "channels=1")   # another output, in another format
        assert main(["setup-audio", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["sink"] == SINK_NAME and out["previous_default"] == "A"
        specs = {s["name"]: s["sample_specification"] for s in router._json("sinks")}
        # The companion's format and rate (its capture is never converted), the output's
        # channels: in front of C's mono 22.05 kHz it would be mono, still float32 48 kHz.
        assert specs[SINK_NAME] == specs["A"] == "float32le 2ch 48000Hz"
        assert router._spec_args("C") == ["format=float32le", "rate=48000", "channels=1"]
        assert router.default_sink() == SINK_NAME
        assert _sink_of(server, stream.id) == SINK_NAME  # the running app was moved
        state = router.state()
        modules = router._modules()
        assert state.loopback_module in modules  # audio still reaches A without the companion
        assert main(["setup-audio"]) == 0  # idempotent
        assert router.state().sink_module == state.sink_module

        with router.companion_running() as running:  # what `loopjam play` does
            assert running.loopback_module is None
            assert state.loopback_module not in router._modules()
        assert router.state().loopback_module in router._modules()

        # a crash that lost the loopback (SIGKILLed companion) is repaired by the next set-up
        server.pactl("unload-module", str(router.state().loopback_module))
        assert router.repair().loopback_module in router._modules()

        assert main(["setup-audio", "--remove"]) == 0
        assert router.state() is None
        assert router.default_sink() == "A"
        assert _sink_of(server, stream.id) == "A"
        assert SINK_NAME not in {s.id for s in router.sinks()}
        assert main(["setup-audio", "--remove"]) == 0  # nothing to undo is fine
    finally:
        player.kill()
        player.wait()
        PulseRouter().remove()


def test_move_named_stream_and_devices(pulse_server, capsys):
    server = pulse_server
    server.pactl("set-default-sink", "A")
    player = subprocess.Popen(["paplay", "--raw", "--device=B", "--client-name=Radio Thing",
                               "/dev/zero"], env=server.env)
    try:
        deadline = time.monotonic() + 10
        while not PulseRouter().streams() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert main(["setup-audio", "--move", "radio", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["moved_apps"] == ["Radio Thing"]
        assert main(["devices", "--json"]) == 0
        devices = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        outputs = {d["id"] for d in devices if d["kind"] == "output" and
                   d["backend"] == "soundcard"}
        assert {"A", "B", SINK_NAME} <= outputs
        assert main(["setup-audio", "--move", "no such app"]) == 1
        assert main(["setup-audio", "--remove"]) == 0
        assert PulseRouter().streams()[0].backend == "B"  # back where it came from
    finally:
        player.kill()
        player.wait()
        PulseRouter().remove()


def test_no_sound_server_is_said_plainly(tmp_path, monkeypatch, capsys):
    # Not pactl's "Connection failure: Connection refused", nor "it would feed back".
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'no-server'}")
    for argv in (["setup-audio"], ["play", "--no-overlay", "--player", "autoplay"]):
        assert main(argv) == 1
        assert capsys.readouterr().err == ("loopjam: no sound server (PulseAudio or PipeWire) is "
                                           "running for this user: start it (or log in to a "
                                           "desktop session) first\n")
