"""StepMania ``.sm`` export (``dance-single``: 4 lanes).

- Lanes are folded to 4 with :func:`~chart_store.chart.fold_lanes` (edges stay edges; chord
  notes that meet on a lane merge).
- The tempo map comes from the chart's beats (:meth:`TempoMap.from_beats`): ``#OFFSET`` is 0
  (beat 0 is the start of the audio) and ``#BPMS`` has one entry per tempo change.
- Notes sit on StepMania's finest grid, 192nd notes (48 rows a beat), so a note moves by at most
  1/96 of a beat (5 ms at 120 BPM). Each 4-beat measure is written with the fewest rows of
  4, 8, 12, 16, 24, 32, 48, 64, 192 that hold its notes exactly.
- Sustains are holds (``2`` head, ``3`` tail), cut one row before the next note of their lane.
- Difficulties map easy/medium/hard/expert → Easy/Medium/Hard/Challenge; the meter is twice the
  notes per second, 1..20.
"""
from __future__ import annotations

from chart_store.chart import Chart, fold_lanes

from .common import LOOPJAM_CHARTER, FormatError, charter_credit
from .tempo import TempoMap

__all__ = ["export_sm", "SM_DIFFICULTIES", "ROWS_PER_BEAT"]

SM_DIFFICULTIES = {"easy": "Easy", "medium": "Medium", "hard": "Hard", "expert": "Challenge"}
ROWS_PER_BEAT = 48
_MEASURE = 4 * ROWS_PER_BEAT
_SUBDIVISIONS = (4, 8, 12, 16, 24, 32, 48, 64, 192)
SM_LANES = 4


def _text(value: str) -> str:
    """A tag value StepMania's parser cannot misread (no ``;``, ``:``, ``#``, newlines)."""
    return " ".join(value.replace(";", ",").replace(":", " -").replace("#", "").split())


def _rows(chart: Chart, difficulty: str, tempo: TempoMap) -> dict[int, list[str]]:
    """Row (192nds from beat 0) → the 4 column characters."""
    notes = fold_lanes(chart.track(difficulty).notes, lanes=chart.lanes, to_lanes=SM_LANES)
    heads: dict[tuple[int, int], int] = {}  # (row, lane) → tail row (== row for a tap)
    for note in notes:
        if note.t < 0:
            raise FormatError(f"{difficulty}: note at {note.t:.3f}s is before the song start")
        row = round(tempo.tick_at(note.t))
        tail = round(tempo.tick_at(note.end)) if note.dur > 0 else row
        heads[(row, note.lane)] = max(tail, heads.get((row, note.lane), row))
    rows: dict[int, list[str]] = {}
    next_head: dict[int, int] = {}
    for (row, lane), tail in sorted(heads.items(), reverse=True):
        if lane in next_head:
            tail = min(tail, next_head[lane] - 1)
        next_head[lane] = row
        rows.setdefault(row, ["0"] * SM_LANES)[lane] = "2" if tail > row else "1"
        if tail > row:
            rows.setdefault(tail, ["0"] * SM_LANES)[lane] = "3"
    return rows


def _measures(rows: dict[int, list[str]]) -> str:
    count = max(rows) // _MEASURE + 1 if rows else 1
    by_measure: dict[int, list[int]] = {}
    for row in rows:
        by_measure.setdefault(row // _MEASURE, []).append(row % _MEASURE)
    blocks = []
    for m in range(count):
        used = by_measure.get(m, [])
        per = next(n for n in _SUBDIVISIONS if all(u % (_MEASURE // n) == 0 for u in used))
        step = _MEASURE // per
        blocks.append("\n".join("".join(rows.get(m * _MEASURE + k * step, ["0"] * SM_LANES))
                                for k in range(per)))
    return "\n,\n".join(blocks) + "\n;"


def export_sm(chart: Chart, *, music: str = "song.ogg") -> str:
    """The text of a StepMania ``.sm`` file holding every difficulty of ``chart``.

    Parameters
    ----------
    chart : Chart
    music : str
        File name of the song's audio beside the ``.sm`` ("" for none).

    Raises
    ------
    FormatError
        A note before 0 s.

    Examples
    --------
    >>> import numpy as np
    >>> from chart_store.chart import ChartMeta, Note
    >>> chart = Chart(ChartMeta("Song"), {"easy": (Note(1.0, lane=4),)}, beats=np.arange(8) * .5)
    >>> print(export_sm(chart).split("#NOTES:")[1].splitlines()[8])
    0001
    """
    tempo = TempoMap.from_beats(chart.beats, resolution=ROWS_PER_BEAT)
    bpms = ",".join(f"{beat:.6f}={bpm:.6f}" for beat, bpm in tempo.bpm_changes())
    meta = chart.meta
    head = [f"#TITLE:{_text(meta.title)};", f"#ARTIST:{_text(meta.artist)};",
            f"#GENRE:{_text(meta.genre)};",
            f"#CREDIT:{_text(charter_credit(meta) or LOOPJAM_CHARTER)};",
            f"#MUSIC:{_text(music)};", "#OFFSET:0.000000;",
            f"#BPMS:{bpms};", "#STOPS:;", "#SELECTABLE:YES;", ""]
    body = []
    for difficulty, track in chart.difficulties.items():
        meter = max(1, min(20, round(2 * track.density())))
        body.append("\n".join([
            f"//---------------dance-single - {SM_DIFFICULTIES[difficulty]}----------------",
            "#NOTES:", "     dance-single:", "     LoopJam:",
            f"     {SM_DIFFICULTIES[difficulty]}:", f"     {meter}:",
            "     0.000,0.000,0.000,0.000,0.000:",
            _measures(_rows(chart, difficulty, tempo)), ""]))
    return "\n".join(head) + "\n".join(body)
