"""The LoopJam chart file: one portable, versioned file per chart, read strictly and safely.

A chart file (``*.chart``) is a ZIP archive holding ``chart.json`` (metadata, the stem table and a
descriptor — dtype and shape — for every array) and one raw little-endian member per array
(fingerprint items, sync envelope, beats, the note columns of each difficulty, the mask bank).
``docs/chart-format.md`` describes it byte by byte.

- :func:`dumps` / :func:`loads` — a :class:`~chart_store.chart.Chart` to bytes and back;
  ``dumps`` is byte-deterministic (fixed timestamps, order and compression level).
- :func:`write_chart` (atomic) / :func:`read_chart` — the same with a file.
- :func:`chart_id` — the content-derived id: sha256 of the canonical uncompressed members, so
  it does not depend on ZIP timestamps, compression or the machine.
- :func:`chart_to_json` — the ``loopjam chart show --json`` document.

Reading never trusts the file: sizes are checked before anything is read or allocated, every
JSON field is type-checked, and any problem — corruption, truncation, zip bombs, path
traversal, absurd shapes, a future version — raises :class:`ChartFormatError` with one clear
line. Charts that the format cannot represent exactly raise it on writing too.

Examples
--------
>>> from chart_store.chart import Chart, ChartMeta, Note
>>> chart = Chart(ChartMeta("Song", duration_s=3.0), {"expert": [Note(1.0, lane=2)]})
>>> loads(dumps(chart)) == chart
True
>>> len(chart_id(chart))
24
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import operator
import os
import secrets
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chart_store.chart import (
    DIFFICULTIES, Chart, ChartError, ChartMeta, Fingerprint, MaskBank, Note, Phrase, Source,
    SpectralMask, SyncReference, TimeSignature, Track,
)

__all__ = [
    "FORMAT", "VERSION", "SUFFIX", "ChartFormatError", "dumps", "loads", "write_chart",
    "read_chart", "chart_id", "chart_to_json", "MAX_FILE_BYTES", "MAX_MEMBER_BYTES",
    "MAX_TOTAL_BYTES", "MAX_DOCUMENT_BYTES", "MAX_MEMBERS", "MAX_NOTES", "MAX_MASKS",
    "MAX_STEMS", "MAX_PITCH", "MAX_PHRASES",
]

FORMAT = "loopjam-chart"
VERSION = 4
#: The first version with coarse sync bands (``sync.band_rate``, ``sync.bands``).
BANDS_VERSION = 2
#: The first with the credits (``meta.charter``, ``meta.genre``, ``meta.year``).
CREDITS_VERSION = 3
#: The first with a human chart's star power and solo phrases and its time signatures
#: (``phrases``, ``time_signatures``).
PHRASES_VERSION = 4
SUFFIX = ".chart"
DOCUMENT = "chart.json"

#: Limits that keep a hostile file from costing more than a big real one.
MAX_FILE_BYTES = 256 * 2**20        # the whole file, as stored
MAX_MEMBER_BYTES = 64 * 2**20       # one member, uncompressed
MAX_TOTAL_BYTES = 256 * 2**20       # all members, uncompressed
MAX_DOCUMENT_BYTES = 4 * 2**20      # chart.json, uncompressed
MAX_MEMBERS = 64                    # a v2 file has at most 33
MAX_CENTRAL_DIRECTORY_BYTES = 64 * 2**10
MAX_NOTES = 1_000_000               # all difficulties together
MAX_MASKS = 1_000_000
MAX_STEMS = 256                     # stem indices are one byte
MAX_PITCH = 127                     # MIDI; stored as int8, -1 = no pitch
MAX_PHRASES = 10_000                # phrases, and time signatures: a song has dozens
MAX_ALGORITHM = 2**31 - 1           # Chromaprint algorithm id

#: Array dtypes by their code in chart.json: all little-endian.
DTYPES = {code: np.dtype(spec) for code, spec in
          {"f8": "<f8", "f4": "<f4", "u4": "<u4", "i4": "<i4", "i1": "i1", "u1": "u1"}.items()}
_NOTE_COLUMNS = {"t": "f8", "dur": "f8", "lane": "u1", "pitch": "i1", "stem": "u1", "mask": "i4"}
_MASK_ARRAYS = {"masks.band_edges_hz": ("f4", 1), "masks.start_s": ("f8", 1),
                "masks.frames": ("u4", 1), "masks.gains": ("u1", 2)}

# Fixed so that dumps() is byte-deterministic (the earliest date ZIP can store).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_LEVEL = 6
_EOCD = struct.Struct("<4s4H2LH")   # end of central directory record, 22 bytes
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"


class ChartFormatError(ValueError):
    """A chart file (or a chart about to be written) is not a valid LoopJam chart.

    ``reason`` is the one-line explanation, ``path`` the file when known; ``str()`` gives both.
    """

    def __init__(self, reason: str, *, path: str | os.PathLike | None = None):
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        super().__init__(reason if path is None else f"{self.path}: {reason}")


# --------------------------------------------------------------------------------------------
# Writing


def dumps(chart: Chart) -> bytes:
    """Serialise ``chart`` to the bytes of a chart file (byte-deterministic).

    Raises
    ------
    ChartFormatError
        If the chart holds something the format cannot store exactly (a pitch outside MIDI
        0..127, a non-integer lane, more than ``MAX_STEMS`` stem names, ...) or exceeds a limit.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in _members(chart):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = 3          # the default depends on the OS writing the file
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, payload, compresslevel=_ZIP_LEVEL)
    return buffer.getvalue()


