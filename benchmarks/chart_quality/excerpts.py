"""Charts of part of a song: what the live path builds when it records a song from the middle.

The companion records an unknown song while it plays and charts the recording
(``companion.listen``), which often starts and ends mid-song. For every song folder this charts
excerpts of ``--seconds`` (4 per song, evenly spread, 10 s clear of either end) of the mix as
:mod:`benchmarks.chart_quality.run` mixes it, and scores each excerpt's Expert notes, away from
its first and last second, with ``mir_eval.onset.f_measure`` (±50 ms):

- against the chart of the whole song over the same stretch (do they agree?);
- against the human chart there, at the whole song's best shift, and the whole song's chart
  against the human one over the same stretch (is the excerpt's chart as good?).

Usage::

    nice -n 10 .venv/bin/python -m benchmarks.chart_quality.excerpts [--set dev|bench|both]
        [--seconds 20 40] [--json-out FILE]

Prints one JSON object: per song and length, the three means; per set and length, their means.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.chart_quality.run import best_shift_scores, mix_of, onset_times
from benchmarks.data import dev_songs_dir, song_folders, songs_dir

EXCERPTS = 4
#: Excerpts keep clear of the song's ends by this much, and are scored away from their own
#: ends by MARGIN_S (a note cut in half at an excerpt's edge is no fair test).
CLEAR_S = 10.0
MARGIN_S = 1.0


def _f(reference: np.ndarray, estimate: np.ndarray) -> float:
    import mir_eval

    return float(mir_eval.onset.f_measure(reference, estimate, window=0.05)[0])


def evaluate_song(folder: Path, lengths: list[float]) -> dict:
    from analyzer.charting import chart_notes
    from analyzer.formats.folder import read_song_folder

    y, sr = mix_of(folder)
    human = onset_times(read_song_folder(folder).notes.difficulties["expert"])
    whole = onset_times(chart_notes(y, sr).difficulties["expert"])
    shift = best_shift_scores(human, whole)["shift_ms"] / 1000
    duration = len(y) / sr
    result = {"song": folder.name, "duration_s": round(duration, 2), "lengths": {}}
    for length in lengths:
        scores = []
        for start in np.linspace(CLEAR_S, duration - length - CLEAR_S, EXCERPTS):
            part = y[int(start * sr):int((start + length) * sr)]
            found = onset_times(chart_notes(part, sr).difficulties["expert"]) + start

            def inside(times):
                return times[(times >= start + MARGIN_S) & (times < start + length - MARGIN_S)]

            reference = inside(human + shift)
            scores.append((_f(inside(whole), inside(found)), _f(reference, inside(found)),
                           _f(reference, inside(whole))))
        agree, excerpt, full = np.mean(scores, axis=0)
        result["lengths"][str(length)] = {"vs_whole_chart": round(agree, 4),
                                          "vs_human": round(excerpt, 4),
                                          "whole_chart_vs_human": round(full, 4)}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="song_set", choices=("bench", "dev", "both"),
                        default="bench", help="benchmark songs, development songs, or both")
    parser.add_argument("--seconds", type=float, nargs="+", default=[20.0, 40.0],
                        help="excerpt lengths (s, at least 10)")
    parser.add_argument("--json-out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if min(args.seconds) < 10:
        parser.error("--seconds: excerpts must be at least 10 s (the analyzer's minimum)")
    roots = {name: (songs_dir() if name == "bench" else dev_songs_dir())
             for name in (("dev", "bench") if args.song_set == "both" else (args.song_set,))}
    report = {"benchmark": "chart_quality.excerpts", "excerpts_per_song": EXCERPTS, "sets": {}}
    for name, root in roots.items():
        songs = [evaluate_song(folder, args.seconds) for folder in song_folders(root)]
        mean = {str(length): {key: round(float(np.mean([s["lengths"][str(length)][key]
                                                          for s in songs])), 4)
                              for key in ("vs_whole_chart", "vs_human", "whole_chart_vs_human")}
                for length in args.seconds}
        report["sets"][name] = {"songs": songs, "mean": mean}
    text = json.dumps(report)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
