"""Chart quality: generated charts of real songs against the human charts of the same songs.

For every song folder (Frets on Fire, Clone Hero or YARG, at any depth under the songs folder:
notes.mid or notes.chart, song.ini, a file per stem; :func:`benchmarks.data.song_parts`) every
stem is summed into the mix a listener hears (here ``song.ogg + guitar.ogg``), which is charted
as an unknown file by :func:`analyzer.charting.chart_notes` (default path: no stems). The
Expert, Hard, Medium and Easy charts are compared with the human ones (read by
:mod:`analyzer.formats`, song.ini ``delay`` applied):

- note-onset F-measure (``mir_eval.onset.f_measure``; a chord counts once) at ±50 ms and ±100 ms,
  at the best global shift of the human chart within ±80 ms (2 ms steps; human charts sit a
  constant few tens of ms off the audio), chosen on the ±50 ms score and reported;
- the human chart's offset: that shift plus the median time difference of the notes matched there
  (the ±50 ms score is flat over a range of shifts and may peak at its edge);
- timing, at that offset: the median absolute deviation (ms) of the matched notes' time
  differences from their median, i.e. how far from the human chart's grid the notes sit once
  the song's offset is taken out; and the share of the generated notes an export puts on a 16th
  note of its tempo map (made from the chart's beats, 480 ticks a beat, within 6 ticks);
- the tempo map: how many tempo changes an export of the chart writes (the human charts here
  have one tempo each), and the share of the chart's beats within 10 ms of a beat of the human
  chart's tempo map, each run of 64 beats at its best constant offset (the human beats halved
  where the human counts in half time);
- notes/s (distinct onset times per second of audio) of both charts and their ratio;
- how the matched notes are played (:func:`feel_scores`): whether the lanes move the same way
  note to note as the human's (against the same generated moves shuffled: what lanes that ignore
  the melody would score), and how many notes are sustains and chords in each chart, with the
  F-measure of those two labels over the matched notes;
- the seconds ``chart_notes`` took (wall and CPU), and the audio duration;
- with ``--basic-pitch``: the same Expert scores for basic-pitch's notes on the mix, and its time
  (the measurement behind charting from onsets rather than from a transcription).

With ``--guitar-stem BLEED`` the songs are charted as the Demucs path charts them, with a guitar
stem beside the mix: the charted instrument's own stem (guitar.ogg) itself (``0``; a song
without one stops the run) or with the rest of the song leaking in at gain
BLEED (``0.1``-``0.35``: roughly -20 to -3 dB of backing against the guitar in these songs), a
stand-in for a separator's output (no Demucs weights can be fetched where this was built).

With ``--tempo-change FACTOR`` each song changes tempo halfway: from the human chart's beat
nearest the middle on, the mix (and the stem) plays FACTOR times as fast (ffmpeg's ``atempo``,
which keeps the pitch) and the human notes move with it. The songs here are each played at one
tempo; this measures how the charting holds up on one that is not.

With ``--loud-master DB`` each mix goes through a brickwall limiter first (ffmpeg's
``alimiter``: DB of input gain, ceiling -1 dBFS, 5 ms attack, 50 ms release), as a commercial
"loud" master is: these songs' mixes have a crest factor of 13-15 dB, loud commercial masters
about 8-10 dB (4 dB of gain here gives 9.2-9.6 dB, 8 dB 8.5-8.8 dB).

With ``--codec NAME`` each mix is encoded and decoded by ffmpeg first (last, after the limiter),
as a user's own files are: ``mp3`` (LAME, 128 kbit/s), ``aac`` (ffmpeg's AAC, 128 kbit/s) or
``opus`` (libopus, 96 kbit/s).

Usage::

    nice -n 10 .venv/bin/python -m benchmarks.chart_quality.run [--set dev|bench|both]
        [--songs DIR] [--json-out FILE] [--basic-pitch] [--guitar-stem BLEED]
        [--tempo-change FACTOR] [--loud-master DB] [--codec mp3|aac|opus] [--table]

``--set bench`` (the default) scores the 4 benchmark songs (:func:`benchmarks.data.songs_dir`),
``--set dev`` the 4 development songs constants are tuned on
(:func:`benchmarks.data.dev_songs_dir`),
``--set both`` both, each with its own mean; ``--songs DIR`` scores any folder of song folders
instead. A difficulty the human chart lacks is not scored; one whose onsets equal a harder
difficulty's (one dev song's charter copied Expert into Hard and Medium) is scored, marked
``"copied"`` and left out of the means. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analyzer.formats.tempo import TempoMap
from benchmarks.data import dev_songs_dir, song_folders, song_parts, songs_dir

EVALUATED = ("expert", "hard", "medium", "easy")
#: Exported tempo maps use Clone Hero's resolution; a note within a 20th of a 16th is on it.
TICKS_PER_BEAT = 480
ON_GRID_TICKS = 6
ON_BEAT_S = 0.01
#: Notes that start within this of a chord's first note are that chord: YARG snaps notes up to
#: 16 ticks apart into one (17 ms at 120 BPM, 480 ticks a beat), and a chord played in from a
#: keyboard or a DAW is spread over a few milliseconds. Otherwise each would be an onset of its
#: own that no generated note (60 ms apart at least) could match.
CHORD_S = 0.02
SHIFTS_S = np.round(np.arange(-0.080, 0.080 + 1e-9, 0.002), 3)
#: ``--codec`` name → ffmpeg's encoder options, then the file's extension.
CODECS = {"mp3": ("-c:a", "libmp3lame", "-b:a", "128k", "mp3"),
          "aac": ("-c:a", "aac", "-b:a", "128k", "m4a"),
          "opus": ("-c:a", "libopus", "-b:a", "96k", "opus")}



def onset_times(notes) -> np.ndarray:
    """Distinct onsets, seconds, ascending: a chord is one, at its first note (notes within
    :data:`CHORD_S` of it belong to it)."""
    starts = np.sort(np.asarray([n.t for n in notes], dtype=np.float64))
    onsets: list[float] = []
    for t in starts:
        if not onsets or t - onsets[-1] > CHORD_S:
            onsets.append(float(t))
    return np.asarray(onsets)


def onset_shapes(notes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct onset (as :func:`onset_times`): the mean lane of its notes, whether it is a
    chord, whether it is sustained."""
    times = onset_times(notes)
    at = np.searchsorted(times, [n.t for n in notes], side="right") - 1
    count = np.bincount(at, minlength=times.size)
    lane = np.bincount(at, weights=[n.lane for n in notes], minlength=times.size) / count
    held = np.bincount(at, weights=[n.dur > 0 for n in notes], minlength=times.size) > 0
    return lane, count > 1, held


