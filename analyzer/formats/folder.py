"""Song folders of Frets on Fire / Clone Hero / YARG: import them as charts, export charts as them.

A song folder holds ``notes.mid`` or ``notes.chart``, a ``song.ini`` and one audio file per stem
(``song``, ``guitar``, ``rhythm``, ``bass``, ``keys``, ``drums``/``drums_1..4``, ``vocals``/
``vocals_1..2`` as ``.ogg``/``.opus``/``.mp3``/``.wav``/``.flac``; names in any case).

- :func:`find_song_folders` — song folders under paths, recursively.
- :func:`read_song_folder` — parse a folder without decoding audio (:class:`SongFolder`).
- :func:`import_song` — the full import: the human notes become the chart, the fingerprint and
  sync reference are of the full mix (all stems summed, as a listener hears the song), the
  masks come from the charted instrument's own stem (:class:`ImportedSong`).
- :func:`export_chart` — a chart as a Frets on Fire or Clone Hero folder, a StepMania ``.sm`` or
  osu!mania ``.osu`` files (see :data:`EXPORT_FORMATS`).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from chart_store.chart import Chart, ChartMeta, Note, Source, song_name

from .common import LOOPJAM_CHARTER, FormatError, HumanChart, charter_credit, decode_text
from .songini import SongIni, format_song_ini, parse_song_ini

__all__ = ["walk", "find_song_folders", "is_song_folder", "read_song_folder", "import_song",
           "export_chart", "SongFolder", "ImportedSong", "STEM_NAMES", "AUDIO_SUFFIXES",
           "EXPORT_FORMATS"]

#: Stem file names (without extension) that are part of what a listener hears.
STEM_NAMES = ("song", "guitar", "rhythm", "bass", "keys", "drums", "drums_1", "drums_2",
              "drums_3", "drums_4", "vocals", "vocals_1", "vocals_2")
#: Audio suffixes, in order of preference when one stem comes in several.
AUDIO_SUFFIXES = (".ogg", ".opus", ".mp3", ".wav", ".flac")
#: Formats :func:`export_chart` writes.
EXPORT_FORMATS = ("fof", "clonehero", "stepmania", "osu")
#: Stems Frets on Fire plays; the others are mixed into song.ogg on a ``fof`` export.
FOF_STEMS = ("song", "guitar", "rhythm")
CHART_FILES = ("notes.mid", "notes.chart")


@dataclass(frozen=True)
class SongFolder:
    """A parsed song folder: its ``song.ini`` (empty if absent), the chart file's notes and the
    stem audio files found, by stem name."""

    folder: Path
    ini: SongIni
    notes: HumanChart
    stems: dict[str, Path] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return (self.ini.title or self.notes.tags.get("Name", "")
                or decode_text(os.fsencode(self.folder.name)))

    @property
    def artist(self) -> str:
        return self.ini.artist or self.notes.tags.get("Artist", "")

    @property
    def album(self) -> str:
        return self.ini.album or self.notes.tags.get("Album", "")

    @property
    def charter(self) -> str:
        """Who charted it; empty for a chart LoopJam made (see :data:`LOOPJAM_CHARTER`)."""
        charter = self.ini.charter or self.notes.tags.get("Charter", "")
        return "" if charter == LOOPJAM_CHARTER else charter

    @property
    def genre(self) -> str:
        return self.ini.genre or self.notes.tags.get("Genre", "")

    @property
    def year(self) -> str:
        # Frets on Fire's editor wrote a .chart year as ", 2007".
        return (self.ini.year or self.notes.tags.get("Year", "")).lstrip(", ")

    def source_hash(self) -> str:
        """``"sha256:<hex>"`` of what an import reads (song.ini, chart files, stems) and of the
        importer's version: the same hash means importing again gives the same chart."""
        digest = hashlib.sha256(_tool_version().encode())
        files = _files(self.folder)
        paths = [files[n] for n in ("song.ini", *CHART_FILES) if n in files]
        for path in paths + [self.stems[n] for n in sorted(self.stems)]:
            digest.update(path.name.lower().encode() + b"\0")
            with open(path, "rb") as file:
                while block := file.read(1 << 20):
                    digest.update(block)
        return f"sha256:{digest.hexdigest()}"


