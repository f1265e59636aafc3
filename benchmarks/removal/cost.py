"""Cost of the note remover: CPU share of one core and added latency.

Run::

    nice -n 10 .venv/bin/python -m benchmarks.removal.cost [--seconds 20]

48 kHz stereo noise through :class:`companion.removal.NoteRemover` with 50 notes active at
once for the whole run (10 s sustains, all missed), removed by masks (:data:`analyzer.masks.N_BANDS` bands) or half by
masks and half by stem cancellation; blocks of 128, 256, 512 and 1024 frames. CPU time is the
process's (``time.process_time``; per block, the thread's), so other load on the machine does
not count -- the timer's resolution and cache contention on a loaded machine still inflate the
worst block. Also the idle
case (nothing to remove: no FFT at all) and the added latency at 44.1 and 48 kHz. Prints one
JSON line per case.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from analyzer.masks import N_BANDS, band_edges
from chart_store.chart import MaskBank, Note, SpectralMask
from companion.removal import NoteRemover


def case(*, sr: int, seconds: float, block: int, stems: bool, active: int) -> dict:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((int(sr * seconds), 2))).astype(np.float32)
    hop_s = 0.01
    bank = MaskBank(band_edges(), hop_s, tuple(
        SpectralMask(-0.03, rng.integers(0, 256, (int(seconds / hop_s), N_BANDS)))
        for _ in range(active)))
    notes = tuple(Note(0.05 + 0.01 * i, dur=seconds, lane=i % 5, mask=i,
                       stem="guitar" if stems and i % 2 else "mix") for i in range(active))
    stem = {"guitar": (0.05 * rng.standard_normal((2, x.shape[0])).astype(np.float32), sr)}
    rm = NoteRemover(sr=sr, channels=2, notes=notes, masks=bank, stems=stem if stems else None)
    rm.set_sync(0.0, 0.0)
    for i in range(active):
        rm.miss(i)
    out = np.empty((block, 2), np.float32)   # the live session's output buffer
    cpu = time.process_time()
    per_block = []
    for pos in range(0, x.shape[0], block):
        t0 = time.thread_time()
        chunk = x[pos:pos + block]
        rm.process(chunk, out[:len(chunk)])
        per_block.append(time.thread_time() - t0)
    cpu = time.process_time() - cpu
    # The first block takes all 50 misses at once (each note's removal is laid out then).
    first, rest = per_block[0], np.array(per_block[1:])
    return {"sr": sr, "block": block, "notes_active": active,
            "removal": "masks+stems" if stems else ("masks" if active else "none"),
            "cpu_share": round(cpu / seconds, 4),
            "first_block_cpu_ms": round(1000 * first, 2),
            "p99_block_cpu_ms": round(1000 * float(np.percentile(rest, 99)), 3),
            "worst_block_cpu_ms": round(1000 * float(rest.max()), 2),
            "block_budget_ms": round(1000 * block / sr, 2),
            "latency_ms": round(1000 * rm.latency_samples / sr, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    for block in (128, 256, 512, 1024):
        for stems in (False, True):
            print(json.dumps(case(sr=48000, seconds=args.seconds, block=block, stems=stems,
                                  active=50)), flush=True)
    print(json.dumps(case(sr=48000, seconds=args.seconds, block=512, stems=False, active=0)))
    for sr in (44100, 48000):
        rm = NoteRemover(sr=sr, channels=2)
        print(json.dumps({"sr": sr, "latency_samples": rm.latency_samples,
                          "latency_ms": round(1000 * rm.latency_samples / sr, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