def feel_scores(human, generated, shift_s: float) -> dict:
    """How the notes both charts have (matched at ±50 ms, ``shift_s`` applied to the human
    chart) are played.

    - ``lane_motion``: over consecutive matched onsets that follow each other in both charts,
      the share whose lane moves the same way (left, same lane, right; a chord's lane is its
      mean) in both; ``lane_motion_chance``: the same with the generated moves shuffled (mean
      of 20 seeded permutations), what lanes that ignore the melody would score.
    - ``sustained`` and ``chords``: the share of the onsets that are sustains / chords in the
      human and the generated chart, and the F-measure of the label over the matched onsets.
    - ``lane_moves`` and ``lane_returns`` (whole charts, not only the matched notes): the share
      of consecutive onsets whose lane changes, and of those after which the next onset goes
      straight back (a trill between two lanes), in the human and the generated chart.
    - ``lane_use`` (whole charts): the share of the notes in each lane, low to high, in both
      charts, and ``l1``, the sum of their absolute differences (0: the same spread; 2: no lane
      in common).
    """
    import mir_eval

    ref, est = onset_times(human), onset_times(generated)
    pairs = sorted(mir_eval.util.match_events(ref + shift_s, est, 0.05))
    if len(pairs) < 2:
        return {}
    hi, gi = np.array(pairs).T
    h_lane, h_chord, h_held = onset_shapes(human)
    g_lane, g_chord, g_held = onset_shapes(generated)
    follows = (np.diff(hi) == 1) & (np.diff(gi) == 1)
    h_move = np.sign(np.diff(h_lane[hi]))[follows]
    g_move = np.sign(np.diff(g_lane[gi]))[follows]
    rng = np.random.default_rng(0)
    chance = np.mean([np.mean(h_move == rng.permutation(g_move)) for _ in range(20)])

    def f1(a, b):
        return float(2 * np.sum(a & b) / max(a.sum() + b.sum(), 1))

    out = {"lane_motion": round(float(np.mean(h_move == g_move)), 4) if follows.any() else None,
           "lane_motion_chance": round(float(chance), 4) if follows.any() else None}
    for name, h, g in (("sustained", h_held, g_held), ("chords", h_chord, g_chord)):
        out[name] = {"human": round(float(h.mean()), 4), "generated": round(float(g.mean()), 4),
                     "f1": round(f1(h[hi], g[gi]), 4)}
    (h_moves, h_back), (g_moves, g_back) = lane_changes(h_lane), lane_changes(g_lane)
    out["lane_moves"] = {"human": round(h_moves, 4), "generated": round(g_moves, 4)}
    out["lane_returns"] = {"human": round(h_back, 4), "generated": round(g_back, 4)}
    h_use, g_use = lane_use(human), lane_use(generated)
    out["lane_use"] = {"human": [round(float(x), 4) for x in h_use],
                       "generated": [round(float(x), 4) for x in g_use],
                       "l1": round(float(np.abs(h_use - g_use).sum()), 4)}
    return out


