"""``notes.chart``: the text chart format of FeedBack / Moonscraper / Clone Hero, read.

A ``.chart`` has ``[Section]`` headers each followed by a ``{ ... }`` block of ``key = value``
lines. What is read:

- ``[Song]``: ``Resolution`` (ticks a beat, default 192), ``Offset`` (seconds; higher = later
  notes, the same sense as song.ini ``delay``, which wins when set), ``Name``/``Artist``/``Album``
  (used when there is no song.ini).
- ``[SyncTrack]``: ``tick = B milli-BPM`` tempo changes and ``tick = TS numerator [k]`` time
  signatures (a ``1 / 2^k`` note a beat, k 2 when absent); ``A`` anchors do not change times and
  are skipped.
- ``[<Difficulty><Instrument>]`` with Difficulty Expert/Hard/Medium/Easy and Instrument, in the
  order one is chosen: Single (guitar), GHLGuitar (6-fret guitar), DoubleGuitar (co-op),
  DoubleRhythm, DoubleBass, Keyboard, GHLRhythm, GHLBass. Notes are ``tick = N fret length``:
  frets 0-4 are lanes 0-4 (6-fret: 0-2 white 1-3 → lanes 0-2, 3-4 black 1-2 → lanes 3-4, 8 black
  3 → lane 5); an open note (7: a strum with no fret held) is a lane-0 note, as in
  :mod:`.midi`; modifiers (5, 6) are skipped.
- Phrases, from the hardest section read: star power ``tick = S 2 length``, and a solo from
  ``tick = E solo`` to ``tick = E soloend``; other ``S`` and ``E`` lines are skipped.
- Sustains: ``length`` ticks, no cutoff unless song.ini sets ``sustain_cutoff_threshold`` (the
  Clone Hero rule for .chart).

Malformed lines in the sections read raise :class:`FormatError` naming the line; unknown sections
are ignored.
"""
from __future__ import annotations

import math

from chart_store.chart import Note, Phrase, sorted_notes

from .common import FormatError, HumanChart, decode_text, phrase_between, time_signatures_at
from .tempo import TempoMap

__all__ = ["parse_chart_text", "CHART_INSTRUMENTS"]

#: Section instrument suffix → (instrument, lanes), in the order one is chosen.
CHART_INSTRUMENTS = {
    "Single": ("guitar", 5), "GHLGuitar": ("guitar", 6), "DoubleGuitar": ("guitar_coop", 5),
    "DoubleRhythm": ("rhythm", 5), "DoubleBass": ("bass", 5), "Keyboard": ("keys", 5),
    "GHLRhythm": ("rhythm", 6), "GHLBass": ("bass", 6),
}
_DIFFICULTIES = {"Expert": "expert", "Hard": "hard", "Medium": "medium", "Easy": "easy"}
_FRET_LANES = {5: {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 7: 0},
               6: {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 8: 5, 7: 0}}
DEFAULT_RESOLUTION = 192


def _sections(text: str, name: str) -> dict[str, list[tuple[int, str, str]]]:
    """Section name → [(line number, key, value)]."""
    sections, current, open_ = {}, None, False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]") and not open_:
            current = line[1:-1].strip()
            sections.setdefault(current, [])
        elif line == "{" and current is not None and not open_:
            open_ = True
        elif line == "}" and open_:
            open_, current = False, None
        elif open_ and "=" in line:
            key, _, value = line.partition("=")
            sections[current].append((number, key.strip(), value.strip()))
        else:
            raise FormatError(f"{name} line {number}: unexpected {line[:40]!r}")
    if open_:
        raise FormatError(f"{name}: section [{current}] is never closed (truncated file?)")
    return sections


def _tick(value: str, name: str, number: int) -> int:
    try:
        tick = int(value)
    except ValueError:
        raise FormatError(f"{name} line {number}: {value!r} is not a tick number") from None
    if tick < 0:
        raise FormatError(f"{name} line {number}: negative tick {tick}")
    return tick


