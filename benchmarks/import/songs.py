"""Import of real Frets on Fire songs: every song imports, and the imported Expert chart is the
notes.mid Expert chart exactly.

For every song folder (Debian's fretsonfire-songs-muldjord: song.ogg + guitar.ogg + notes.mid +
song.ini; any Frets on Fire / Clone Hero / YARG folder at any depth) the whole import
(:func:`analyzer.formats.import_song`: parse, decode every stem, fingerprint and sync reference
of the mix, masks) runs. The Expert guitar notes are then checked against an independent reading:

- of ``notes.mid``: mido's own playback clock (``for msg in MidiFile``: delta ticks → seconds
  through its tempo handling) over the tempo tracks and the guitar track (``PART GUITAR``, else
  ``T1 GEMS`` or ``PART LEAD``, else the first track with notes 96-100 that is not drums, vocals
  or events), notes 96-100 → lanes 0-4, and 95 (an open note) → lane 0 where the track has an
  ``ENHANCED_OPENS`` text event;
- of ``notes.chart`` (when there is no notes.mid): ``[ExpertSingle]`` frets 0-4 → lanes 0-4 and
  7 (open) → lane 0, ticks to seconds through the ``[SyncTrack]`` tempos, summed here segment
  by segment;

song.ini ``delay`` (else the .chart ``Offset``) added. Reported per song: note counts (imported
vs reference), the largest time and sustain-length differences, lanes equal, sustains (longer
than the sustain cutoff: a 1/12 step in MIDI, none in .chart, or song.ini's
``sustain_cutoff_threshold``), seconds to import (wall and CPU) and the real-time factor,
fingerprint items, masks; and the notes after an export to a Clone Hero folder read back (plus
the note counts of the StepMania/osu! exports). A song with no 5-fret Expert guitar part has
no reference and is reported as a failure.

Usage::

    nice -n 10 .venv/bin/python -m benchmarks.import.songs [SONGS_DIR]

SONGS_DIR defaults to what ``scripts/fetch-demo-song.sh`` (or
``$LOOPJAM_FOF_SONGS``) gives. Prints one JSON object; exits 1 if any song fails to import or
differs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.data import songs_dir

EXPERT_LOW = 96



def reference_expert(folder: Path, delay_s: float | None
                     ) -> tuple[list[tuple[float, int, int, float]], int]:
    """(seconds, lane, length ticks, length seconds) of every Expert guitar note, read
    independently of :mod:`analyzer.formats`, and the format's sustain cutoff (ticks: a note
    this long or shorter is a tap; a 1/12 step in MIDI, none in .chart)."""
    files = {p.name.lower(): p for p in folder.iterdir()}
    if "notes.mid" in files:
        return _midi_reference(files["notes.mid"], delay_s or 0.0)
    return _chart_reference(files["notes.chart"], delay_s)


def _midi_reference(path: Path, delay_s: float) -> tuple[list, int]:
    import mido

    mid = mido.MidiFile(path)
    names = [next((m.name.strip().upper() for m in t if m.type == "track_name"), "")
             for t in mid.tracks]
    # Expert notes on a guitar track: a named one, else an old unnamed one (not drums etc.).
    expert = [any(m.type == "note_on" and EXPERT_LOW <= m.note < EXPERT_LOW + 5 for m in t)
              and not n.startswith(("PART DRUMS", "PART VOCALS", "PART REAL", "EVENTS", "HARM"))
              for n, t in zip(names, mid.tracks)]
    if not any(expert):
        raise ValueError(f"{path.name}: no Expert guitar notes (96-100) to check against")
    guitar = next((i for name in ("PART GUITAR", "T1 GEMS", "PART LEAD")
                   for i, n in enumerate(names) if n == name and expert[i]), expert.index(True))
    enhanced = any(m.type == "text" and "ENHANCED_OPENS" in m.text for m in mid.tracks[guitar])
    low = EXPERT_LOW - 1 if enhanced else EXPERT_LOW
    only = mido.MidiFile(ticks_per_beat=mid.ticks_per_beat, type=mid.type)
    only.tracks = [t for i, t in enumerate(mid.tracks)
                   if i == guitar or any(m.type == "set_tempo" for m in t)]
    seconds, sounding, notes = 0.0, {}, []
    for msg in only:  # messages of those tracks merged, .time in seconds
        seconds += msg.time
        if msg.type in ("note_on", "note_off") and low <= msg.note < EXPERT_LOW + 5:
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.note] = seconds
            elif msg.note in sounding:
                start = sounding.pop(msg.note)
                notes.append((start + delay_s, msg.note, seconds - start))
    # Lengths in ticks come from the track itself (mido's merged clock is in seconds).
    ticks, starts, lengths = 0, {}, {}
    for msg in mid.tracks[guitar]:
        ticks += msg.time
        if msg.type in ("note_on", "note_off") and low <= msg.note < EXPERT_LOW + 5:
            if msg.type == "note_on" and msg.velocity > 0:
                starts[msg.note] = ticks
            elif msg.note in starts:
                lengths.setdefault(msg.note, []).append(ticks - starts.pop(msg.note))
    order = {note: iter(values) for note, values in lengths.items()}
    return sorted((t, max(note - EXPERT_LOW, 0), next(order[note]), length)
                  for t, note, length in sorted(notes, key=lambda n: n[0])), mid.ticks_per_beat // 3


def _chart_reference(path: Path, delay_s: float | None) -> tuple[list, int]:
    import re

    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    sections = dict(re.findall(r"\[(\w+)\]\s*\{([^}]*)\}", text))
    song = dict(re.findall(r"^\s*(\w+)\s*=\s*\"?([^\"\n]*?)\"?\s*$", sections["Song"], re.M))
    resolution = int(float(song.get("Resolution", 192)))
    offset = float(song.get("Offset", 0)) if delay_s is None else delay_s
    tempos = sorted((int(tick), 60000.0 / float(milli)) for tick, milli in
                    re.findall(r"^\s*(\d+)\s*=\s*B\s+(\d+)", sections.get("SyncTrack", ""), re.M))
    tempos = tempos if tempos and tempos[0][0] == 0 else [(0, 0.5), *tempos]

    def seconds(tick: int) -> float:
        total = 0.0
        for (start, beat_s), (end, _) in zip(tempos, [*tempos[1:], (tick, 0.0)]):
            total += (min(end, tick) - start) / resolution * beat_s if start < tick else 0.0
        return total

    if "ExpertSingle" not in sections:
        raise ValueError(f"{path.name}: no [ExpertSingle] to check against")
    notes = [(int(tick), 0 if int(fret) == 7 else int(fret), int(length)) for tick, fret, length
             in re.findall(r"^\s*(\d+)\s*=\s*N\s+(\d+)\s+(\d+)", sections["ExpertSingle"], re.M)
             if int(fret) <= 4 or int(fret) == 7]
    return sorted((seconds(t) + offset, fret, length, seconds(t + length) - seconds(t))
                  for t, fret, length in notes), 0


def export_round_trip(chart) -> dict:
    """Export to a Clone Hero folder (no audio), read it back: how far did the notes move?
    Also the note counts of the StepMania (4 lanes) and osu!mania exports."""
    import re
    import tempfile

    from analyzer.formats import export_chart, read_song_folder

    with tempfile.TemporaryDirectory() as tmp:
        back = read_song_folder(export_chart(chart, "clonehero", tmp)).notes.difficulties
        sm = next(export_chart(chart, "stepmania", Path(tmp) / "sm").glob("*.sm")).read_text()
        osu = [p.read_text() for p in export_chart(chart, "osu", Path(tmp) / "osu").glob("*.osu")]
    result = {}
    for name, track in chart.difficulties.items():
        got = back[name]
        same = len(got) == len(track) and [n.lane for n in got] == [n.lane for n in track]
        result[name] = {
            "notes_and_lanes_equal": same,
            "max_start_diff_ms": round(1000 * max(abs(a.t - b.t) for a, b in zip(got, track)), 4),
            "max_end_diff_ms": round(1000 * max(abs(a.end - b.end) for a, b in zip(got, track)), 4)}
    result["stepmania_rows_with_heads_or_tails"] = len(re.findall(r"^[0-3]*[123][0-3]*$", sm, re.M))
    result["osu_hit_objects"] = sum(len(o.split("[HitObjects]")[1].split()) for o in osu)
    return result


def check_song(folder: Path) -> dict:
    from analyzer.formats import import_song, read_song_folder

    ini = read_song_folder(folder).ini
    delay = ini.delay_s if "delay" in ini.tags and ini.delay_s != 0 else None
    wall, cpu = time.perf_counter(), time.process_time()
    song = import_song(folder)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    chart = song.chart
    reference, cutoff = reference_expert(folder, delay)
    if ini.sustain_cutoff_ticks is not None:
        cutoff = ini.sustain_cutoff_ticks
    imported = chart.track("expert").notes
    max_dt = max((abs(a.t - b[0]) for a, b in zip(imported, reference)), default=0.0)
    same_lanes = [n.lane for n in imported] == [r[1] for r in reference]
    # Sustains: longer than the cutoff, lasting what the reference's clock says.
    ref_durs = [r[3] if r[2] > cutoff else 0.0 for r in reference]
    max_ddur = max((abs(a.dur - d) for a, d in zip(imported, ref_durs)), default=0.0)
    exact = (len(imported) == len(reference) and same_lanes and max_dt < 1e-6
             and max_ddur < 1e-6)
    return {"song": folder.name, "title": chart.meta.title, "exact": exact,
            "expert_notes": len(imported), "reference_notes": len(reference),
            "lanes_equal": same_lanes, "max_time_diff_s": max_dt, "max_sustain_diff_s": max_ddur,
            "sustains": sum(n.dur > 0 for n in imported),
            "reference_sustains": sum(d > 0 for d in ref_durs),
            "export_round_trip": export_round_trip(chart),
            "notes": {d: len(t) for d, t in chart.difficulties.items()},
            "duration_s": round(chart.meta.duration_s, 2), "beats": len(chart.beats),
            "fingerprint_items": len(chart.fingerprint.items), "masks": len(chart.masks),
            "stems": sorted(song.stems),
            "import_wall_s": round(wall, 2), "import_cpu_s": round(cpu, 2),
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