def lane_use(notes, lanes: int = 7) -> np.ndarray:
    """Share of ``notes`` in each lane (a chord's notes each count), lanes 0..``lanes``-1."""
    return np.bincount([n.lane for n in notes], minlength=lanes)[:lanes] / max(len(notes), 1)


def lane_changes(lanes: np.ndarray) -> tuple[float, float]:
    """Of consecutive onsets (``lanes``: each onset's lane), the share whose lane changes, and the
    share of those changes that the next onset undoes (back to the lane before)."""
    moved = np.diff(lanes) != 0
    if moved.size < 2 or not moved[:-1].any():
        return float(moved.mean()) if moved.size else 0.0, 0.0
    back = moved[:-1] & moved[1:] & (lanes[2:] == lanes[:-2])
    return float(moved.mean()), float(back.sum() / moved[:-1].sum())


def best_shift_scores(reference: np.ndarray, estimate: np.ndarray) -> dict:
    """F (and P, R) at ±50 ms at the best shift of ``reference``, and F at ±100 ms there.

    F ±50 ms is flat over the range of shifts that keeps every match, and its maximum can sit at
    that range's edge, where a note or two more happen to fall in. So the human chart's offset
    (``offset_ms``) is that shift plus the median time difference of the notes matched there:
    the shift that puts the typical matched note on its human note. The timing spread is
    measured at that offset."""
    import mir_eval

    best = None
    for shift in SHIFTS_S:
        f, p, r = mir_eval.onset.f_measure(reference + shift, estimate, window=0.05)
        if best is None or f > best[0]:
            best = (f, p, r, float(shift))
    f, p, r, shift = best
    f100 = mir_eval.onset.f_measure(reference + shift, estimate, window=0.1)[0]
    matched = matched_differences(reference + shift, estimate)
    offset = shift + (float(np.median(matched)) if matched.size else 0.0)
    return {"f50": round(f, 4), "p50": round(p, 4), "r50": round(r, 4), "f100": round(f100, 4),
            "shift_ms": round(shift * 1000), "offset_ms": round(offset * 1000),
            "timing_ms": round(timing_spread(reference + offset, estimate) * 1000, 2)}


