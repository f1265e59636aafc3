"""Import of real Frets on Fire songs: every song imports, and the imported Expert chart is the
notes.mid Expert chart exactly.

For every song folder (Debian's fretsonfire-songs-muldjord: song.ogg + guitar.ogg + notes.mid +
song.ini) :func:`analyzer.formats.import_song` runs the whole import (parse, decode every stem,
fingerprint and sync reference of the mix, masks when :mod:`analyzer.masks` exists). The Expert
notes are then checked against an independent reading of notes.mid: mido's own playback clock
(``for msg in MidiFile``: delta ticks → seconds through its tempo handling), notes 96-100 → lanes
0-4, song.ini ``delay`` added. Reported per song: note counts (imported vs reference), the largest
time difference, lanes equal, sustains (length > 1/12 step), seconds to import and the real-time
factor, fingerprint items, masks.

Usage::

    nice -n 10 .venv/bin/python -m benchmarks.import.songs [SONGS_DIR]

SONGS_DIR defaults to what ``/work/shared/scripts/fetch-fof-songs.sh`` (or
``$LOOPJAM_FOF_SONGS``) gives. Prints one JSON object; exits 1 if any song fails to import or
differs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FETCH_SCRIPT = Path(__file__).resolve().parents[3] / "shared" / "scripts" / "fetch-fof-songs.sh"
EXPERT_LOW = 96


def songs_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if os.environ.get("LOOPJAM_FOF_SONGS"):
        return Path(os.environ["LOOPJAM_FOF_SONGS"])
    out = subprocess.run(["bash", str(FETCH_SCRIPT)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def reference_expert(folder: Path, delay_s: float) -> tuple[list[tuple[float, int, int]], int]:
    """(seconds, lane, length ticks) of every Expert note by mido's playback clock; resolution."""
    import mido

    mid = mido.MidiFile(folder / "notes.mid")
    seconds, sounding, notes = 0.0, {}, []
    for msg in mid:  # messages of all tracks merged, .time in seconds
        seconds += msg.time
        if msg.type in ("note_on", "note_off") and EXPERT_LOW <= msg.note < EXPERT_LOW + 5:
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.note] = seconds
            elif msg.note in sounding:
                notes.append((sounding.pop(msg.note) + delay_s, msg.note - EXPERT_LOW))
    # Lengths in ticks come from the track itself (mido's merged clock is in seconds).
    ticks, starts, lengths = 0, {}, {}
    for track in mid.tracks:
        ticks = 0
        for msg in track:
            ticks += msg.time
            if msg.type in ("note_on", "note_off") and EXPERT_LOW <= msg.note < EXPERT_LOW + 5:
                if msg.type == "note_on" and msg.velocity > 0:
                    starts[msg.note] = ticks
                elif msg.note in starts:
                    lengths.setdefault(msg.note, []).append(ticks - starts.pop(msg.note))
    order = {note: iter(values) for note, values in lengths.items()}
    return sorted((t, lane, next(order[lane + EXPERT_LOW])) for t, lane in
                  sorted(notes, key=lambda n: n[0])), mid.ticks_per_beat


def check_song(folder: Path) -> dict:
    from analyzer.formats import import_song, read_song_folder

    delay = read_song_folder(folder).ini.delay_s
    wall = time.perf_counter()
    song = import_song(folder)
    wall = time.perf_counter() - wall
    chart = song.chart
    reference, resolution = reference_expert(folder, delay)
    imported = chart.track("expert").notes
    max_dt = max((abs(a.t - b[0]) for a, b in zip(imported, reference)), default=0.0)
    same_lanes = [n.lane for n in imported] == [lane for _, lane, _ in reference]
    ref_sustains = sum(length > resolution // 3 for _, _, length in reference)
    exact = len(imported) == len(reference) and same_lanes and max_dt < 1e-6 and \
        sum(n.dur > 0 for n in imported) == ref_sustains
    return {"song": folder.name, "title": chart.meta.title, "exact": exact,
            "expert_notes": len(imported), "reference_notes": len(reference),
            "lanes_equal": same_lanes, "max_time_diff_s": max_dt,
            "sustains": sum(n.dur > 0 for n in imported), "reference_sustains": ref_sustains,
            "notes": {d: len(t) for d, t in chart.difficulties.items()},
            "duration_s": round(chart.meta.duration_s, 2), "beats": len(chart.beats),
            "fingerprint_items": len(chart.fingerprint.items), "masks": len(chart.masks),
            "stems": sorted(song.stems), "import_wall_s": round(wall, 2),
            "realtime_factor": round(chart.meta.duration_s / wall, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("songs", nargs="?", help="folder of song folders")
    args = parser.parse_args(argv)
    from analyzer.formats import find_song_folders

    results, failures = [], []
    for folder in find_song_folders(songs_dir(args.songs)):
        try:
            results.append(check_song(folder))
        except ValueError as error:
            failures.append({"song": folder.name, "error": str(error)})
    summary = {"songs": len(results) + len(failures), "imported": len(results),
               "exact": sum(r["exact"] for r in results), "failures": failures,
               "results": results}
    json.dump(summary, sys.stdout, indent=1)
    print()
    return 0 if not failures and summary["exact"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
