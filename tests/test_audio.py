"""companion.audio: the shared device matcher, blocks and positions, file/null backends, and the
soundcard/pyaudio backends against a real headless PulseAudio."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile

import companion.audio as audio
from companion.audio.base import Block, DeviceInfo, DeviceNotFound, match_device

DEVICES = [DeviceInfo("alsa_output.pci-0000_00_1f.3.analog-stereo", "Built-in Audio Analog Stereo",
                      "output", "t"),
           DeviceInfo("LoopJam", "LoopJam", "output", "t"),
           DeviceInfo("LoopJamOut", "LoopJam Out", "output", "t")]


def test_match_by_id_part_and_exact_name():
    assert match_device("LoopJam", DEVICES).id == "LoopJam"  # exact id beats "LoopJam Out"
    assert match_device("built-in", DEVICES).id.startswith("alsa_output")
    assert match_device("loopjam out", DEVICES).id == "LoopJamOut"
    assert match_device("ANALOG-STEREO", DEVICES).id.startswith("alsa_output")
    with pytest.raises(DeviceNotFound, match="several"):
        match_device("o", DEVICES)
    with pytest.raises(DeviceNotFound, match="no device matches"):
        match_device("hdmi", DEVICES)


def _wav(path, sr=44100, seconds=1.0, channels=2):
    y = np.random.default_rng(3).uniform(-0.5, 0.5, (int(sr * seconds), channels))
    soundfile.write(path, y.astype(np.float32), sr, subtype="FLOAT")
    return y.astype(np.float32)


@pytest.mark.parametrize("block_frames", [1, 37, 512, 4096])
def test_file_source_to_file_sink_is_sample_exact(tmp_path, block_frames):
    y = _wav(tmp_path / "in.wav", seconds=0.2 if block_frames == 1 else 1.0)
    src = audio.open_source(str(tmp_path / "in.wav"), block_frames=block_frames)
    assert src.sr == 44100 and src.channels == 2
    block = Block.empty(block_frames, 2)
    with audio.open_sink(str(tmp_path / "out.wav"), sr=src.sr) as sink:
        expected = 0
        while src.read(block):
            assert block.position == expected and block.gap == 0
            sink.write(block.valid)
            expected += block.frames
    out, sr = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert sr == 44100 and np.array_equal(out, y)


def test_file_source_realtime_paces_like_a_device(tmp_path):
    _wav(tmp_path / "in.wav", sr=8000, seconds=0.3, channels=1)
    src = audio.open_source(str(tmp_path / "in.wav"), block_frames=400, realtime=True)
    block = Block.empty(400, 2)
    t0 = time.monotonic()
    while src.read(block):
        pass
    assert 0.28 <= time.monotonic() - t0 < 1.0
    assert np.array_equal(block.data[:, 0], block.data[:, 1])  # mono spread over both channels


def test_null_backend_and_unknown_backend(monkeypatch):
    src = audio.open_source("null", sr=8000, block_frames=80)
    block = Block.empty(80, 2)
    assert src.read(block) and block.position == 0 and not block.valid.any()
    assert src.read(block) and block.position == 80
    assert audio.open_sink("null", sr=8000).latency_samples == 0
    with pytest.raises(audio.BackendUnavailable, match="unknown audio backend"):
        audio.get_backend("jack")
    assert audio.get_backend(preferred="null").name == "null"   # config audio.backend
    monkeypatch.setenv("LOOPJAM_AUDIO", "null")
    assert audio.get_backend().name == "null"
    assert audio.get_backend(preferred="soundcard").name == "null"   # the environment wins


@pytest.mark.pulseaudio
def test_soundcard_loopback_records_what_a_sink_plays(pulse_server):
    backend = audio.get_backend("soundcard")
    assert backend.supports_loopback
    outputs = {d.id: d for d in backend.devices() if d.kind == "output"}
    assert {"A", "B"} <= set(outputs)
    assert backend.find("sinkb", kind="output").id == "B"  # by description part
    sr, n = 48000, 480
    src = audio.open_source("loopback:SinkA", sr=sr, block_frames=n)
    block = Block.empty(n, 2)
    t = np.arange(sr) / sr
    tone = np.repeat((0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None], 2, axis=1)
    # A fresh monitor's first delivery comes late (the idle sink renders in long batches) and
    # with what piled up before it; the tone starts once the capture runs.
    assert src.read(block)
    with audio.open_sink("A", sr=sr, buffer_frames=1024) as sink:
        assert sink.latency_samples == 1024
        player = threading.Thread(target=lambda: [sink.write(tone[i:i + n])
                                                  for i in range(0, sr, n)])
        player.start()
        peak, expected = 0.0, block.position + block.frames
        for _ in range(150):
            assert src.read(block)
            assert block.position == expected + block.gap  # a stalled start may drop backlog
            expected = block.position + block.frames
            peak = max(peak, float(np.abs(block.valid).max()))
        player.join()
    src.close()
    assert 0.24 < peak < 0.26
    # the client's mainloop lock is one reused object (no class built per libpulse call)
    from soundcard.pulseaudio import _pulse
    assert _pulse._lock_mainloop() is _pulse._lock_mainloop()


@pytest.mark.pulseaudio
def test_pyaudio_sees_the_sound_server(pulse_server):
    backend = audio.get_backend("pyaudio")
    assert not backend.supports_loopback
    with pytest.raises(audio.BackendUnavailable, match="loopback"):
        backend.open_source(None, loopback=True, sr=48000, channels=2, block_frames=480)
    assert any(d.kind == "output" for d in backend.devices())
    # The config's audio.backend picks it over the first in the preference order.
    assert audio.get_backend().name == "soundcard"
    assert audio.get_backend(preferred="auto").name == "soundcard"
    with audio.open_sink(None, sr=48000, preferred="pyaudio") as sink:
        assert type(sink).__module__.endswith("pyaudio_backend")


@pytest.mark.pulseaudio
def test_pyaudio_opens_a_sink_and_a_source_with_their_latency(pulse_server):
    backend = audio.get_backend("pyaudio")
    sink = backend.open_sink(None, sr=48000, channels=2, block_frames=480, buffer_frames=4800)
    source = backend.open_source(None, loopback=False, sr=48000, channels=2, block_frames=480)
    try:
        assert sink.latency_samples > 0 and source.latency_samples > 0
        sink.write(np.zeros((480, 2), np.float32))
    finally:
        sink.close()
        source.close()


def test_a_pyaudio_overrun_is_a_gap_not_a_shift():
    # PortAudio reports an overrun as paInputOverflowed, and PyAudio then drops the block it
    # read. Through the ALSA pulse plugin here the capture never overruns (it buffers
    # seconds), so a stand-in stream raises it as PyAudio does.
    pyaudio = pytest.importorskip("pyaudio")
    from companion.audio.pyaudio_backend import PyAudioSource

    class Overrun:
        calls = 0

        def read(self, frames, exception_on_overflow):
            Overrun.calls += 1
            if Overrun.calls == 2 and exception_on_overflow:
                raise OSError(pyaudio.paInputOverflowed, "Input overflowed")
            return np.full((frames, 2), Overrun.calls, np.float32).tobytes()

    source = PyAudioSource.__new__(PyAudioSource)
    audio.Source.__init__(source)
    source.sr, source.channels, source.block_frames, source._stream = 48000, 2, 480, Overrun()
    block = audio.Block.empty(480, 2)
    assert source.read(block) and (block.position, block.gap) == (0, 0)
    assert source.read(block) and (block.position, block.gap) == (960, 480)
    assert block.valid[0, 0] == 3 and source.overruns == 1


LOST = """
import sys, time
sys.path.insert(0, {root!r})
from tests.fixtures.pulse import start_pulse, stop_pulse
server, pid = start_pulse(sinks=("A",))
import os; os.environ["PULSE_SERVER"] = server.server
import companion.audio as audio
src = audio.open_source("loopback:A", sr=48000, block_frames=480)
block = audio.Block.empty(480, 2)
src.read(block)
stop_pulse(server, pid)
t0 = time.monotonic()
try:
    for _ in range(1000):
        src.read(block)