def matched_differences(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """``estimate - reference`` (s) of each pair of notes that match at ±50 ms."""
    import mir_eval

    pairs = mir_eval.util.match_events(reference, estimate, 0.05)
    return np.array([estimate[j] - reference[i] for i, j in pairs], dtype=np.float64)


def timing_spread(reference: np.ndarray, estimate: np.ndarray) -> float:
    """How far the notes that match (±50 ms) sit from the human ones once the song's constant
    offset is taken out: the median absolute deviation of their time differences (seconds).
    Human notes are on the chart's tempo grid, so this is also how evenly the generated notes
    are placed."""
    diff = matched_differences(reference, estimate)
    if diff.size == 0:
        return float("nan")
    return float(np.median(np.abs(diff - np.median(diff))))


def on_sixteenths(times: np.ndarray, tempo) -> float:
    """Share of ``times`` within :data:`ON_GRID_TICKS` of a 16th note of ``tempo`` (an
    :class:`analyzer.formats.tempo.TempoMap`): how many notes an export (notes.mid, .sm) puts on
    the grid a charting editor shows."""
    if times.size == 0:
        return float("nan")
    sixteenth = TICKS_PER_BEAT // 4
    ticks = np.array([tempo.tick_at(t) for t in times])
    off = np.abs((ticks + sixteenth / 2) % sixteenth - sixteenth / 2)
    return float(np.mean(off <= ON_GRID_TICKS))


def on_human_beats(beats: np.ndarray, human_beats: np.ndarray, *, window: int = 64) -> float:
    """Share of ``beats`` within :data:`ON_BEAT_S` of a beat of the human chart's tempo map
    (``human_beats``, split into as many as the chart counts in one: a human chart of a 190 BPM
    song in 95 BPM counts one beat for two), each run of ``window`` beats at its best constant
    offset (2 ms steps over a beat): whether the chart keeps the human's tempo and keeps it
    steady. Any offset, as two of the human maps here (Escape from chaosland, Metal madness) sit
    0.4 beat off their own notes, and one per run, as such an offset in seconds changes with the
    tempo (``--tempo-change``)."""
    if beats.size < 2 or human_beats.size < 2:
        return float("nan")
    per = max(1, round(float(np.median(np.diff(human_beats)) / np.median(np.diff(beats)))))
    k = np.arange(human_beats.size)
    human = np.interp(np.arange(0, k[-1] + 1e-9, 1 / per), k, human_beats)
    nearest = np.clip(np.searchsorted(human, beats), 1, human.size - 1)
    before, after = beats - human[nearest - 1], beats - human[nearest]
    period = float(np.median(np.diff(human)))
    held = 0
    for a in range(0, beats.size, window):
        b, c = before[a:a + window], after[a:a + window]
        held += max(int(np.count_nonzero(np.minimum(np.abs(b - shift), np.abs(c - shift))
                                         <= ON_BEAT_S))
                    for shift in np.arange(-period / 2, period / 2, 0.002))
    return held / beats.size


def mix_of(folder: Path) -> tuple[np.ndarray, int]:
    """Every stem of the song folder summed, mono, at the first stem's rate."""
    parts = song_parts(folder)
    return parts.mix, parts.sr


def faster_from(y: np.ndarray, sr: int, cut_s: float, factor: float) -> np.ndarray:
    """``y`` as it is up to ``cut_s``, then ``factor`` times as fast at the same pitch (ffmpeg's
    ``atempo``, a waveform-similarity overlap-add that keeps attacks sharp)."""
    cut = int(round(cut_s * sr))
    return np.concatenate([y[:cut], _ffmpeg_filtered(y[cut:], sr, f"atempo={factor}")])


def limited(y: np.ndarray, sr: int, gain_db: float) -> np.ndarray:
    """``y`` through a brickwall limiter with ``gain_db`` of input gain (a loud master)."""
    return _ffmpeg_filtered(y, sr, f"alimiter=level_in={10 ** (gain_db / 20):.4f}:limit=0.89:"
                                   "attack=5:release=50:level=disabled")


def _ffmpeg_filtered(y: np.ndarray, sr: int, audio_filter: str) -> np.ndarray:
    """Mono float ``y`` through one ffmpeg audio filter, at the same rate."""
    raw = _raw_audio(sr)
    return np.frombuffer(_ffmpeg([*raw, "-i", "pipe:0", "-filter:a", audio_filter, *raw, "pipe:1"],
                                 np.ascontiguousarray(y, dtype=np.float32).tobytes()), np.float32)


def encoded(y: np.ndarray, sr: int, codec: str) -> np.ndarray:
    """Mono float ``y`` encoded to a file with one of :data:`CODECS` and decoded again, at the
    same rate and length. As in a user's file, the audio is first brought under full scale
    (these mixes of two stems peak at up to +1.2 dB, which ffmpeg's AAC encoder clips), and
    through a file the decoder drops the encoder's priming samples (through a pipe, mp3 and AAC
    come back 23-25 ms late)."""
    y = y / max(1.0, float(np.abs(y).max()) / 0.99)
    raw = _raw_audio(sr)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / f"mix.{CODECS[codec][-1]}")
        _ffmpeg([*raw, "-i", "pipe:0", *CODECS[codec][:-1], path],
                np.ascontiguousarray(y, dtype=np.float32).tobytes())
        out = np.frombuffer(_ffmpeg(["-i", path, *raw, "pipe:1"], b""), np.float32)
    return np.pad(out, (0, max(0, len(y) - len(out))))[:len(y)]


