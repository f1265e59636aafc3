"""Rebuild ``tests/data/example.chart``, the small chart file the tests and docs use.

    .venv/bin/python tests/data/make_example_chart.py

The chart is synthetic and exact: 16 s at 120 BPM, four difficulties on 5 lanes (expert plays
eighth notes on an A-minor pentatonic riff, easier ones thin it out), a guitar and a bass stem,
a sync envelope peaking at every note, a 16-band mask per expert note, and a fingerprint of
seeded pseudo-random items (a real Chromaprint of a 16 s riff would need audio the tests do not
ship; the file format does not care where the items came from).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from chart_store.chart import (
    Chart, ChartMeta, Fingerprint, MaskBank, Note, Source, SpectralMask, SyncReference,
)
from chart_store.chartfile import write_chart

PATH = Path(__file__).with_name("example.chart")
BPM, BEATS, LANES = 120.0, 32, 5
RIFF = (57, 60, 62, 64, 67, 64, 62, 60)        # MIDI, A minor pentatonic
FRAME_RATE, MASK_FRAMES, N_BANDS = 100.0, 10, 16


def build() -> Chart:
    """The example chart (deterministic)."""
    beat_s = 60.0 / BPM
    expert = []
    for k in range(2 * BEATS):                  # eighth notes
        pitch = RIFF[k % len(RIFF)]
        bass = k % 8 == 0
        expert.append(Note(t=k * beat_s / 2, dur=beat_s if bass else 0.0,
                           lane=RIFF.index(pitch) % LANES, pitch=pitch,
                           stem="bass" if bass else "guitar", mask=k))
    difficulties = {
        "expert": expert,
        "hard": expert[::2],
        "medium": [n for n in expert[::2] if n.stem == "guitar" or n.t % 4 == 0],
        "easy": [Note(n.t, n.dur, min(n.lane, 3), n.pitch, n.stem, n.mask) for n in expert[::4]],
    }
    envelope = np.zeros(int(BEATS * beat_s * FRAME_RATE), np.float32)
    for note in expert:
        envelope[round(note.t * FRAME_RATE)] = 1.0 if note.stem == "bass" else 0.5
    edges = np.geomspace(40.0, 16000.0, N_BANDS + 1).astype(np.float32)
    shape = np.outer(np.linspace(1.0, 0.0, MASK_FRAMES), np.hanning(N_BANDS + 2)[1:-1])
    masks = tuple(SpectralMask(-0.01, np.round(255 * shape * (0.5 + (k % 4) / 8)).astype(np.uint8))
                  for k in range(len(expert)))
    rng = np.random.default_rng(2026)
    return Chart(
        meta=ChartMeta(title="LoopJam Example", artist="The Test Signals", album="Fixtures",
                       duration_s=BEATS * beat_s, source=Source.IMPORTED_HUMAN,
                       tool_version="example-1"),
        difficulties=difficulties, lanes=LANES,
        beats=np.arange(BEATS) * beat_s,
        fingerprint=Fingerprint(rng.integers(0, 2**32, 129, dtype=np.uint32)),
        sync=SyncReference(envelope, FRAME_RATE),
        masks=MaskBank(band_edges_hz=edges, hop_s=0.02, masks=masks),
    )


def main() -> int:
    write_chart(build(), PATH)
    print(PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
