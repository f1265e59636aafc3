"""What every chart format shares: the parsed human chart, the error type, text decoding."""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field

import numpy as np

from chart_store.chart import ChartError, ChartMeta, Note, Phrase, Source, TimeSignature

from .tempo import TempoMap

__all__ = ["FormatError", "HumanChart", "INSTRUMENT_STEMS", "LOOPJAM_CHARTER", "charter_credit",
           "phrase_between", "time_signatures_at", "decode_text"]

#: Charted instrument → the name of its stem file (``guitar.ogg``...), the note's ``stem``.
INSTRUMENT_STEMS = {"guitar": "guitar", "guitar_coop": "guitar", "rhythm": "rhythm",
                    "bass": "bass", "keys": "keys"}


#: Who a chart LoopJam made is credited to (a song.ini's ``charter``: an import of it is no
#: human chart).
LOOPJAM_CHARTER = "LoopJam"


def charter_credit(meta: ChartMeta) -> str:
    """Who an export credits with the chart: its charter, LoopJam for a chart LoopJam made, and
    nobody ("") for a human chart whose charter is not known.

    Examples
    --------
    >>> charter_credit(ChartMeta("t")), charter_credit(ChartMeta("t", charter="Someone"))
    ('LoopJam', 'Someone')
    """
    human = meta.source is Source.IMPORTED_HUMAN
    return meta.charter or ("" if human else LOOPJAM_CHARTER)


class FormatError(ValueError):
    """A song file cannot be read or written. ``str()`` names the file and says what is wrong."""


@dataclass(frozen=True)
class HumanChart:
    """The notes of one instrument as a chart file gives them, times in seconds of the audio.

    ``instrument`` names the charted part ("guitar", "bass"...; see :data:`INSTRUMENT_STEMS`),
    ``lanes`` its fret count, ``tempo`` the file's tempo map (tick 0 at ``offset_s``),
    ``difficulties`` maps names of :data:`chart_store.chart.DIFFICULTIES` to time-sorted notes,
    ``offset_s`` is the chart delay already added to every note time (song.ini ``delay``),
    ``end_s`` the last tick of the file in seconds (audio time), ``tags`` the metadata the
    chart file itself carries (a .chart's ``[Song]`` entries; empty for MIDI), ``phrases`` the
    star power and solo phrases it marks and ``time_signatures`` its metre (audio time).
    """

    instrument: str
    lanes: int
    tempo: TempoMap
    difficulties: dict[str, tuple[Note, ...]] = field(default_factory=dict)
    offset_s: float = 0.0
    end_s: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)
    phrases: tuple[Phrase, ...] = ()
    time_signatures: tuple[TimeSignature, ...] = ()

    @property
    def stem(self) -> str:
        """Name of the charted instrument's stem ("guitar" for the guitar parts)."""
        return INSTRUMENT_STEMS.get(self.instrument, self.instrument)

    def beats(self, end_s: float) -> np.ndarray:
        """Audio times (seconds) of every quarter-note beat up to ``end_s``, shape (n,).

        Raises :class:`FormatError` for an absurd tempo map (see :meth:`TempoMap.beat_times`).
        """
        try:
            beats = self.tempo.beat_times(end_s - self.offset_s) + self.offset_s
        except ValueError as error:
            raise FormatError(str(error)) from None
        return beats[beats >= 0]


def phrase_between(kind: str, start: int, end: int, tempo: TempoMap,
                   offset_s: float) -> Phrase:
    """The ``kind`` phrase from tick ``start`` to tick ``end`` of ``tempo`` (tick 0 at
    ``offset_s`` seconds of the audio)."""
    t = tempo.seconds(start)
    return Phrase(kind, t + offset_s, max(tempo.seconds(end) - t, 0.0))


def time_signatures_at(metres, tempo: TempoMap, offset_s: float) -> tuple[TimeSignature, ...]:
    """``(tick, numerator, denominator, where)`` rows as time signatures in seconds of the audio
    (tick 0 at ``offset_s``); one that is not a time signature raises :class:`FormatError`
    starting with its ``where`` (the file, or the file and line)."""
    signatures = []
    for tick, numerator, denominator, where in sorted(metres, key=lambda row: row[0]):
        try:
            signatures.append(TimeSignature(tempo.seconds(tick) + offset_s, numerator,
                                            denominator))
        except ChartError as error:     # 0 beats, a note shorter than 1/128
            raise FormatError(f"{where}: {error}") from None
    return tuple(signatures)


def decode_text(data: bytes) -> str:
    """Text of a song file in whatever encoding it came: UTF-8 or UTF-16 with a BOM, else UTF-8,
    else Windows-1252 (what old editors wrote)."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace").lstrip("\ufeff")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")

