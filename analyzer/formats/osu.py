"""osu!mania ``.osu`` export (file format v14), one file per difficulty.

- ``CircleSize`` is the key count = the chart's lanes (osu!mania plays 4-7 keys as they are).
- Lane ``i`` of ``k`` is written at ``x = floor((i + 0.5) * 512 / k)``, which osu! reads back as
  column ``floor(x * k / 512) = i``.
- Times are whole milliseconds (what the format stores): a note moves by at most 0.5 ms.
- Sustains are hold notes (type 128, ``endTime`` in the object parameters), cut 1 ms before the
  next note of their lane; taps are hit circles (type 1).
- One uninherited timing point per tempo change of the chart's beats
  (:meth:`TempoMap.from_beats`), so the editor's beat snap follows the song.
"""
from __future__ import annotations

from chart_store.chart import Chart

from .common import LOOPJAM_CHARTER, FormatError, charter_credit
from .tempo import TempoMap

__all__ = ["export_osu", "lane_x"]


def lane_x(lane: int, keys: int) -> int:
    """The x position (0..511) osu!mania reads as column ``lane`` of ``keys``."""
    return int((2 * lane + 1) * 512 // (2 * keys))


def _text(value: str) -> str:
    return " ".join(value.split())


def export_osu(chart: Chart, difficulty: str, *, audio: str = "song.ogg") -> str:
    """The text of an osu!mania beatmap of one difficulty of ``chart``.

    Raises
    ------
    FormatError
        A note before 0 s; KeyError for a difficulty the chart lacks.

    Examples
    --------
    >>> from chart_store.chart import ChartMeta, Note
    >>> chart = Chart(ChartMeta("Song"), {"expert": (Note(1.0, 0.5, lane=2),)})
    >>> export_osu(chart, "expert").splitlines()[-1]
    '256,192,1000,128,0,1500:0:0:0:0:'
    """
    keys = chart.lanes
    objects: dict[tuple[int, int], int] = {}  # (time ms, lane) → end ms (== time for a tap)
    for note in chart.track(difficulty):
        if note.t < 0:
            raise FormatError(f"{difficulty}: note at {note.t:.3f}s is before the song start")
        start = round(note.t * 1000)
        end = round(note.end * 1000) if note.dur > 0 else start
        objects[(start, note.lane)] = max(end, objects.get((start, note.lane), start))
    lines, next_start = [], {}
    for (start, lane), end in sorted(objects.items(), key=lambda o: (-o[0][0], o[0][1])):
        if lane in next_start:
            end = min(end, next_start[lane] - 1)
        next_start[lane] = start
        x = lane_x(lane, keys)
        lines.append(f"{x},192,{start},128,0,{end}:0:0:0:0:" if end > start
                     else f"{x},192,{start},1,0,0:0:0:0:")
    lines.reverse()

    tempo = TempoMap.from_beats(chart.beats)
    timing = [f"{round(t * 1000)},{b * 1000!r},4,1,0,100,1,0"
              for t, b in zip(tempo.segment_starts(), tempo.beat_s)]
    meta = chart.meta
    return "\n".join([
        "osu file format v14", "",
        "[General]", f"AudioFilename: {audio}", "AudioLeadIn: 0", "PreviewTime: -1",
        "Countdown: 0", "SampleSet: Soft", "StackLeniency: 0.7", "Mode: 3",
        "LetterboxInBreaks: 0", "SpecialStyle: 0", "WidescreenStoryboard: 0", "",
        "[Metadata]", f"Title:{_text(meta.title)}", f"TitleUnicode:{_text(meta.title)}",
        f"Artist:{_text(meta.artist)}", f"ArtistUnicode:{_text(meta.artist)}",
        f"Creator:{_text(charter_credit(meta) or LOOPJAM_CHARTER)}",
        f"Version:{difficulty.capitalize()}", f"Source:{_text(meta.album)}",
        f"Tags:{_text(f'loopjam {meta.genre}')}", "BeatmapID:0", "BeatmapSetID:-1", "",
        "[Difficulty]", "HPDrainRate:8", f"CircleSize:{keys}", "OverallDifficulty:8",
        "ApproachRate:5", "SliderMultiplier:1.4", "SliderTickRate:1", "",
        "[Events]", "//Background and Video events", "//Break Periods", "",
        "[TimingPoints]", *timing, "",
        "[HitObjects]", *lines])