def write_chart(chart: Chart, path: str | os.PathLike) -> None:
    """Write ``chart`` to ``path`` atomically, so readers never see a half-written chart."""
    write_atomic(path, dumps(chart))


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder
    (``.NAME.HEX.tmp``), fsync, then ``os.replace``: a crash leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 lets the umask decide the mode, as for any new file (mkstemp: 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def chart_id(chart: Chart) -> str:
    """The chart's content id: 24 hex digits of sha256 over its canonical members.

    Each member (``chart.json`` first, then the arrays in file order) contributes its name in
    UTF-8, a NUL byte, its length as 8 little-endian bytes and its uncompressed bytes. Equal
    charts get equal ids on every machine; ZIP timestamps and compression play no part.
    """
    digest = hashlib.sha256()
    for name, payload in _members(chart):
        digest.update(name.encode() + b"\0" + len(payload).to_bytes(8, "little"))
        digest.update(payload)
    return digest.hexdigest()[:24]


def chart_to_json(chart: Chart) -> dict:
    """The ``loopjam chart show --json`` document: metadata and every note, JSON-ready.

    Shape: ``{"format", "version", "id", "title", "artist", "album", "duration_s", "source",
    "tool_version", "charter", "genre", "year", "lanes", "beats": [s, ...], "phrases": [{"kind",
    "t", "dur"}, ...], "time_signatures": [{"t", "numerator", "denominator"}, ...],
    "difficulties": {"expert": [{"t", "dur", "lane", "pitch", "stem"}, ...], ...}}``;
    ``pitch`` is a MIDI number or null.
    """
    meta = chart.meta
    return {
        "format": FORMAT, "version": _version_of(chart), "id": chart_id(chart),
        "title": meta.title, "artist": meta.artist, "album": meta.album,
        "duration_s": float(meta.duration_s), "source": meta.source.value,
        "tool_version": meta.tool_version,
        **{key: getattr(meta, key) for key in ChartMeta.CREDITS},
        "lanes": int(chart.lanes),
        "beats": chart.beats.tolist(),
        "phrases": _encode_phrases(chart.phrases),
        "time_signatures": _encode_time_signatures(chart.time_signatures),
        "difficulties": {
            name: [{"t": float(n.t), "dur": float(n.dur), "lane": int(n.lane),
                    "pitch": None if n.pitch is None else int(n.pitch), "stem": n.stem}
                   for n in track]
            for name, track in chart.difficulties.items()},
    }


def _version_of(chart: Chart) -> int:
    """The lowest version that holds ``chart``: a chart without sync bands, credits or phrases
    is written as version 1, byte for byte (and id) as before they existed, and older readers
    read it."""
    if chart.phrases or chart.time_signatures:
        return PHRASES_VERSION
    if any(getattr(chart.meta, key) for key in ChartMeta.CREDITS):
        return CREDITS_VERSION
    has_bands = chart.sync is not None and chart.sync.bands is not None
    return BANDS_VERSION if has_bands else 1


def _members(chart: Chart) -> list[tuple[str, bytes]]:
    """The canonical members of ``chart``'s file: ``chart.json``, then one per array."""
    arrays: dict[str, np.ndarray] = {"beats": _positive_zero(chart.beats)}
    version = _version_of(chart)
    document = {
        "format": FORMAT, "version": version,
        "meta": _encode_meta(chart.meta, credits=version >= CREDITS_VERSION),
        "lanes": _integer_of(chart.lanes, "lanes"),
        "difficulties": list(chart.difficulties),
        "fingerprint": None, "sync": None,
        "masks": {"hop_s": _float_of(chart.masks.hop_s)},
    }
    if version >= PHRASES_VERSION:
        for name, records in (("phrases", chart.phrases),
                              ("time signatures", chart.time_signatures)):
            if len(records) > MAX_PHRASES:
                raise ChartFormatError(f"a chart can hold at most {MAX_PHRASES} {name}, this "
                                       f"one has {len(records)}")
        document["phrases"] = _encode_phrases(chart.phrases)
        document["time_signatures"] = _encode_time_signatures(chart.time_signatures)
    if chart.fingerprint is not None:
        algorithm = _integer_of(chart.fingerprint.algorithm, "fingerprint algorithm")
        if not 0 <= algorithm <= MAX_ALGORITHM:
            raise ChartFormatError(f"fingerprint algorithm must be 0..{MAX_ALGORITHM}, "
                                   f"got {algorithm}")
        document["fingerprint"] = {"algorithm": algorithm,
                                   "item_s": _float_of(chart.fingerprint.item_s)}
        arrays["fingerprint.items"] = chart.fingerprint.items
    if chart.sync is not None:
        document["sync"] = {"frame_rate": _float_of(chart.sync.frame_rate)}
        arrays["sync.envelope"] = _positive_zero(chart.sync.envelope)
        if chart.sync.bands is not None:
            document["sync"]["band_rate"] = _float_of(chart.sync.band_rate)
            arrays["sync.bands"] = chart.sync.bands
    arrays.update(_encode_masks(chart.masks))
    stems = {note.stem for track in chart.difficulties.values() for note in track}
    for stem in stems:
        if not _is_text(stem):
            raise ChartFormatError(f"note stems must be strings of valid Unicode, got {stem!r}")
    stems = sorted(stems)
    if len(stems) > MAX_STEMS:
        raise ChartFormatError(f"a chart can name at most {MAX_STEMS} stems, this one has "
                               f"{len(stems)}")
    document["stems"] = stems
    n_notes = sum(len(track) for track in chart.difficulties.values())
    if n_notes > MAX_NOTES:
        raise ChartFormatError(f"a chart can hold at most {MAX_NOTES} notes, this one has "
                               f"{n_notes}")
    stem_index = {stem: i for i, stem in enumerate(stems)}
    for name, track in chart.difficulties.items():
        for column, values in _encode_notes(name, track, stem_index).items():
            arrays[f"notes.{name}.{column}"] = values
    encoded = {name: np.ascontiguousarray(values, dtype=DTYPES[_expected_dtype(name)])
               for name, values in arrays.items()}
    document["arrays"] = {name: {"dtype": _expected_dtype(name), "shape": list(values.shape)}
                          for name, values in encoded.items()}
    members = [(DOCUMENT, _canonical_json(document))]
    members += [(f"{name}.bin", values.tobytes()) for name, values in encoded.items()]
    for name, payload in members:
        if len(payload) > (MAX_DOCUMENT_BYTES if name == DOCUMENT else MAX_MEMBER_BYTES):
            raise ChartFormatError(f"{name} would be {len(payload)} bytes, over the limit")
    if sum(len(payload) for _, payload in members) > MAX_TOTAL_BYTES:
        raise ChartFormatError(f"the chart would be over {MAX_TOTAL_BYTES} bytes")
    return members


def _encode_phrases(phrases) -> list[dict]:
    return [{"kind": p.kind, "t": _float_of(p.t), "dur": _float_of(p.dur)} for p in phrases]


def _encode_time_signatures(signatures) -> list[dict]:
    return [{"t": _float_of(m.t), "numerator": _integer_of(m.numerator, "numerator"),
             "denominator": _integer_of(m.denominator, "denominator")} for m in signatures]


def _encode_meta(meta: ChartMeta, *, credits: bool) -> dict:
    encoded = {"duration_s": _float_of(meta.duration_s), "source": meta.source.value}
    for key in ("title", "artist", "album", "tool_version",
                *(ChartMeta.CREDITS if credits else ())):
        value = getattr(meta, key)
        if not _is_text(value):
            raise ChartFormatError(f"meta.{key} must be a string of valid Unicode, got "
                                   f"{_short(value)}")
        encoded[key] = value
    return encoded


def _encode_masks(bank: MaskBank) -> dict[str, np.ndarray]:
    n_bands = bank.n_bands
    if len(bank) > MAX_MASKS:
        raise ChartFormatError(f"a chart can hold at most {MAX_MASKS} masks, this one has "
                               f"{len(bank)}")
    gains = [mask.gains for mask in bank.masks]
    if sum(g.shape[0] for g in gains) > MAX_MEMBER_BYTES:   # frames are stored as uint32
        raise ChartFormatError(f"the masks have over {MAX_MEMBER_BYTES} frames in all")
    return {
        "masks.band_edges_hz": _positive_zero(bank.band_edges_hz),
        "masks.start_s": _positive_zero(np.array([m.start_s for m in bank.masks], np.float64)),
        "masks.frames": np.array([g.shape[0] for g in gains], np.int64),
        "masks.gains": np.concatenate(gains) if gains else np.zeros((0, n_bands), np.uint8),
    }


def _encode_notes(name: str, track: Track, stem_index: dict[str, int]) -> dict[str, np.ndarray]:
    notes = track.notes
    pitched = np.array([n.pitch is not None for n in notes], bool)
    pitch = _int_column([0 if n.pitch is None else n.pitch for n in notes], name, notes, "pitch")
    bad = np.flatnonzero(pitched & ((pitch < 0) | (pitch > MAX_PITCH)))
    if bad.size:
        note = notes[bad[0]]
        raise ChartFormatError(f"{name}: note at {note.t}s has pitch {note.pitch}, outside "
                               f"MIDI 0..{MAX_PITCH}")
    return {
        "t": _positive_zero(track.times),
        "dur": _positive_zero(np.array([n.dur for n in notes], np.float64)),
        "lane": _int_column([n.lane for n in notes], name, notes, "lane"),
        "pitch": np.where(pitched, pitch, -1),
        "stem": np.array([stem_index[n.stem] for n in notes], np.int64),
        "mask": _int_column([-1 if n.mask is None else n.mask for n in notes], name, notes,
                            "mask"),
    }


def _int_column(values: list, name: str, notes, field_name: str) -> np.ndarray:
    """``values`` as int64, refusing anything that is not an integer (1.5 would truncate)."""
    if not all(type(v) is int for v in values):       # the fast path covers real charts
        values = [_integer_of(v, f"{name}: note at {note.t}s: {field_name}")
                  for v, note in zip(values, notes)]
    return np.array(values, np.int64)


def _integer_of(value, what: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ChartFormatError(f"{what} must be an integer, got {value!r}") from None


def _float_of(value) -> float:
    return float(value) + 0.0   # + 0.0 turns -0.0 into 0.0: equal charts, equal bytes


def _positive_zero(values: np.ndarray) -> np.ndarray:
    return values + values.dtype.type(0)


def _canonical_json(document: dict) -> bytes:
    try:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except ValueError as error:   # a non-finite float slipped past the model
        raise ChartFormatError(f"cannot store the chart: {error}") from None
    return text.encode("ascii")


def _expected_dtype(array: str) -> str:
    if array.startswith("notes."):
        return _NOTE_COLUMNS[array.rsplit(".", 1)[1]]
    if array in _MASK_ARRAYS:
        return _MASK_ARRAYS[array][0]
    return {"beats": "f8", "fingerprint.items": "u4", "sync.envelope": "f4",
            "sync.bands": "u1"}[array]


# --------------------------------------------------------------------------------------------
# Reading


def read_chart(path: str | os.PathLike) -> Chart:
    """Read the chart file at ``path``.

    Raises
    ------
    ChartFormatError
        If the file is not a valid chart file (the message names the file and the problem).
    OSError
        If the file cannot be opened (missing, unreadable).
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):   # checked before opening: a FIFO would block open()
        raise ChartFormatError("not a regular file", path=path)
    if info.st_size > MAX_FILE_BYTES:
        raise ChartFormatError(f"file is {info.st_size} bytes, over the {MAX_FILE_BYTES}-byte "
                               f"limit", path=path)
    with open(path, "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    try:
        return loads(data)
    except ChartFormatError as error:
        raise ChartFormatError(error.reason, path=path) from error


def loads(data: bytes) -> Chart:
    """Parse the bytes of a chart file (see :func:`read_chart`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() needs bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise ChartFormatError(f"file is {len(data)} bytes, over the {MAX_FILE_BYTES}-byte limit")
    _check_end_record(data)
    with _zip_errors():
        archive = zipfile.ZipFile(io.BytesIO(data))
    with archive:
        infos = _check_directory(archive)
        layout = _parse_document(_read_member(archive, infos, DOCUMENT, None))
        expected = {f"{name}.bin" for name in layout.arrays} | {DOCUMENT}
        for name in infos:
            if name not in expected:
                raise ChartFormatError(f"unexpected member {name!r}")
        arrays = {}
        for name, (code, shape) in layout.arrays.items():
            raw = _read_member(archive, infos, f"{name}.bin",
                               math.prod(shape) * DTYPES[code].itemsize)
            arrays[name] = np.frombuffer(raw, dtype=DTYPES[code]).reshape(shape)
    try:
        return _build_chart(layout, arrays)
    except ChartError as error:
        raise ChartFormatError(f"invalid chart: {error}") from error


@contextlib.contextmanager
def _zip_errors():
    # zipfile reports damaged archives with a dozen exception types (BadZipFile, zlib.error,
    # EOFError, struct.error, NotImplementedError, UnicodeDecodeError...): all mean "corrupt".
    try:
        yield
    except ChartFormatError:
        raise
    except Exception as error:
        raise ChartFormatError(f"corrupt archive: {error or type(error).__name__}") from error


def _check_end_record(data: bytes) -> None:
    """Check the ZIP end record before zipfile sees it, which bounds the central directory
    zipfile will parse (a ZIP with millions of entries is a cheap memory bomb)."""
    if len(data) < _EOCD.size or data[-_EOCD.size:-_EOCD.size + 4] != _EOCD_SIGNATURE:
        raise ChartFormatError("not a chart file (no ZIP end record at its end: truncated, "
                               "padded or not a ZIP)")
    (_, disk, cd_disk, entries_here, entries, cd_size, cd_offset,
     comment) = _EOCD.unpack(data[-_EOCD.size:])
    if comment or disk or cd_disk or entries_here != entries:
        raise ChartFormatError("unsupported ZIP layout (archive comment or multiple disks)")
    if data[-_EOCD.size - 20:-_EOCD.size - 16] == _ZIP64_LOCATOR_SIGNATURE:
        raise ChartFormatError("unsupported ZIP layout (ZIP64)")
    if entries > MAX_MEMBERS or cd_size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise ChartFormatError(f"archive lists {entries} members in {cd_size} bytes, over "
                               f"the limit of {MAX_MEMBERS}")
    if cd_offset + cd_size != len(data) - _EOCD.size:
        raise ChartFormatError("corrupt archive: the central directory is not where the end "
                               "record says (truncated or padded file)")


def _check_directory(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in archive.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise ChartFormatError(f"member {name!r} has an absolute path")
        if ".." in name.replace("\\", "/").split("/"):
            raise ChartFormatError(f"member {name!r} points outside the archive")
        if name in infos:
            raise ChartFormatError(f"duplicate member {name!r}")
        if info.flag_bits & 0x1:
            raise ChartFormatError(f"member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ChartFormatError(f"member {name!r} uses unsupported compression "
                                   f"{info.compress_type}")
        if info.file_size > MAX_MEMBER_BYTES:
            raise ChartFormatError(f"member {name!r} declares {info.file_size} bytes, over the "
                                   f"{MAX_MEMBER_BYTES}-byte limit")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise ChartFormatError(f"members declare over {MAX_TOTAL_BYTES} bytes in all")
        infos[name] = info
    return infos


def _read_member(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], name: str,
                 size: int | None) -> bytes:
    """Read member ``name``: exactly ``size`` bytes, or up to ``MAX_DOCUMENT_BYTES`` when
    ``size`` is None; never more than the directory declares (zip bombs lie about sizes)."""
    info = infos.get(name)
    if info is None:
        raise ChartFormatError(f"missing member {name!r}")
    if size is None and info.file_size > MAX_DOCUMENT_BYTES:
        raise ChartFormatError(f"{name} declares {info.file_size} bytes, over the "
                               f"{MAX_DOCUMENT_BYTES}-byte limit")
    if size is not None and info.file_size != size:
        raise ChartFormatError(f"member {name!r} is {info.file_size} bytes, its descriptor "
                               f"says {size}")
    with _zip_errors(), archive.open(info) as member:
        payload = member.read(info.file_size + 1)
    if len(payload) != info.file_size:
        raise ChartFormatError(f"member {name!r} holds {len(payload)} bytes, the archive "
                               f"says {info.file_size}")
    return payload


# The parsed chart.json: everything but the array contents.
@dataclass(frozen=True)
class _Layout:
    meta: ChartMeta
    lanes: int
    difficulties: tuple[str, ...]
    stems: tuple[str, ...]
    fingerprint: dict | None
    sync: dict | None
    hop_s: float
    arrays: dict[str, tuple[str, tuple[int, ...]]]   # name -> (dtype code, shape), file order
    phrases: tuple[Phrase, ...]
    time_signatures: tuple[TimeSignature, ...]


def _parse_document(payload: bytes) -> _Layout:
    try:
        document = json.loads(payload.decode("utf-8"), object_pairs_hook=_unique_keys,
                              parse_constant=_no_constant)
    except ChartFormatError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ChartFormatError(f"{DOCUMENT} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ChartFormatError(f"{DOCUMENT} must hold an object, got {_kind(document)}")
    if document.get("format") != FORMAT:
        raise ChartFormatError(f"not a LoopJam chart ({DOCUMENT} format is "
                               f"{_short(document.get('format'))}, expected {FORMAT!r})")
    version = document.get("version")
    if not _is_int(version) or version < 1:
        raise ChartFormatError(f"unknown chart version {_short(version)}")
    if version > VERSION:
        raise ChartFormatError(f"version {version} is newer than this LoopJam supports "
                               f"({VERSION})")
    fields = _fields(document, "", format=_string, version=_int(1, VERSION),
                     meta=_object, lanes=_int(0, 255), difficulties=_list,
                     stems=_list, fingerprint=_nullable(_object), sync=_nullable(_object),
                     masks=_object, arrays=_object,
                     **({"phrases": _list, "time_signatures": _list}
                        if _is_int(version) and version >= PHRASES_VERSION else {}))
    # Version 3 added the credits (charter, genre, year).
    credits = dict.fromkeys(ChartMeta.CREDITS if fields["version"] >= CREDITS_VERSION else (),
                            _string)
    meta = _fields(fields["meta"], "meta.", title=_string, artist=_string, album=_string,
                   duration_s=_number, source=_string, tool_version=_string, **credits)
    sources = [s.value for s in Source]
    if meta["source"] not in sources:
        raise ChartFormatError(f"{DOCUMENT}: meta.source must be one of {sources}, got "
                               f"{_short(meta['source'])}")
    difficulties = tuple(_string(d, "difficulties[]") for d in fields["difficulties"])
    for name in difficulties:
        if name not in DIFFICULTIES:
            raise ChartFormatError(f"{DOCUMENT}: unknown difficulty {_short(name)}; known: "
                                   f"{', '.join(DIFFICULTIES)}")
    if len(set(difficulties)) != len(difficulties):
        raise ChartFormatError(f"{DOCUMENT}: difficulties are listed twice")
    stems = tuple(_string(s, "stems[]") for s in fields["stems"])
    if len(stems) > MAX_STEMS or len(set(stems)) != len(stems):
        raise ChartFormatError(f"{DOCUMENT}: stems must be at most {MAX_STEMS} distinct names")
    fingerprint = sync = None
    if fields["fingerprint"] is not None:
        fingerprint = _fields(fields["fingerprint"], "fingerprint.",
                              algorithm=_int(0, MAX_ALGORITHM), item_s=_number)
    if fields["sync"] is not None:
        # Version 2 added the optional band_rate (with the sync.bands array).
        banded = (fields["version"] >= BANDS_VERSION and isinstance(fields["sync"], dict)
                  and "band_rate" in fields["sync"])
        sync = _fields(fields["sync"], "sync.", frame_rate=_number,
                       **({"band_rate": _number} if banded else {}))
    masks = _fields(fields["masks"], "masks.", hop_s=_number)
    phrases, signatures = fields.get("phrases", []), fields.get("time_signatures", [])
    if max(len(phrases), len(signatures)) > MAX_PHRASES:
        raise ChartFormatError(f"{DOCUMENT}: more than {MAX_PHRASES} phrases or time signatures")
    try:
        meta = ChartMeta(**meta)
        phrases = tuple(Phrase(**_fields(p, "phrases[].", kind=_string, t=_number, dur=_number))
                        for p in phrases)
        signatures = tuple(TimeSignature(**_fields(
            m, "time_signatures[].", t=_number, numerator=_int(1, 255),
            denominator=_int(1, 128))) for m in signatures)
    except ChartError as error:
        raise ChartFormatError(f"invalid chart: {error}") from error
    arrays = _parse_arrays(fields["arrays"], difficulties, fingerprint is not None,
                           sync is not None, sync is not None and "band_rate" in sync)
    return _Layout(meta=meta, lanes=fields["lanes"], difficulties=difficulties, stems=stems,
                   fingerprint=fingerprint, sync=sync, hop_s=masks["hop_s"], arrays=arrays,
                   phrases=phrases, time_signatures=signatures)


def _parse_arrays(descriptors: dict, difficulties, has_fingerprint: bool, has_sync: bool,
                  has_bands: bool):
    """Check the array descriptors against what the document says must be there."""
    dims = {"beats": 1, **({"fingerprint.items": 1} if has_fingerprint else {}),
            **({"sync.envelope": 1} if has_sync else {}),
            **({"sync.bands": 2} if has_bands else {}),
            **{name: ndim for name, (_, ndim) in _MASK_ARRAYS.items()},
            **{f"notes.{d}.{c}": 1 for d in difficulties for c in _NOTE_COLUMNS}}
    missing = dims.keys() - descriptors.keys()
    if missing:
        raise ChartFormatError(f"{DOCUMENT}: arrays lack {sorted(missing)[0]!r}")
    arrays = {}
    total = 0
    for name, descriptor in descriptors.items():
        if name not in dims:
            raise ChartFormatError(f"{DOCUMENT}: unexpected array {_short(name)}")
        where = f"arrays.{name}."
        fields = _fields(descriptor, where, dtype=_string, shape=_list)
        code = fields["dtype"]
        if code != _expected_dtype(name):
            raise ChartFormatError(f"{DOCUMENT}: {where}dtype is {_short(code)}, the format "
                                   f"stores {name} as {_expected_dtype(name)!r}")
        shape = tuple(_int(0, MAX_MEMBER_BYTES)(n, f"{where}shape[]") for n in fields["shape"])
        if len(shape) != dims[name]:
            raise ChartFormatError(f"{DOCUMENT}: {where}shape must have {dims[name]} "
                                   f"dimension(s), got {list(shape)}")
        size = math.prod(shape) * DTYPES[code].itemsize
        total += size
        if size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
            raise ChartFormatError(f"{DOCUMENT}: {where}shape {list(shape)} is over the size "
                                   f"limit")
        arrays[name] = (code, shape)
    for d in difficulties:
        lengths = {arrays[f"notes.{d}.{c}"][1] for c in _NOTE_COLUMNS}
        if len(lengths) != 1:
            raise ChartFormatError(f"{DOCUMENT}: the note columns of {d} differ in length")
    n_notes = sum(arrays[f"notes.{d}.t"][1][0] for d in difficulties)
    if n_notes > MAX_NOTES:
        raise ChartFormatError(f"{DOCUMENT}: {n_notes} notes, over the limit of {MAX_NOTES}")
    n_masks = arrays["masks.start_s"][1][0]
    if arrays["masks.frames"][1][0] != n_masks or n_masks > MAX_MASKS:
        raise ChartFormatError(f"{DOCUMENT}: masks.start_s and masks.frames must have the same "
                               f"length, at most {MAX_MASKS}")
    n_bands = max(arrays["masks.band_edges_hz"][1][0] - 1, 0)
    if arrays["masks.gains"][1][1] != n_bands:
        raise ChartFormatError(f"{DOCUMENT}: masks.gains has {arrays['masks.gains'][1][1]} "
                               f"bands, the band edges give {n_bands}")
    return arrays


def _build_chart(layout: _Layout, arrays: dict[str, np.ndarray]) -> Chart:
    frames = arrays["masks.frames"].astype(np.int64)
    gains = arrays["masks.gains"]
    if int(frames.sum()) != gains.shape[0]:
        raise ChartFormatError(f"masks.frames add up to {int(frames.sum())} frames, "
                               f"masks.gains has {gains.shape[0]}")
    offsets = np.concatenate([[0], np.cumsum(frames)])
    masks = MaskBank(
        band_edges_hz=arrays["masks.band_edges_hz"], hop_s=layout.hop_s,
        masks=tuple(SpectralMask(start_s, gains[offsets[i]:offsets[i + 1]])
                    for i, start_s in enumerate(arrays["masks.start_s"].tolist())))
    difficulties = {}
    for name in layout.difficulties:
        columns = {c: arrays[f"notes.{name}.{c}"] for c in _NOTE_COLUMNS}
        if np.any(columns["pitch"] < -1):
            raise ChartFormatError(f"{name}: a pitch is below -1 (the no-pitch mark)")
        if np.any(columns["mask"] < -1):
            raise ChartFormatError(f"{name}: a mask index is below -1 (the no-mask mark)")
        if columns["stem"].size and int(columns["stem"].max()) >= len(layout.stems):
            raise ChartFormatError(f"{name}: a stem index is outside the {len(layout.stems)} "
                                   f"stems")
        pitches = [None if p < 0 else p for p in columns["pitch"].tolist()]
        stems = [layout.stems[s] for s in columns["stem"].tolist()]
        mask_refs = [None if m < 0 else m for m in columns["mask"].tolist()]
        difficulties[name] = Track(tuple(map(
            Note, columns["t"].tolist(), columns["dur"].tolist(), columns["lane"].tolist(),
            pitches, stems, mask_refs)))
    fingerprint = None
    if layout.fingerprint is not None:
        fingerprint = Fingerprint(arrays["fingerprint.items"], **layout.fingerprint)
    sync = None
    if layout.sync is not None:
        sync = SyncReference(arrays["sync.envelope"], bands=arrays.get("sync.bands"),
                             **layout.sync)
    return Chart(meta=layout.meta, difficulties=difficulties, lanes=layout.lanes,
                 beats=arrays["beats"], fingerprint=fingerprint, sync=sync, masks=masks,
                 phrases=layout.phrases, time_signatures=layout.time_signatures)


# --- chart.json type checks: each returns the value or raises with the field's name ---------


def _fields(value, where: str, **checks) -> dict:
    if not isinstance(value, dict):
        raise ChartFormatError(f"{DOCUMENT}: {where.rstrip('.') or 'document'} must be an "
                               f"object, got {_kind(value)}")
    for key in value:
        if key not in checks:
            raise ChartFormatError(f"{DOCUMENT}: unknown field {where}{_short(key)}")
    for key in checks:
        if key not in value:
            raise ChartFormatError(f"{DOCUMENT}: missing field {where}{key}")
    return {key: check(value[key], where + key) for key, check in checks.items()}


def _string(value, where: str) -> str:
    if not isinstance(value, str):
        raise ChartFormatError(f"{DOCUMENT}: {where} must be a string, got {_kind(value)}")
    if not _is_text(value):
        raise ChartFormatError(f"{DOCUMENT}: {where} is not valid Unicode (a lone surrogate)")
    return value


def _is_text(value) -> bool:
    """A str that is valid Unicode: JSON's \\ud800 escapes can smuggle in lone surrogates,
    which no terminal or UTF-8 file can print."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ChartFormatError(f"{DOCUMENT}: {where} must be an object, got {_kind(value)}")
    return value


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise ChartFormatError(f"{DOCUMENT}: {where} must be an array, got {_kind(value)}")
    return value


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ChartFormatError(f"{DOCUMENT}: {where} must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):   # "1e999" parses to inf
        raise ChartFormatError(f"{DOCUMENT}: {where} must be finite, got {_short(value)}")
    return number


def _int(lo: int, hi: int):
    def check(value, where: str) -> int:
        if not _is_int(value):
            raise ChartFormatError(f"{DOCUMENT}: {where} must be an integer, got {_kind(value)}")
        if not lo <= value <= hi:
            raise ChartFormatError(f"{DOCUMENT}: {where} must be {lo}..{hi}, got "
                                   f"{_short(value)}")
        return value
    return check


def _nullable(check):
    return lambda value, where: None if value is None else check(value, where)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unique_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ChartFormatError(f"{DOCUMENT} repeats a key")
    return dict(pairs)


def _no_constant(name):
    raise ChartFormatError(f"{DOCUMENT} holds {name}, which JSON does not allow")


def _kind(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value),
                                                                         type(value).__name__)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