def _raw_audio(sr: int) -> list[str]:
    """ffmpeg's options for mono float32 samples at ``sr`` through a pipe."""
    return ["-f", "f32le", "-ar", str(sr), "-ac", "1"]


def _ffmpeg(args: list[str], data: bytes) -> bytes:
    """ffmpeg with ``args``, ``data`` on its standard input; its standard output."""
    return subprocess.run(["ffmpeg", "-v", "error", *args], input=data, capture_output=True,
                          check=True).stdout


def moved_times(times, cut_s: float, factor: float):
    """Times (s) after ``cut_s`` where they fall once the audio there is ``factor`` times as
    fast."""
    return np.where(np.asarray(times) < cut_s, times, cut_s + (np.asarray(times) - cut_s) / factor)


def moved_notes(notes, cut_s: float, factor: float) -> tuple:
    """Human notes after ``cut_s`` where they fall once the audio there is ``factor`` times as
    fast (and their sustains that much shorter)."""
    def at(t):
        return float(moved_times(t, cut_s, factor))
    return tuple(dataclasses.replace(n, t=at(n.t), dur=at(n.t + n.dur) - at(n.t)) for n in notes)


def basic_pitch_scores(y: np.ndarray, sr: int, reference: np.ndarray) -> dict:
    """The alternative measured against onset detection: basic-pitch's notes on the mix."""
    from analyzer.notes import basic_pitch_session, transcribe

    wall = time.perf_counter()
    found = transcribe(y, sr, session=basic_pitch_session())
    wall = time.perf_counter() - wall
    scores = best_shift_scores(reference, onset_times(found))
    scores.update({"wall_s": round(wall, 3), "notes_per_s": round(
        onset_times(found).size / (len(y) / sr), 3)})
    return scores


