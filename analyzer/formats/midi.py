"""``notes.mid``: Frets on Fire / Clone Hero / Rock Band style MIDI charts, read and written.

Reading
-------
- **Instrument**: tracks are named ``PART GUITAR`` (or GH1's ``T1 GEMS``, or ``PART LEAD``),
  ``PART GUITAR GHL`` (6-fret), ``PART GUITAR COOP``, ``PART RHYTHM``, ``PART BASS``,
  ``PART KEYS``, ``PART RHYTHM GHL``, ``PART BASS GHL``. The first one that holds notes, in that
  order (guitar first), is charted. Files from the first Frets on Fire days have one unnamed
  (or otherwise named) track: when no known part has notes, the first track with notes in the
  fret ranges is guitar, unless its name is another instrument's or the show's (``PART
  DRUMS``, ``PART VOCALS``..., ``EVENTS``, ``VENUE``, ``BEAT``, ``HARM1``...: see
  :data:`OTHER_TRACKS`), whose notes 60-100 mean something else.
- **Difficulties** (5-fret): Expert 96-100, Hard 84-88, Medium 72-76, Easy 60-64, lowest note =
  lane 0 (green). 6-fret: Expert 95-100 (white 1-3, then black 1-3 → lanes 0-5), Hard 83-88,
  Medium 71-76, Easy 59-64. An open note (a strum with no fret held: the note under lane 0's,
  95/83/71/59 on 5-fret in a track with an ``ENHANCED_OPENS`` text event, 94/82/70/58 on 6-fret)
  is a lane-0 note: an open string is the lowest a guitarist plays, and an open note marked by
  Phase Shift's SysEx (a green note in an "open" phrase) reads there too. Force/tap markers,
  other text events and SysEx are ignored (they change how a note is played, not when).
- **Phrases**: the part's note 116 marks star power and 103 a solo (Rock Band, Clone Hero); in
  Guitar Hero 1's ``T1 GEMS`` track 103 marks star power (it had no solo marks).
- **Times**: every ``set_tempo`` of every track forms the tempo map (120 BPM until the first one);
  note times are exact seconds from it, plus the song.ini ``delay``. Every ``time_signature``
  of every track is kept as the chart's (one per tick, the last read).
- **Chords** are notes on the same tick, or less than :data:`CHORD_SNAP_TICKS` after the chord's
  first note, as YARG reads them. A note-on for a pitch already sounding ends the previous
  one there; a note never switched off is a tap.
- **Sustains** follow Clone Hero/YARG: a note whose length is at most the sustain cutoff is a tap
  (duration 0), a longer one a sustain of its exact length in seconds. The cutoff is the song.ini
  ``sustain_cutoff_threshold`` (ticks) when set, else a 1/12 step, i.e. ``resolution // 3``
  ticks (160 at 480 ticks a beat) — so a DAW-drawn 16th note stays a tap.

Writing
-------
:func:`export_midi` writes a type-1 file: a tempo track (``set_tempo`` per tempo segment from
the chart's beats, see :meth:`TempoMap.from_beats`; the chart's time signatures, 4/4 from the
start when it has none there) and one part's track with every difficulty: ``PART GUITAR``, or
the part the notes' stem names (:func:`part_name`: an imported bass chart
is ``PART BASS``), ``... GHL`` for 6-lane charts; 7-lane charts are folded to 5; the chart's
phrases as notes 116 (star power) and 103 (solo). Taps are
written shorter than the sustain cutoff, sustains at their length; the cutoff to put in song.ini
is returned, so reading the file back gives the same notes.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from chart_store.chart import Chart, Note, Phrase, TimeSignature, fold_lanes, sorted_notes

from .common import FormatError, HumanChart, phrase_between, time_signatures_at
from .tempo import TempoMap

__all__ = ["parse_midi", "frets_for", "part_name", "export_midi", "MidiExport", "PARTS",
           "OTHER_TRACKS", "DIFFICULTY_BASES", "EXPORT_RESOLUTION", "CHORD_SNAP_TICKS",
           "PHRASE_NOTES"]

#: A part track's notes that mark phrases (:class:`chart_store.chart.Phrase` kinds).
PHRASE_NOTES = {116: "star_power", 103: "solo"}
#: Guitar Hero 1's track, whose note 103 is star power.
OLD_STAR_POWER_TRACK = "T1 GEMS"

#: Known instrument tracks in the order one is chosen: name → (instrument, lanes).
PARTS = {
    "PART GUITAR": ("guitar", 5), "T1 GEMS": ("guitar", 5), "PART LEAD": ("guitar", 5),
    "PART GUITAR GHL": ("guitar", 6), "PART GUITAR COOP": ("guitar_coop", 5),
    "PART RHYTHM": ("rhythm", 5), "PART BASS": ("bass", 5), "PART KEYS": ("keys", 5),
    "PART RHYTHM GHL": ("rhythm", 6), "PART BASS GHL": ("bass", 6),
}
#: Names of tracks that are not a fretted part: other instruments' (Rock Band / Clone Hero
#: ``PART DRUMS``, ``PART VOCALS``, ``PART REAL_GUITAR``...: every ``PART`` not in :data:`PARTS`)
#: and the show's. Their notes in the fret ranges are drum pads, vocal pitches or lights. Whole
#: names, not starts: an old one-track file may be named after its song ("Beat It", "Part of
#: Me"), and its notes are the guitar's.
OTHER_TRACKS = re.compile(r"PART [A-Z0-9_]+( GHL)?|EVENTS|VENUE|BEAT|HARM[1-3]|BAND [A-Z]+"
                          r"|TRIGGERS|ANIM")
#: MIDI note of lane 0 of each difficulty, per fret count.
DIFFICULTY_BASES = {5: {"expert": 96, "hard": 84, "medium": 72, "easy": 60},
                    6: {"expert": 95, "hard": 83, "medium": 71, "easy": 59}}
EXPORT_RESOLUTION = 480
#: Note-ons of one difficulty fewer ticks apart than this are one chord (as YARG reads MIDI).
CHORD_SNAP_TICKS = 16


def _load(data: bytes, name: str):
    import mido
    try:
        mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except (EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as error:
        reason = str(error) or type(error).__name__
        raise FormatError(f"{name}: not a readable MIDI file ({reason})") from None
    if mid.type == 2:
        raise FormatError(f"{name}: MIDI type 2 (sequential patterns) is not a chart")
    if mid.ticks_per_beat <= 0:
        raise FormatError(f"{name}: SMPTE time division is not supported by chart files")
    return mid


def _track_name(track) -> str:
    for msg in track:
        if msg.type == "track_name":
            return msg.name.strip().upper()
    return ""


def _raw_notes(track) -> list[tuple[int, int, int]]:
    """(start tick, end tick, MIDI note) of every note of the track; end = start if unterminated."""
    tick, sounding, notes = 0, {}, []
    for msg in track:
        tick += msg.time
        if msg.type not in ("note_on", "note_off"):
            continue
        if msg.note in sounding:  # an off, or a re-attack that ends the previous note
            notes.append((sounding.pop(msg.note), tick, msg.note))
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[msg.note] = tick
    notes += [(start, start, note) for note, start in sounding.items()]
    return notes


def _enhanced_opens(track) -> bool:
    """Whether a 5-fret track marks open notes by note number (Clone Hero's ``ENHANCED_OPENS``)."""
    return any(msg.type == "text" and msg.text.strip().strip("[]").strip() == "ENHANCED_OPENS"
               for msg in track)


def _by_difficulty(raw, lanes: int, *, opens: bool) -> dict[str, list[tuple[int, int, int]]]:
    """Each difficulty's (start, end, lane); ``opens``: the note under lane 0's is an open note,
    charted on lane 0. A note starting less than :data:`CHORD_SNAP_TICKS` after the first note
    of its chord starts with it: a chord drawn by hand or recorded from a controller is spread
    over a few ticks, and YARG plays it as one chord."""
    out = {}
    for difficulty, base in DIFFICULTY_BASES[lanes].items():
        low = base - 1 if opens else base
        hits, chord = [], -CHORD_SNAP_TICKS
        for s, e, n in sorted(h for h in raw if low <= h[2] < base + lanes):
            if s >= chord + CHORD_SNAP_TICKS:
                chord = s
            hits.append((chord, e, max(n - base, 0)))
        if hits:
            out[difficulty] = hits
    return out


def parse_midi(data: bytes, *, name: str = "notes.mid", offset_s: float = 0.0,
               sustain_cutoff_ticks: int | None = None,
               instrument: str | None = None) -> HumanChart:
    """Parse the bytes of a MIDI chart into a :class:`HumanChart`.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        File name for error messages.
    offset_s : float
        Seconds added to every time (song.ini ``delay``; higher = later notes).
    sustain_cutoff_ticks : int or None
        Notes this long or shorter are taps; None = ``resolution // 3`` (see the module docs).
    instrument : str or None
        Chart this instrument ("guitar", "bass"...) instead of the first found.

    Raises
    ------
    FormatError
        Not a MIDI file, truncated, or no playable notes.

    Examples
    --------
    >>> chart = parse_midi(open("notes.mid", "rb").read())  # doctest: +SKIP
    >>> chart.instrument, len(chart.difficulties["expert"])  # doctest: +SKIP
    ('guitar', 1123)
    """
    mid = _load(data, name)
    resolution = mid.ticks_per_beat
    changes, metres, last_tick = [], {}, 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and msg.tempo > 0:
                changes.append((tick, msg.tempo / 1e6))
            elif msg.type == "time_signature":   # one a tick: the last read
                metres[tick] = (tick, msg.numerator, msg.denominator, name)
        last_tick = max(last_tick, tick)
    tempo = TempoMap.from_changes(resolution, changes)

    candidates = []  # (priority, instrument, lanes, notes by difficulty, named, phrases)
    order = list(PARTS)
    for index, track in enumerate(mid.tracks):
        track_name = _track_name(track)
        part = PARTS.get(track_name)
        if part is None and OTHER_TRACKS.fullmatch(track_name):
            continue
        priority = order.index(track_name) if part else len(order) + index
        instrument_name, lanes = part if part else ("guitar", 5)
        raw = _raw_notes(track)
        notes = _by_difficulty(raw, lanes, opens=lanes == 6 or _enhanced_opens(track))
        if notes:
            candidates.append((priority, instrument_name, lanes, notes, bool(part),
                               _phrases(raw, track_name, tempo, offset_s)))
    if any(c[4] for c in candidates):  # named parts exist: unnamed tracks are something else
        candidates = [c for c in candidates if c[4]]
    if instrument is not None:
        candidates = [c for c in candidates if c[1] == instrument]
    if not candidates:
        wanted = f"{instrument} " if instrument else ""
        raise FormatError(f"{name}: no {wanted}notes in any chart track "
                          f"(expected {', '.join(order[:2])}... with notes 60-100)")
    _, instrument_name, lanes, raw, _, phrases = min(candidates, key=lambda c: c[0])

    cutoff = resolution // 3 if sustain_cutoff_ticks is None else sustain_cutoff_ticks
    stem = HumanChart(instrument_name, lanes, tempo).stem
    difficulties = {}
    for difficulty, hits in raw.items():
        notes = []
        for start, end, lane in hits:
            t = tempo.seconds(start)
            dur = tempo.seconds(end) - t if end - start > cutoff else 0.0
            notes.append(Note(t + offset_s, dur, lane, None, stem))
        difficulties[difficulty] = sorted_notes(notes)
    return HumanChart(instrument_name, lanes, tempo, difficulties, offset_s,
                      tempo.seconds(last_tick) + offset_s,
                      phrases=phrases,
                      time_signatures=time_signatures_at(metres.values(), tempo, offset_s))


def _phrases(raw, track_name: str, tempo: TempoMap, offset_s: float) -> tuple[Phrase, ...]:
    """The phrases a part's (start, end, note) marks (see the module docs), in seconds."""
    kinds = dict(PHRASE_NOTES)
    if track_name == OLD_STAR_POWER_TRACK:
        kinds = {103: "star_power"}
    return tuple(sorted((phrase_between(kinds[note], start, end, tempo, offset_s)
                         for start, end, note in raw if note in kinds), key=lambda p: p.t))


@dataclass(frozen=True)
class MidiExport:
    """A written MIDI chart: the file's bytes, the sustain cutoff (ticks) it was written for (to
    store as song.ini ``sustain_cutoff_threshold``) and the tempo map it uses."""

    data: bytes
    sustain_cutoff_ticks: int
    tempo: TempoMap


def part_name(chart: Chart, frets: int) -> str:
    """The track a chart is written as: the part its notes' stem names (an imported bass chart
    stays ``PART BASS``, so Clone Hero files it under bass and mutes ``bass.ogg`` on a miss),
    else guitar; with ``GHL`` for 6 frets.

    Examples
    --------
    >>> from chart_store.chart import ChartMeta
    >>> bass = Chart(ChartMeta("t"), {"expert": (Note(1.0, stem="bass"),)})
    >>> part_name(bass, 5), part_name(bass, 6)
    ('PART BASS', 'PART BASS GHL')
    """
    stems = {n.stem for track in chart.difficulties.values() for n in track}
    instrument = next((i for i in ("rhythm", "bass", "keys") if stems == {i}), "guitar")
    name = f"PART {instrument.upper()}" + (" GHL" if frets == 6 else "")
    return name if name in PARTS else f"PART {instrument.upper()}"


def frets_for(lanes: int) -> int:
    """The frets a chart of ``lanes`` lanes is written on: 5, or 6 (Guitar Hero Live's layout)
    for a 6-lane chart, and fewer lanes as they are (more are folded onto 5).

    Examples
    --------
    >>> frets_for(4), frets_for(6), frets_for(7)
    (4, 6, 5)
    """
    return 6 if lanes == 6 else min(lanes, 5)


def export_midi(chart: Chart, *, resolution: int = EXPORT_RESOLUTION) -> MidiExport:
    """Write ``chart`` as a MIDI chart (see the module docs); returns the bytes and the cutoff.

    Raises
    ------
    FormatError
        A note lies before time 0 (MIDI has no negative ticks), or there are no notes.
    """
    import mido
    tempo = TempoMap.from_beats(chart.beats, resolution=resolution)

    def tick_of(t: float, what: str) -> int:
        if t < 0:
            raise FormatError(f"{what} at {t:.3f}s is before the song start")
        return round(tempo.tick_at(t))

    lanes = 6 if chart.lanes == 6 else 5
    placed = {}
    for difficulty, track in chart.difficulties.items():
        rows = []
        for note in fold_lanes(track.notes, lanes=chart.lanes, to_lanes=frets_for(chart.lanes)):
            tick = tick_of(note.t, f"{difficulty}: note")
            end = round(tempo.tick_at(note.end)) if note.dur > 0 else tick
            rows.append((tick, end, note.lane))
        placed[difficulty] = _separate(sorted(set(rows)))
    if not any(placed.values()):
        raise FormatError("the chart has no notes to write")
    lengths = [e - s for rows in placed.values() for s, e, _, _ in rows if e > s]
    cutoff = min([resolution // 3] + [n - 1 for n in lengths])

    # At one tick: ends of earlier notes, then starts, then ends of zero-length notes.
    events = []  # (tick, phase, note)
    phrase_notes = {kind: note for note, kind in PHRASE_NOTES.items()}
    for phrase in chart.phrases:
        start = tick_of(phrase.t, f"{phrase.kind} phrase")
        end = max(round(tempo.tick_at(phrase.end)), start + 1)
        events += [(start, 1, phrase_notes[phrase.kind]), (end, 0, phrase_notes[phrase.kind])]
    for difficulty, rows in placed.items():
        base = DIFFICULTY_BASES[lanes][difficulty]
        for start, end, lane, gap in rows:
            if end <= start:  # a tap: shorter than the cutoff, ending before the lane's next note
                end = start + min(resolution // 4, cutoff, gap)
            events += [(start, 1, base + lane), (end, 0 if end > start else 2, base + lane)]
    events.sort()

    mid = mido.MidiFile(type=1, ticks_per_beat=resolution, charset="utf-8")  # the title's text
    sync = mido.MidiTrack([mido.MetaMessage("track_name", name=chart.meta.title[:100], time=0)])
    metres = {tick_of(metre.t, "time signature"): metre for metre in chart.time_signatures}
    metres.setdefault(0, TimeSignature(0.0))
    sync_events = sorted(
        [(tick, 0, mido.MetaMessage("time_signature", numerator=m.numerator,
                                    denominator=m.denominator)) for tick, m in metres.items()]
        + [(tick, 1, mido.MetaMessage("set_tempo", tempo=micros))
           for tick, micros in zip(tempo.ticks, tempo.microseconds)], key=lambda e: e[:2])
    previous = 0
    for tick, _, message in sync_events:
        sync.append(message.copy(time=tick - previous))
        previous = tick
    sync.append(mido.MetaMessage("end_of_track", time=0))
    part = mido.MidiTrack([mido.MetaMessage(
        "track_name", name=part_name(chart, lanes), time=0)])
    previous = 0
    for tick, phase, note in events:
        on = phase == 1
        part.append(mido.Message("note_on" if on else "note_off", note=note,
                                 velocity=100 if on else 0, time=tick - previous))
        previous = tick
    part.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks += [sync, part]
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return MidiExport(buffer.getvalue(), cutoff, tempo)


def _separate(rows):
    """(start, end, lane, gap) per note: same-lane notes on one tick merged (the longest kept),
    sustains cut where the lane's next note starts, ``gap`` the ticks to that next note."""
    best: dict[tuple[int, int], int] = {}
    for start, end, lane in rows:
        best[(start, lane)] = max(end, best.get((start, lane), start))
    out, next_start = [], {}
    for (start, lane), end in sorted(best.items(), reverse=True):
        nxt = next_start.get(lane)
        gap = nxt - start if nxt is not None else 1 << 30
        out.append((start, min(end, start + gap), lane, gap))
        next_start[lane] = start
    return out[::-1]