@dataclass(frozen=True, eq=False)
class ImportedSong:
    """An imported song: the chart, the stem files it came with, and their decoded audio
    (``audio[name]`` float32 ``(channels, n)`` at ``sr`` Hz) for the local stem store."""

    chart: Chart
    stems: dict[str, Path]
    audio: dict[str, np.ndarray] = field(default_factory=dict)
    sr: int = 0


def _files(folder: Path) -> dict[str, Path]:
    """Lower-case file name → path of the files directly in ``folder``."""
    return {p.name.lower(): p for p in folder.iterdir() if p.is_file()}


def walk(path):
    """:func:`os.walk` over ``path`` that follows links to folders (a library often links its
    song packs in from another disk), each real folder once (a link back up is no loop), and
    passes over hidden folders and ones it cannot read."""
    seen = set()
    for root, dirs, files in os.walk(path, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield root, dirs, files


def find_song_folders(path) -> list[Path]:
    """Song folders (holding ``notes.mid`` or ``notes.chart``) at or under ``path``, sorted.

    ``path`` may also be a song's chart file or song.ini: its folder is the song. Subfolders that
    cannot be read are skipped.

    Raises
    ------
    FormatError
        ``path`` does not exist, cannot be read or holds no song folder.
    """
    path = Path(path)
    if path.is_file() and path.name.lower() in (*CHART_FILES, "song.ini"):
        path = path.parent
    if not path.is_dir():
        raise FormatError(f"{path}: not a folder" if path.exists() else f"{path}: no such folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise FormatError(f"{path}: cannot read (permission denied)")
    folders = sorted(Path(root) for root, _, _ in walk(path))
    found = [d for d in folders if _holds_chart(d)]
    if not found:
        raise FormatError(f"{path}: no song folder here (none holds notes.mid or notes.chart)")
    return found


def is_song_folder(file_names) -> bool:
    """Whether a folder holding these files (names, any case) is a song :func:`import_song`
    takes: a notes.chart, or a notes.mid with its song.ini (which holds the title).

    Examples
    --------
    >>> is_song_folder(["NOTES.MID", "song.ini", "song.ogg"]), is_song_folder(["notes.mid"])
    (True, False)
    """
    names = {name.lower() for name in file_names}
    return "notes.chart" in names or {"notes.mid", "song.ini"} <= names


def _holds_chart(folder: Path) -> bool:
    try:
        return any(name in _files(folder) for name in CHART_FILES)
    except OSError:  # unreadable: not a song we can import
        return False


def read_song_folder(folder) -> SongFolder:
    """Parse a song folder's ``song.ini`` and chart file and list its stems; no audio is decoded.

    ``notes.mid`` is read when present, else ``notes.chart``. A MIDI chart needs its ``song.ini``
    (the title lives there); a ``.chart`` can do without (its ``[Song]`` section names the song).
    The song.ini ``delay`` (else the .chart ``Offset``) shifts every note, and its
    ``sustain_cutoff_threshold`` overrides the format's sustain cutoff.

    Raises
    ------
    FormatError
        No chart file, no song.ini beside a notes.mid, or a file that cannot be parsed.
    """
    from .chart_text import parse_chart_text
    from .midi import parse_midi

    folder = Path(folder)
    try:
        files = _files(folder)
    except OSError as error:
        raise FormatError(f"{folder}: not a readable song folder ({error.strerror or error})"
                          ) from None
    ini_path = files.get("song.ini")
    ini = parse_song_ini(_read(ini_path)) if ini_path else None
    cutoff = ini.sustain_cutoff_ticks if ini else None
    if "notes.mid" in files:
        if ini is None:
            raise FormatError(f"{folder.name}: no song.ini beside notes.mid "
                              f"(it holds the song's title and artist)")
        notes = parse_midi(_read(files["notes.mid"]), name=files["notes.mid"].name,
                           offset_s=ini.delay_s, sustain_cutoff_ticks=cutoff)
    elif "notes.chart" in files:
        has_delay = ini is not None and "delay" in ini.tags and ini.delay_s != 0
        notes = parse_chart_text(_read(files["notes.chart"]), name=files["notes.chart"].name,
                                 offset_s=ini.delay_s if has_delay else None,
                                 sustain_cutoff_ticks=cutoff)
    else:
        raise FormatError(f"{folder.name}: no notes.mid or notes.chart")
    stems = {}
    for name in STEM_NAMES:
        for suffix in AUDIO_SUFFIXES:
            if name + suffix in files:
                stems[name] = files[name + suffix]
                break
    return SongFolder(folder, ini or SongIni(), notes, stems)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise FormatError(f"{path.name}: cannot read ({error.strerror or error})") from None


def import_song(folder) -> ImportedSong:
    """Import a Frets on Fire / Clone Hero / YARG song folder as a chart.

    The chart's notes are the human chart's (the first instrument found: guitar, then co-op,
    rhythm, bass, keys; each note's ``stem`` names the instrument's stem, or "mix" when the
    folder has no separate file for it), its beats are every quarter-note beat of the tempo map
    up to the end of the audio, its fingerprint and sync reference are of the full mix (every
    stem summed), its masks come from the instrument's stem (:func:`analyzer.masks.attach_masks`),
    and its source is ``imported-human`` so it wins over generated charts of the same song
    (``analyzed`` for a chart LoopJam generated and exported: song.ini ``charter = LoopJam``).

    ``folder`` is a path, or a :class:`SongFolder` already read by :func:`read_song_folder`.

    Raises
    ------
    FormatError
        The folder cannot be parsed or has no audio.
    analyzer.decode.DecodeError
        A stem cannot be decoded.

    Examples
    --------
    >>> song = import_song("songs/muldjord/chaos_god")  # doctest: +SKIP
    >>> song.chart.meta.title, len(song.chart.track("expert"))  # doctest: +SKIP
    ('Chaos God', 728)
    """
    from analyzer.decode import load
    from analyzer.features import sync_reference
    from analyzer.masks import attach_masks
    from chart_store.fingerprint import fingerprint

    song = folder if isinstance(folder, SongFolder) else read_song_folder(folder)
    if not song.stems:
        raise FormatError(f"{song.folder.name}: no audio ({', '.join(STEM_NAMES[:3])}... as "
                          f"{'/'.join(AUDIO_SUFFIXES)})")
    audio, sr = {}, None
    for name, path in song.stems.items():
        y, sr = load(path, sr=sr, mono=False)
        audio[name] = y if y.ndim == 2 else y[None, :]
    length = max(y.shape[1] for y in audio.values())
    mix = np.zeros(length, np.float32)
    for y in audio.values():
        mix[:y.shape[1]] += y.mean(axis=0)

    notes = song.notes
    stem = notes.stem if notes.stem in audio else "mix"
    difficulties = {d: tuple(Note(n.t, n.dur, n.lane, None, stem) for n in track)
                    for d, track in notes.difficulties.items()}
    # Masks are fitted on every channel at once, as the remover applies them (stems of mixed
    # channel counts: on the downmix).
    widths = {y.shape[0] for y in audio.values()}
    width = widths.pop() if len(widths) == 1 else 1
    wide = {name: y if y.shape[0] == width else y.mean(axis=0, keepdims=True)
            for name, y in audio.items()}
    mix_channels = np.zeros((width, length), np.float32)
    for y in wide.values():
        mix_channels[:, :y.shape[1]] += y
    stems = None
    if stem in audio:  # the instrument's own stem (attach_masks pads it to the mix)
        stems = {stem: wide[stem]}
    masks, difficulties = attach_masks(difficulties, y=mix_channels, sr=sr, stems=stems)
    duration_s = length / sr
    human = song.ini.charter != LOOPJAM_CHARTER
    meta = ChartMeta(title=song.title, artist=song.artist, album=song.album,
                     charter=song.charter, genre=song.genre, year=song.year,
                     duration_s=duration_s,
                     source=Source.IMPORTED_HUMAN if human else Source.ANALYZED,
                     tool_version=_tool_version())
    chart = Chart(meta=meta, difficulties=difficulties, lanes=notes.lanes,
                  beats=notes.beats(duration_s), fingerprint=fingerprint(mix, sr),
                  sync=sync_reference(mix, sr), masks=masks, phrases=notes.phrases,
                  time_signatures=notes.time_signatures)
    return ImportedSong(chart, dict(song.stems), audio, sr)


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"loopjam {version('loopjam')} import"
    except PackageNotFoundError:
        return "loopjam import"


# -- export --------------------------------------------------------------------------------------

def _safe_name(text: str) -> str:
    """A file name from free text: no path separators or characters Windows refuses."""
    name = re.sub(r'[<>:"/\\|?*\x00-\x1f]+', " ", text).strip(" .")
    return re.sub(r"\s+", " ", name)[:120] or "song"


def export_chart(chart: Chart, fmt: str, out_dir, *, stems=None, replace: bool = False) -> Path:
    """Write ``chart`` as a song in ``fmt`` under ``out_dir``; returns the song folder written.

    Parameters
    ----------
    chart : Chart
    fmt : str
        ``fof`` or ``clonehero``: a song folder with ``notes.mid`` and ``song.ini`` (Frets on
        Fire plays only song/guitar/rhythm, so other stems are mixed into ``song.ogg``; Clone Hero
        gets every stem as its own file). ``stepmania``: ``<title>.sm`` (4 lanes) + ``song.ogg``.
        ``osu``: one osu!mania ``.osu`` per difficulty + ``song.ogg``.
    out_dir : path-like
        Parent folder; the song folder inside it is named "Artist - Title".
    stems : mapping of str to (np.ndarray, int), optional
        Stem audio by name (``(channels, n)`` or ``(n,)``, sample rate), e.g. from the local
        stem store; written as Ogg Vorbis. Without stems no audio is written.
    replace : bool
        The song folder may already hold a song (an earlier export, another chart of the same
        name): remove its song files (charts, song.ini, stems) first. Without it such a folder
        is refused: writing over it would mix the old song's stems with the new notes.

    Raises
    ------
    FormatError
        Unknown format. (A note before the audio starts, which a negative song.ini ``delay``
        makes, is exported with silence before the song.)
    """
    if fmt not in EXPORT_FORMATS:
        raise FormatError(f"unknown export format {fmt!r}; known: {', '.join(EXPORT_FORMATS)}")
    if not chart.difficulties:
        raise FormatError("the chart has no notes to export")
    meta = chart.meta
    named = song_name(meta.artist, meta.title)
    folder = Path(out_dir) / _safe_name(named)
    old = [p for p in folder.iterdir() if _is_song_file(p, fmt)] if folder.is_dir() else []
    if old and not replace:
        raise FormatError(f"{folder} already holds a song ({old[0].name}...): export elsewhere, "
                          "or replace it (--force)")
    for path in old:
        path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    stems = dict(stems or {})
    chart, stems = _lead_in(chart, stems)
    if fmt in ("fof", "clonehero"):
        from .midi import export_midi
        written = export_midi(chart)
        (folder / "notes.mid").write_bytes(written.data)
        tags = {"name": meta.title, "artist": meta.artist, "album": meta.album or None,
                "genre": meta.genre or None, "year": meta.year or None,
                "charter": charter_credit(meta) or None,
                "song_length": round(meta.duration_s * 1000) if meta.duration_s else None,
                "delay": 0, "sustain_cutoff_threshold": written.sustain_cutoff_ticks}
        (folder / "song.ini").write_text(format_song_ini(tags), encoding="utf-8")
        if fmt == "fof":
            extra = [n for n in stems if n not in FOF_STEMS]
            if extra:
                stems = {**{n: stems[n] for n in stems if n in FOF_STEMS},
                         "song": _mix([stems[n] for n in extra + ["song"] if n in stems])}
        for name, (y, sr) in stems.items():
            _write_ogg(folder / f"{name}.ogg", y, sr)
    else:
        audio_name = "song.ogg" if stems else ""
        if stems:
            _write_ogg(folder / audio_name, *_mix(list(stems.values())))
        if fmt == "stepmania":
            from .stepmania import export_sm
            (folder / f"{_safe_name(meta.title)}.sm").write_text(
                export_sm(chart, music=audio_name), encoding="utf-8")
        else:
            from .osu import export_osu
            for difficulty in chart.difficulties:
                name = _safe_name(f"{named} (LoopJam) [{difficulty}]")
                (folder / f"{name}.osu").write_text(
                    export_osu(chart, difficulty, audio=audio_name), encoding="utf-8")
    return folder


def _is_song_file(path: Path, fmt: str) -> bool:
    """A file of a song in ``fmt``: for Frets on Fire / Clone Hero a chart, song.ini or stem
    (the game plays every stem it finds: an old one would play with new notes); else the
    format's own chart files (.sm, .osu), which sit beside the other formats' well."""
    name = path.name.lower()
    if fmt in ("fof", "clonehero"):
        return name in (*CHART_FILES, "song.ini") or (
            Path(name).suffix in AUDIO_SUFFIXES and Path(name).stem in STEM_NAMES)
    return Path(name).suffix == {"stepmania": ".sm", "osu": ".osu"}[fmt]


def _lead_in(chart: Chart, stems: dict) -> tuple[Chart, dict]:
    """The chart and stems with silence before the song when a note (or beat, phrase or time
    signature) lies before its audio starts, as a negative song.ini ``delay`` makes (Clone Hero
    plays those): no format writes times before 0, so everything moves later by whole
    milliseconds, the audio too."""
    first = min([0.0, *(float(track.times[0]) for track in chart.difficulties.values()
                        if len(track)), *([float(chart.beats[0])] if len(chart.beats) else []),
                 *(r.t for r in (*chart.phrases, *chart.time_signatures))])
    if first >= 0:
        return chart, stems
    lead = np.ceil(-first * 1000) / 1000
    moved = {name: tuple(replace(n, t=n.t + lead, mask=None) for n in track)  # no masks written
             for name, track in chart.difficulties.items()}
    meta = replace(chart.meta, duration_s=chart.meta.duration_s + lead)
    padded = {name: (np.concatenate([np.zeros((*np.shape(y)[:-1], round(lead * sr)),
                                              np.float32), np.asarray(y, np.float32)], axis=-1),
                     sr) for name, (y, sr) in stems.items()}
    later = {field: tuple(replace(r, t=r.t + lead) for r in getattr(chart, field))
             for field in ("phrases", "time_signatures")}
    return Chart(meta, moved, lanes=chart.lanes, beats=np.asarray(chart.beats) + lead,
                 **later), padded


def _mix(stems: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """Sum of stems (channels, n) at one sample rate, padded to the longest, in -1..1."""
    rates = {sr for _, sr in stems}
    if len(rates) != 1:
        raise FormatError(f"cannot mix stems of different sample rates {sorted(rates)}")
    arrays = [np.atleast_2d(np.asarray(y, np.float32)) for y, _ in stems]
    channels = max(a.shape[0] for a in arrays)
    out = np.zeros((channels, max(a.shape[1] for a in arrays)), np.float32)
    for a in arrays:
        out[:, :a.shape[1]] += a  # a mono stem broadcasts to every channel
    return np.clip(out, -1.0, 1.0), rates.pop()


def _write_ogg(path: Path, y: np.ndarray, sr: int) -> None:
    import soundfile as sf
    frames = np.clip(np.atleast_2d(np.asarray(y, np.float32)).T, -1.0, 1.0)
    with sf.SoundFile(os.fsencode(path), "w", int(sr), frames.shape[1], format="OGG",
                      subtype="VORBIS") as f:
        # In blocks: libsndfile 1.2's Vorbis encoder crashes (SIGSEGV) on one long write.
        for start in range(0, frames.shape[0], 1 << 16):
            f.write(frames[start:start + (1 << 16)])