def evaluate_song(folder: Path, *, with_basic_pitch: bool = False,
                  guitar_stem: float | None = None, tempo_change: float | None = None,
                  loud_master: float | None = None, codec: str | None = None) -> dict:
    from analyzer.charting import chart_notes
    from analyzer.stems import Stems

    parts = song_parts(folder)
    chart = parts.notes
    human = chart.difficulties
    if guitar_stem is not None and not parts.has_stem:
        raise SystemExit(f"{folder}: --guitar-stem needs the song's own {parts.stem} stem")
    guitar, backing, sr = parts.instrument, parts.rest, parts.sr
    change = {}
    human_beats = chart.beats(len(guitar) / sr + 1.0)
    if tempo_change is not None:
        cut_s = float(human_beats[np.argmin(np.abs(human_beats - len(guitar) / sr / 2))])
        guitar, backing = (faster_from(part, sr, cut_s, tempo_change) for part in (guitar, backing))
        n = min(len(guitar), len(backing))        # atempo's output length varies by a few ms
        guitar, backing = guitar[:n], backing[:n]
        human = {name: moved_notes(notes, cut_s, tempo_change) for name, notes in human.items()}
        human_beats = moved_times(human_beats, cut_s, tempo_change)
        change = {"tempo_change": {"at_s": round(cut_s, 3), "factor": tempo_change}}
    y = guitar + backing
    if loud_master is not None:
        y = limited(y, sr, loud_master)
    if codec is not None:
        y = encoded(y, sr, codec)
    duration = len(y) / sr
    stems = None
    if guitar_stem is not None:
        # What a separator's guitar stem might be: the rest of the mix leaking in at this gain.
        stems = Stems({"guitar": guitar + np.float32(guitar_stem) * backing}, sr, "demucs")
    wall, cpu = time.perf_counter(), time.process_time()
    generated = chart_notes(y, sr, stems=stems)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"song": folder.name, "duration_s": round(duration, 2),
              "chart_notes_wall_s": round(wall, 3), "chart_notes_cpu_s": round(cpu, 3),
              "realtime_factor": round(duration / wall, 1), "bpm": round(generated.bpm, 2),
              **change, "difficulties": {}}
    exported = TempoMap.from_beats(generated.beats, resolution=TICKS_PER_BEAT)
    harder: list[np.ndarray] = []
    for name in EVALUATED:
        ref = onset_times(human.get(name, ()))
        est = onset_times(generated.difficulties[name])
        copied = any(np.array_equal(ref, h) for h in harder)
        harder.append(ref)
        entry = best_shift_scores(ref, est) if ref.size else {}
        if ref.size:
            entry["feel"] = feel_scores(human[name], generated.difficulties[name],
                                        entry["offset_ms"] / 1000)
        if copied:
            entry["copied"] = True   # scored, left out of the means
        entry.update({"human_notes_per_s": round(ref.size / duration, 3),
                      "generated_notes_per_s": round(est.size / duration, 3),
                      "density_ratio": round(est.size / max(ref.size, 1), 3),
                      "on_sixteenths": round(on_sixteenths(est, exported), 4)})
        result["difficulties"][name] = entry
    result["tempo_map"] = {
        "changes": len(exported.ticks),
        "on_human_beats": round(on_human_beats(generated.beats, human_beats), 4),
        "human_bpm": round(60.0 / float(np.median(np.diff(human_beats))), 2)}
    if with_basic_pitch:
        result["basic_pitch_expert"] = basic_pitch_scores(y, sr, onset_times(human["expert"]))
    return result


def _mean_feel(rows: list[dict]) -> dict:
    """The means of :func:`feel_scores`' figures over the songs that have them."""
    feels = [row["feel"] for row in rows if row.get("feel", {}).get("lane_motion") is not None]
    if not feels:
        return {}
    out = {k: round(float(np.mean([f[k] for f in feels])), 4)
           for k in ("lane_motion", "lane_motion_chance")}
    for label in ("sustained", "chords", "lane_moves", "lane_returns", "lane_use"):
        out[label] = {k: np.round(np.mean([f[label][k] for f in feels], axis=0), 4).tolist()
                      for k in feels[0][label]}
    return out