except audio.DeviceLost as error:
    print("lost after", round(time.monotonic() - t0, 2), error)
"""


@pytest.mark.pulseaudio
def test_server_gone_raises_device_lost_not_hang(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", LOST.format(root=root)], capture_output=True,
                         text=True, timeout=60)
    assert "lost after" in out.stdout, out.stderr[-2000:]
    assert float(out.stdout.split()[2]) < 5


def _unplug_after(server, module: str, seconds: float) -> threading.Thread:
    """Unload PulseAudio module ``module`` (a sink: the device is unplugged) in ``seconds``."""
    thread = threading.Thread(target=lambda: (time.sleep(seconds),
                                              server.pactl("unload-module", module)))
    thread.start()
    return thread


@pytest.mark.pulseaudio
def test_unplugged_device_raises_device_lost_for_capture_and_playback(pulse_server):
    from tests.fixtures.pulse import SINK_ARGS

    def plug(name):
        return pulse_server.pactl("load-module", "module-null-sink", f"sink_name={name}",
                                  *SINK_ARGS.split()).strip()

    # capture: what the sink plays (its monitor), the sink then unloaded
    module = plug("Unplugged")
    src = audio.open_source("loopback:Unplugged", block_frames=480)
    block = Block.empty(480, 2)
    unplug = _unplug_after(pulse_server, module, 0.3)
    t0 = time.monotonic()
    with pytest.raises(audio.DeviceLost, match="capture"):
        while time.monotonic() - t0 < 10:
            src.read(block)
    assert time.monotonic() - t0 < 3
    unplug.join()
    src.close()
    # playback into a sink that goes away: the server moves the stream to its fallback sink
    # (as a desktop does when headphones are pulled out) and playback goes on there
    module = plug("Unplugged2")
    sink = audio.open_sink("Unplugged2", sr=48000, buffer_frames=2048)
    assert sink.device_name() == "Unplugged2"
    unplug = _unplug_after(pulse_server, module, 0.3)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        sink.write(np.zeros((480, 2), np.float32))
    unplug.join()
    assert sink.device_name() in ("A", "B")
    sink.close()


def test_source_counts_overruns_and_file_sink_fills_a_skipped_span(tmp_path):
    class Gappy(audio.Source):  # a device that lost 5 samples before its third block
        sr, channels, block_frames = 8000, 1, 4

        def __init__(self):
            super().__init__()
            self.calls = 0

        def _fill(self, out):
            self.calls += 1
            out[:] = self.calls
            return 4, 5 if self.calls == 3 else 0

    source, block = Gappy(), Block.empty(4, 1)
    path = tmp_path / "out.wav"
    with audio.open_sink(str(path), sr=8000, channels=1) as sink:
        for _ in range(4):
            source.read(block)
            if block.gap:
                sink.skip(block.gap)
            sink.write(block.valid)
    assert source.overruns == 1 and block.position == 4 + 4 + 5 + 4
    y, _ = soundfile.read(path, dtype="float32")
    # every sample at its position: the lost span is silence in the file
    assert np.array_equal(y, np.repeat([1, 2, 0, 3, 4], [4, 4, 5, 4, 4]).astype(np.float32))


@pytest.mark.pulseaudio
def test_output_underrun_is_counted_and_the_output_keeps_its_lag(pulse_server, tmp_path):
    """Starve the output (a 300 ms stall, longer than its buffer): the sink counts an underrun
    and what comes after is heard at the same lag as before, sample for sample."""
    from tests.fixtures.pulse import Parec, find_lag

    sr, n = 48000, 1024
    rec = Parec.start(pulse_server, "B.monitor", tmp_path / "b.raw")
    src = audio.open_source("loopback:A", sr=sr, block_frames=n)
    sink = audio.open_sink("B", sr=sr, block_frames=n, buffer_frames=2400)
    feeder = audio.open_sink("A", sr=sr, buffer_frames=2400)
    noise = np.random.default_rng(5).uniform(-0.3, 0.3, (6 * sr, 2)).astype(np.float32)
    played = threading.Thread(target=lambda: [feeder.write(noise[i:i + 480])
                                              for i in range(0, noise.shape[0], 480)])
    block, captured, stalled = Block.empty(n, 2), [], False
    try:
        src.read(block)  # the capture runs (see test_soundcard_loopback_records_what_a_sink_plays)
        played.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5.0:
            src.read(block)
            if block.gap:
                sink.skip(block.gap)
            sink.write(block.valid)
            captured.append((block.position, block.valid.copy()))
            if not stalled and time.monotonic() - t0 > 2.5:
                time.sleep(0.3)
                stalled = True
        played.join()
        time.sleep(0.3)
    finally:
        b = rec.stop()[:, 0]
        for stream in (src, sink, feeder):
            stream.close()
    assert sink.underruns >= 1
    # the captured stream on its own clock (gaps as silence), then where B holds it
    end = captured[-1][0] + n
    x = np.zeros(end, np.float32)
    for position, data in captured:
        x[position:position + data.shape[0]] = data[:, 0]
    # Per quarter second before the stall and after it: the lag at which B holds the capture
    # exactly. Another underrun on a busy machine may spoil a quarter; a shifted output would
    # spoil every one after the stall.
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    stall = next(p for p, data in captured if p > loud[0] + 2 * sr)
    quarter, exact = sr // 4, {}
    for side, starts in (("before", range(int(loud[0]) + quarter, stall - sr, quarter)),
                         ("after", range(stall + sr, int(loud[-1]) - sr, quarter))):
        for s in starts:
            lag = find_lag(x, b, sr=sr, start=s)
            if np.array_equal(x[s:s + quarter], b[s + lag:s + lag + quarter]):
                exact.setdefault(side, set()).add(lag)
    assert set(exact) == {"before", "after"} and len(exact["before"] | exact["after"]) == 1, exact
