"""Memory allocated per block on the audio path, stage by stage (tracemalloc).

Run::

    .venv/bin/python -m benchmarks.live.alloc [--blocks 200]

For 48 kHz stereo blocks of 512 frames: the ring write (the audio thread's own work), the
processor (pass-through, and the note remover), the onset envelope (control thread), and the
``soundcard`` capture and playback calls against a headless PulseAudio. For each stage: the
transient peak (bytes allocated while the call runs, then freed) and what stays allocated after
all blocks (a leak would grow it). Prints one JSON line per stage.
"""
from __future__ import annotations

import argparse
import json
import os
import tracemalloc

import numpy as np

SR, FRAMES = 48000, 512


def measure(name: str, step, blocks: int) -> dict:
    step()  # first call: lazy set-up is not per-block cost
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    peak_extra = 0
    for _ in range(blocks):
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
        peak_extra = max(peak_extra, peak - before)
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"stage": name, "transient_peak_bytes": int(peak_extra),
            "retained_bytes_after": int(after - base), "blocks": blocks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=200)
    args = parser.parse_args(argv)
    from analyzer.features import OnsetStream
    from companion.app import PassThrough
    from companion.listen import MonoRing
    from companion.removal import make_remover

    x = (0.1 * np.random.default_rng(0).standard_normal((FRAMES, 2))).astype(np.float32)
    ring = MonoRing(30 * SR)
    position = [0]

    def ring_write():
        ring.write_block(x, position[0])
        position[0] += FRAMES

    onsets = OnsetStream(SR)
    mono = x[:, 0].copy()
    passthrough = PassThrough()
    remover = make_remover(sr=SR, channels=2)
    out = np.empty_like(x)   # the audio thread's output buffer
    results = [measure("ring write (audio thread)", ring_write, args.blocks),
               measure("pass-through processor", lambda: passthrough.process(x), args.blocks),
               measure("note remover, nothing to remove", lambda: remover.process(x, out),
                       args.blocks),
               measure("onset envelope push (control thread)", lambda: onsets.push(mono),
                       args.blocks)]
    from tests.fixtures.pulse import start_pulse, stop_pulse

    server, pid = start_pulse()
    os.environ["PULSE_SERVER"] = server.server
    try:
        import companion.audio as audio

        source = audio.open_source("loopback:A", sr=SR, block_frames=FRAMES)
        sink = audio.open_sink("B", sr=SR, block_frames=FRAMES, buffer_frames=4 * FRAMES)
        block = audio.Block.empty(FRAMES, 2)
        results.append(measure("soundcard capture (libpulse read)",
                               lambda: source.read(block),
                               args.blocks))
        results.append(measure("soundcard playback (libpulse write)", lambda: sink.write(x),
                               args.blocks))
        source.close()
        sink.close()
    finally:
        stop_pulse(server, pid)
    for result in results:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
