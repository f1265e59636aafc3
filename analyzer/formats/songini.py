"""``song.ini``: the metadata file of Frets on Fire / Clone Hero / YARG song folders.

Real files are messy, so reading is tolerant: any encoding (UTF-8 with or without BOM, UTF-16
with BOM, else Windows-1252), any case for the ``[song]`` section and the keys, CRLF, comments
(``;``/``#``), keys before any section, unparsable numbers (ignored). Only the tags LoopJam uses
get fields; every other tag is kept in ``tags``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .common import decode_text

__all__ = ["SongIni", "parse_song_ini", "format_song_ini"]


@dataclass(frozen=True)
class SongIni:
    """The tags of a ``song.ini``.

    ``delay_s`` is the chart delay (``delay``, ms in the file; higher = later notes);
    ``sustain_cutoff_ticks`` the ``sustain_cutoff_threshold`` override (ticks) or None;
    ``song_length_s`` the declared audio length or None; ``tags`` every tag, lower-cased keys.
    """

    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    year: str = ""
    charter: str = ""
    delay_s: float = 0.0
    sustain_cutoff_ticks: int | None = None
    song_length_s: float | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def parse_song_ini(data: bytes) -> SongIni:
    """Parse the bytes of a ``song.ini``; see the module docstring for what is tolerated.

    Tags from a ``[song]`` section (any case) win over tags outside it; other sections are
    ignored. The first occurrence of a repeated key wins.

    Examples
    --------
    >>> ini = parse_song_ini(b"\\xef\\xbb\\xbf[Song]\\r\\nNAME = Fire\\r\\ndelay = -250\\r\\n")
    >>> ini.title, ini.delay_s
    ('Fire', -0.25)
    """
    section, song, loose = None, {}, {}
    for line in decode_text(data).splitlines():
        line = line.strip().lstrip("\ufeff")
        if not line or line[0] in ";#":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        key, eq, value = line.partition("=")
        if not eq:
            continue
        target = song if section == "song" else loose if section is None else None
        if target is not None:
            target.setdefault(key.strip().lower(), value.strip())
    tags = {**loose, **song}
    delay = _number(tags.get("delay")) or 0.0
    cutoff = _number(tags.get("sustain_cutoff_threshold"))
    length = _number(tags.get("song_length"))
    return SongIni(
        title=tags.get("name", "") or tags.get("title", ""), artist=tags.get("artist", ""),
        album=tags.get("album", ""), genre=tags.get("genre", ""), year=tags.get("year", ""),
        charter=tags.get("charter", "") or tags.get("frets", ""), delay_s=delay / 1000.0,
        sustain_cutoff_ticks=int(cutoff) if cutoff is not None and cutoff >= 0 else None,
        song_length_s=length / 1000.0 if length and length > 0 else None, tags=tags)


def format_song_ini(tags: dict[str, object]) -> str:
    """Text of a ``song.ini`` with a ``[song]`` section holding ``tags`` in the given order.

    Values are written as given (newlines flattened to spaces); None values are skipped.
    """
    lines = ["[song]"]
    for key, value in tags.items():
        if value is not None:
            lines.append(f"{key} = {' '.join(str(value).split())}")
    return "\n".join(lines) + "\n"