def summary(results: list[dict]) -> dict:
    out = {}
    for name in EVALUATED:
        rows = [r["difficulties"][name] for r in results
                if "f50" in r["difficulties"][name] and not r["difficulties"][name].get("copied")]
        if rows:
            out[name] = {k: round(float(np.mean([row[k] for row in rows])), 4)
                         for k in ("f50", "f100", "density_ratio", "timing_ms",
                                   "on_sixteenths")}
            ratios = [row["density_ratio"] for row in rows]
            out[name].update({"songs": len(rows), "density_ratio_min": min(ratios),
                              "density_ratio_max": max(ratios), "feel": _mean_feel(rows)})
    maps = [r["tempo_map"] for r in results]
    out["tempo_map"] = {"changes": round(float(np.mean([m["changes"] for m in maps])), 2),
                        "changes_max": max(m["changes"] for m in maps),
                        "on_human_beats": round(float(np.nanmean([m["on_human_beats"]
                                                                   for m in maps])), 4)}
    total_audio = sum(r["duration_s"] for r in results)
    total_wall = sum(r["chart_notes_wall_s"] for r in results)
    bp = [r["basic_pitch_expert"] for r in results if "basic_pitch_expert" in r]
    if bp:
        audio_s = sum(r["duration_s"] for r in results)
        out["basic_pitch_expert"] = {
            "f50": round(float(np.mean([b["f50"] for b in bp])), 4),
            "s_per_3min": round(180.0 * sum(b["wall_s"] for b in bp) / audio_s, 2)}
    out["chart_notes_realtime_factor"] = round(total_audio / total_wall, 1)
    out["chart_notes_s_per_3min"] = round(180.0 * total_wall / total_audio, 2)
    return out


def table(report: dict) -> str:
    """A Markdown table of the report: per set, per song and the mean, F ±50 ms (density ratio)
    at every difficulty."""
    lines = ["| set | song | " + " | ".join(EVALUATED) + " |", "|---" * (2 + len(EVALUATED)) + "|"]

    def cell(entry):
        if "f50" not in entry:
            return "-"
        copied = ", copy: not in mean" if entry.get("copied") else ""
        return f"{entry['f50']:.3f} ({entry['density_ratio']:.2f}x{copied})"

    for set_name, part in report["sets"].items():
        for song in part["songs"]:
            lines.append(f"| {set_name} | {song['song']} | "
                         + " | ".join(cell(song["difficulties"][d]) for d in EVALUATED) + " |")
        mean = part["mean"]
        lines.append(f"| {set_name} | **mean** | "
                     + " | ".join(cell(mean.get(d, {})) for d in EVALUATED) + " |")
    return "\n".join(lines)


def tempo_table(report: dict) -> str:
    """A Markdown table of each song's exported tempo map: its tempo changes, and its beats on
    the human chart's beats (:func:`on_human_beats`)."""
    lines = ["| set | song | tempo, BPM: published (human) | tempo changes in the export "
             "| beats on the human beats (±10 ms) |",
             "|---|---|---|---|---|"]
    for set_name, part in report["sets"].items():
        for song in part["songs"]:
            m = song["tempo_map"]
            lines.append(f"| {set_name} | {song['song']} | {song['bpm']:.1f} "
                         f"({m['human_bpm']:.1f}) | {m['changes']} | {m['on_human_beats']:.2f} |")
        m = part["mean"]["tempo_map"]
        lines.append(f"| {set_name} | **mean** | | {m['changes']:.1f} (max {m['changes_max']}) | "
                     f"{m['on_human_beats']:.2f} |")
    return "\n".join(lines)