def parse_chart_text(data: bytes, *, name: str = "notes.chart", offset_s: float | None = None,
                     sustain_cutoff_ticks: int | None = None,
                     instrument: str | None = None) -> HumanChart:
    """Parse the bytes of a ``.chart`` file into a :class:`HumanChart`.

    Parameters
    ----------
    data : bytes
        The file's content (UTF-8/UTF-16 with BOM, UTF-8, or Windows-1252).
    name : str
        File name for error messages.
    offset_s : float or None
        Seconds added to every time; None = the file's ``[Song] Offset``.
    sustain_cutoff_ticks : int or None
        Notes this long or shorter are taps; None = no cutoff (only length 0 is a tap).
    instrument : str or None
        Chart this instrument instead of the first found.

    Returns
    -------
    HumanChart
        With ``tags`` holding the ``[Song]`` entries (quotes removed).

    Examples
    --------
    >>> text = b'[Song]\\n{\\n Resolution = 192\\n}\\n[SyncTrack]\\n{\\n 0 = B 120000\\n}\\n' \\
    ...        b'[ExpertSingle]\\n{\\n 384 = N 2 0\\n}\\n'
    >>> note = parse_chart_text(text).difficulties["expert"][0]
    >>> note.t, note.lane
    (1.0, 2)
    """
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FormatError(f"{name}: not a text .chart file (binary data)")
    text = decode_text(data)
    sections = _sections(text, name)
    if "Song" not in sections:
        raise FormatError(f"{name}: not a .chart file (no [Song] section)")
    tags = {key: value.strip('"') for _, key, value in sections["Song"]}
    try:
        resolution = int(float(tags.get("Resolution", DEFAULT_RESOLUTION)))
        file_offset = float(tags.get("Offset", 0) or 0)
        if not math.isfinite(file_offset):
            raise ValueError
    except (ValueError, OverflowError):
        raise FormatError(f"{name}: [Song] Resolution/Offset is not a number") from None
    if resolution <= 0:
        raise FormatError(f"{name}: [Song] Resolution must be > 0, got {resolution}")

    changes, metres, last_tick = [], [], 0
    for number, key, value in sections.get("SyncTrack", []):
        kind, _, rest = value.partition(" ")
        if kind == "TS":
            try:
                numerator, exponent = (int(v) for v in (rest.split() + ["2"])[:2])
            except ValueError:
                raise FormatError(f"{name} line {number}: bad time signature {value!r}") from None
            metres.append((_tick(key, name, number), numerator,
                           2 ** exponent if 0 <= exponent <= 7 else 0, f"{name} line {number}"))
        elif kind == "B":
            tick = _tick(key, name, number)
            try:
                milli_bpm = float(rest.split()[0])
            except (ValueError, IndexError):
                raise FormatError(f"{name} line {number}: bad tempo {value!r}") from None
            if not 0 < milli_bpm < math.inf:
                raise FormatError(f"{name} line {number}: tempo must be > 0, got {value!r}")
            changes.append((tick, 60000.0 / milli_bpm))
            last_tick = max(last_tick, tick)
    tempo = TempoMap.from_changes(resolution, changes)

    chosen = None
    for suffix, (instrument_name, lanes) in CHART_INSTRUMENTS.items():
        if instrument is not None and instrument_name != instrument:
            continue
        present = {diff: sections[prefix + suffix] for prefix, diff in _DIFFICULTIES.items()
                   if sections.get(prefix + suffix)}
        if present:
            chosen = (instrument_name, lanes, present)
            break
    if chosen is None:
        wanted = f"{instrument} " if instrument else ""
        raise FormatError(f"{name}: no {wanted}notes (no [ExpertSingle]-like section of N lines)")
    instrument_name, lanes, present = chosen

    offset = file_offset if offset_s is None else offset_s
    cutoff = sustain_cutoff_ticks or 0
    stem = HumanChart(instrument_name, lanes, tempo).stem
    difficulties = {}
    for difficulty, lines in present.items():
        notes = []
        for number, key, value in lines:
            parts = value.split()
            if not parts or parts[0] != "N":
                continue
            tick = _tick(key, name, number)
            try:
                fret, length = int(parts[1]), int(parts[2])
            except (ValueError, IndexError):
                raise FormatError(f"{name} line {number}: bad note {value!r}") from None
            last_tick = max(last_tick, tick + max(length, 0))
            lane = _FRET_LANES[lanes].get(fret)
            if lane is None:
                continue
            t = tempo.seconds(tick)
            dur = tempo.seconds(tick + length) - t if length > cutoff else 0.0
            notes.append(Note(t + offset, dur, lane, None, stem))
        if notes:
            difficulties[difficulty] = sorted_notes(notes)
    if not difficulties:
        raise FormatError(f"{name}: the {instrument_name} sections hold no notes")
    hardest = next(present[d] for d in ("expert", "hard", "medium", "easy") if d in present)
    return HumanChart(instrument_name, lanes, tempo, difficulties, offset,
                      tempo.seconds(last_tick) + offset, tags,
                      _phrases(hardest, tempo, offset, name),
                      time_signatures_at(metres, tempo, offset))


def _phrases(lines, tempo: TempoMap, offset: float, name: str) -> tuple[Phrase, ...]:
    """The star power and solo phrases of one difficulty section's lines (see the module
    docs), in seconds of the audio."""
    out, solo_from = [], None
    for number, key, value in lines:
        parts = value.split()
        if parts[:2] == ["S", "2"]:
            tick = _tick(key, name, number)
            try:
                length = max(int(parts[2]), 0)
            except (ValueError, IndexError):
                raise FormatError(f"{name} line {number}: bad star power {value!r}") from None
            out.append(phrase_between("star_power", tick, tick + length, tempo, offset))
        elif parts == ["E", "solo"]:
            solo_from = _tick(key, name, number)
        elif parts == ["E", "soloend"] and solo_from is not None:
            out.append(phrase_between("solo", solo_from, _tick(key, name, number), tempo,
                                      offset))
            solo_from = None
    return tuple(out)