def feel_table(report: dict) -> str:
    """A Markdown table of the means of :func:`feel_scores` per set and difficulty."""
    lines = ["| set | difficulty | lane motion (chance) | lane moves, straight back: human / "
             "generated | lane use: human / generated (L1) | sustained: human / generated, F1 "
             "| chords: human / generated, F1 |", "|---" * 7 + "|"]
    for set_name, part in report["sets"].items():
        for name in EVALUATED:
            feel = part["mean"].get(name, {}).get("feel")
            if not feel:
                continue
            held, chords = feel["sustained"], feel["chords"]
            moves, back, use = feel["lane_moves"], feel["lane_returns"], feel["lane_use"]
            spread = " / ".join(" ".join(f"{x:.2f}" for x in use[k][:5])
                                for k in ("human", "generated"))
            lines.append(
                f"| {set_name} | {name} | {feel['lane_motion']:.2f} "
                f"({feel['lane_motion_chance']:.2f}) | {moves['human']:.2f}, {back['human']:.2f}"
                f" / {moves['generated']:.2f}, {back['generated']:.2f} | {spread} "
                f"({use['l1']:.2f}) | {held['human']:.2f} / "
                f"{held['generated']:.2f}, {held['f1']:.2f} | {chords['human']:.2f} / "
                f"{chords['generated']:.2f}, {chords['f1']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("songs_pos", nargs="?", metavar="SONGS_DIR",
                        help="folder of song folders (same as --songs)")
    parser.add_argument("--songs", help="folder of song folders (overrides --set)")
    parser.add_argument("--set", dest="song_set", choices=("bench", "dev", "both"),
                        default="bench", help="benchmark songs, development songs, or both")
    parser.add_argument("--json-out", help="also write the JSON here")
    parser.add_argument("--basic-pitch", action="store_true",
                        help="also score basic-pitch's notes (ONNX) on the mix against Expert")
    parser.add_argument("--guitar-stem", type=float, metavar="BLEED",
                        help="chart as with a separator's guitar stem (the Demucs path): "
                             "guitar.ogg plus the rest of the song at gain BLEED (0: perfect)")
    parser.add_argument("--tempo-change", type=float, metavar="FACTOR",
                        help="change each song's tempo halfway: from the middle on, FACTOR times "
                             "as fast (1.25: 25 %% faster; 0.8: slower), the human notes moved too")
    parser.add_argument("--loud-master", type=float, metavar="DB",
                        help="put each mix through a brickwall limiter with DB of input gain "
                             "first (a loud commercial master; 4 or 8: crest factor about 9.4 "
                             "or 8.7 dB, against 13-15 dB for the songs as mixed)")
    parser.add_argument("--codec", choices=sorted(CODECS),
                        help="encode and decode each mix first, as a user's file: mp3 or aac at "
                             "128 kbit/s, opus at 96 kbit/s")
    parser.add_argument("--table", action="store_true",
                        help="also print Markdown tables to stderr: F ±50 ms (density ratio); "
                             "lane motion, sustains and chords; the exported tempo map")
    args = parser.parse_args(argv)
    explicit = args.songs or args.songs_pos
    if explicit:
        roots = {"songs": songs_dir(explicit)}
    else:
        roots = {name: (songs_dir() if name == "bench" else dev_songs_dir())
                 for name in (("dev", "bench") if args.song_set == "both" else (args.song_set,))}
    if args.tempo_change is not None and not 0.5 <= args.tempo_change <= 2.0:
        parser.error("--tempo-change must be 0.5..2")
    report = {"benchmark": "chart_quality", "guitar_stem_bleed": args.guitar_stem,
              "tempo_change": args.tempo_change, "loud_master_db": args.loud_master,
              "codec": args.codec, "sets": {}}
    for name, root in roots.items():
        folders = song_folders(root)
        results = [evaluate_song(f, with_basic_pitch=args.basic_pitch,
                                 guitar_stem=args.guitar_stem, tempo_change=args.tempo_change,
                                 loud_master=args.loud_master, codec=args.codec)
                   for f in folders]
        report["sets"][name] = {"songs_dir": str(root), "songs": results,
                                "mean": summary(results)}
    text = json.dumps(report)
    print(text)
    if args.table:
        print(table(report), file=sys.stderr)
        print(feel_table(report), file=sys.stderr)
        print(tempo_table(report), file=sys.stderr)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
