"""The chart file format: exact round trips, a stable content id, and strict, safe reading."""
from __future__ import annotations

import io
import json
import os
import struct
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chart_store import chartfile
from chart_store.chart import (
    Chart, ChartError, ChartMeta, Fingerprint, Note, Phrase, TimeSignature,
)
from chart_store.chartfile import (
    ChartFormatError, chart_id, chart_to_json, dumps, loads, read_chart, write_chart,
)
from tests.data.make_example_chart import PATH as EXAMPLE, build as build_example
from tests.strategies import charts

PROPERTY = settings(max_examples=500, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: The example chart's id. It changes only if the format (or the example) changes on purpose.
EXAMPLE_ID = "9aa9574674fa020a9b69dbbe"


# --- helpers: take a valid file apart and put hostile variants back together -----------------


def members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def rezip(items, *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # zipfile warns about duplicate names
        with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
            for name, payload in items:
                archive.writestr(name, payload)
    return buffer.getvalue()


def document(data: bytes) -> dict:
    return json.loads(dict(members(data))["chart.json"])


def with_document(data: bytes, edit) -> bytes:
    """``data`` with chart.json replaced by ``edit(doc)`` (or the doc edited in place)."""
    items = members(data)
    doc = json.loads(items[0][1])
    doc = edit(doc) or doc
    text = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
    return rezip([("chart.json", text)] + items[1:])


def with_member(data: bytes, name: str, payload: bytes) -> bytes:
    return rezip([(n, payload if n == name else p) for n, p in members(data)])


def patch_central(data: bytes, name: str, **fields) -> bytes:
    """Overwrite fields of ``name``'s central directory entry (and its local header)."""
    layout = {"flags": (8, 6, "<H"), "method": (10, 8, "<H"), "size": (24, 22, "<L")}
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    cd_start = struct.unpack("<L", data[-6:-2])[0]
    cd_entry = data.index(b"PK\x01\x02", cd_start)
    while data[cd_entry + 46:cd_entry + 46 + len(name)] != name.encode():
        cd_entry = data.index(b"PK\x01\x02", cd_entry + 4)
    for key, value in fields.items():
        cd_offset, local_offset, fmt = layout[key]
        struct.pack_into(fmt, out, cd_entry + cd_offset, value)
        struct.pack_into(fmt, out, info.header_offset + local_offset, value)
    return bytes(out)


def small_chart() -> Chart:
    return Chart(ChartMeta("Song", artist="Band", duration_s=4.0),
                 {"expert": [Note(0.5, lane=1, pitch=60, stem="guitar"), Note(1.0, 0.5, 3)],
                  "easy": [Note(1.0, lane=0)]},
                 beats=[0.5, 1.0, 1.5], fingerprint=Fingerprint(np.arange(5, dtype=np.uint32)))


@pytest.fixture(scope="module")
def valid() -> bytes:
    return dumps(small_chart())


def reason(data: bytes) -> str:
    with pytest.raises(ChartFormatError) as caught:
        loads(data)
    assert "\n" not in str(caught.value)
    return caught.value.reason


# --- properties --------------------------------------------------------------------------------


@PROPERTY
@given(charts())
def test_every_valid_chart_round_trips_exactly(chart):
    data = dumps(chart)
    again = loads(data)
    assert again == chart
    assert dumps(again) == data                 # canonical: nothing drifts on a second trip
    assert again.id == chart_id(chart)          # the id survives the trip


def _json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                      max_size=3),
        max_leaves=6)


def _set_somewhere(doc, value, path):
    """Replace the value that ``path`` (a list of indices) walks down to in ``doc``."""
    node = doc
    for step in path:
        if not isinstance(node, (dict, list)) or not node:
            break
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = keys[step % len(keys)]
        if not isinstance(node[key], (dict, list)) or not node[key] or step % 3 == 0:
            node[key] = value
            return doc
        node = node[key]
    return value if node is doc else doc


_MUTATIONS = st.sampled_from(["flip", "truncate", "insert", "json-value", "json-text",
                              "member-bytes", "rename", "duplicate", "drop"])


@PROPERTY
@given(charts(max_notes=4), _MUTATIONS, st.data())
def test_corrupted_files_only_raise_chart_format_error(chart, mutation, data):
    valid = dumps(chart)
    items = members(valid)
    if mutation == "flip":
        positions = data.draw(st.lists(st.integers(0, len(valid) - 1), min_size=1, max_size=4))
        corrupt = bytearray(valid)
        for position in positions:
            corrupt[position] ^= data.draw(st.integers(1, 255))
        corrupt = bytes(corrupt)
    elif mutation == "truncate":
        corrupt = valid[:data.draw(st.integers(0, len(valid) - 1))]
    elif mutation == "insert":
        at = data.draw(st.integers(0, len(valid)))
        corrupt = valid[:at] + data.draw(st.binary(min_size=1, max_size=16)) + valid[at:]
    elif mutation == "json-value":
        path = data.draw(st.lists(st.integers(0, 50), min_size=1, max_size=5))
        corrupt = with_document(valid, lambda doc: _set_somewhere(
            doc, data.draw(_json_values()), path))
    elif mutation == "json-text":
        corrupt = with_member(valid, "chart.json", data.draw(st.binary(max_size=64)))
    elif mutation == "member-bytes":
        name = data.draw(st.sampled_from([n for n, _ in items[1:]]))
        corrupt = with_member(valid, name, data.draw(st.binary(max_size=64)))
    elif mutation == "rename":
        index = data.draw(st.integers(0, len(items) - 1))
        new = data.draw(st.sampled_from(["../x", "/etc/passwd", "a/../../b", "C:\\x",
                                         "chart.json", "x"]))
        corrupt = rezip([(new if i == index else n, p) for i, (n, p) in enumerate(items)])
    elif mutation == "duplicate":
        corrupt = rezip(items + [data.draw(st.sampled_from(items))])
    else:
        index = data.draw(st.integers(0, len(items) - 1))
        corrupt = rezip(items[:index] + items[index + 1:])
    try:
        result = loads(corrupt)
    except ChartFormatError as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert isinstance(result, Chart)        # a harmless change (a timestamp byte, say)
        assert loads(dumps(result)) == result


# --- the example file and the API ---------------------------------------------------------------


def test_example_file_matches_its_generator_and_pinned_id():
    chart = read_chart(EXAMPLE)
    assert chart == build_example()
    assert chart_id(chart) == EXAMPLE_ID        # same id on every machine and Python


def test_dumps_is_byte_deterministic_and_id_ignores_the_container():
    chart = small_chart()
    data = dumps(chart)
    assert dumps(chart) == data
    stored = rezip(members(data), compression=zipfile.ZIP_STORED)
    assert stored != data and loads(stored) == chart
    assert chart_id(loads(stored)) == chart_id(chart)


def test_id_tracks_content():
    chart = small_chart()
    other = Chart(chart.meta, {"expert": [Note(0.5, lane=2)]})
    assert chart_id(chart) != chart_id(other)
    assert len(chart_id(chart)) == 24 and int(chart_id(chart), 16) >= 0


def test_negative_zero_is_stored_as_zero():
    plus = Chart(ChartMeta("x", duration_s=0.0), {"expert": [Note(0.0, 0.0)]}, beats=[0.0])
    minus = Chart(ChartMeta("x", duration_s=-0.0), {"expert": [Note(-0.0, -0.0)]}, beats=[-0.0])
    assert plus == minus and dumps(plus) == dumps(minus)


def test_write_chart_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "song.chart"
    write_chart(small_chart(), path)
    write_chart(small_chart(), path)           # replacing an existing file
    assert read_chart(path) == small_chart()

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(chartfile.os, "replace", crash)   # the write dies before the rename
    with pytest.raises(OSError, match="disk gone"):
        write_chart(Chart(ChartMeta("other"), {"expert": [Note(1.0)]}), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.chart"]
    assert read_chart(path) == small_chart()


def test_chart_to_json_has_the_contract_shape():
    doc = chart_to_json(small_chart())
    assert {"format", "version", "id", "title", "artist", "duration_s",
            "difficulties"} <= doc.keys()
    assert doc["format"] == "loopjam-chart" and doc["version"] == 1  # no sync bands
    assert doc["id"] == chart_id(small_chart())
    assert list(doc["difficulties"]) == ["easy", "expert"]
    assert doc["difficulties"]["expert"][0] == {"t": 0.5, "dur": 0.0, "lane": 1, "pitch": 60,
                                                "stem": "guitar"}
    assert doc["difficulties"]["expert"][1]["pitch"] is None
    json.dumps(doc, allow_nan=False)


@pytest.mark.parametrize("note, message", [
    (Note(1.0, stem=3), "stems must be strings"),
    (Note(1.0, stem="\udc80"), "stems must be strings of valid Unicode"),
])
def test_writing_what_the_format_cannot_store_exactly_fails_clearly(note, message):
    with pytest.raises(ChartFormatError, match=message):
        dumps(Chart(ChartMeta("x"), {"expert": [note]}))


def test_mixed_stem_types_and_lone_surrogates_fail_on_writing():
    with pytest.raises(ChartFormatError, match="stems must be strings"):
        dumps(Chart(ChartMeta("x"), {"expert": [Note(1.0, stem="a"), Note(2.0, stem=3)]}))
    with pytest.raises(ChartFormatError, match="meta.title must be a string of valid Unicode"):
        dumps(Chart(ChartMeta("\ud800"), {}))


def test_too_many_stems_fail_on_writing():
    notes = [Note(float(i), stem=f"s{i}") for i in range(chartfile.MAX_STEMS + 1)]
    with pytest.raises(ChartFormatError, match="at most 256 stems"):
        dumps(Chart(ChartMeta("x"), {"expert": notes}))


# --- hostile and broken files: one clear message each ------------------------------------------


def test_future_version(valid):
    data = with_document(valid, lambda doc: doc.update(version=7, unknown_new_field=1))
    assert reason(data) == "version 7 is newer than this LoopJam supports (4)"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(version=0), "unknown chart version 0"),
    (lambda d: d.update(version="1"), "unknown chart version '1'"),
    (lambda d: d.update(format="other"), "not a LoopJam chart"),
    (lambda d: [1, 2], "chart.json must hold an object, got an array"),
    (lambda d: d["meta"].update(title=5), "meta.title must be a string, got an integer"),
    (lambda d: d["meta"].update(title="\ud800"), "meta.title is not valid Unicode"),
    (lambda d: d.update(stems=["guitar", "\udfff"]), "stems[] is not valid Unicode"),
    (lambda d: d["meta"].update(duration_s="long"), "meta.duration_s must be a number"),
    (lambda d: d["meta"].update(duration_s=True), "meta.duration_s must be a number"),
    (lambda d: d["meta"].update(duration_s=-1.0), "duration_s must be a finite number >= 0"),
    (lambda d: d["meta"].update(source="stolen"), "meta.source must be one of"),
    (lambda d: d["meta"].__delitem__("artist"), "missing field meta.artist"),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
    (lambda d: d.update(lanes=9), "lanes must be 4..7"),
    (lambda d: d.update(lanes=2.5), "lanes must be an integer"),
    (lambda d: d.update(difficulties=["insane"]), "unknown difficulty 'insane'"),
    (lambda d: d.update(difficulties=["easy", "easy"]), "listed twice"),
    (lambda d: d.update(stems=["a", "a"]), "distinct"),
    (lambda d: d["fingerprint"].update(algorithm=-1), "fingerprint.algorithm must be"),
    (lambda d: d["masks"].update(hop_s=0), "hop_s must be > 0"),
    (lambda d: d["arrays"]["beats"].update(dtype="f16"), "dtype is 'f16'"),
    (lambda d: d["arrays"]["beats"].update(dtype="<f8"), "dtype is '<f8'"),
    (lambda d: d["arrays"]["beats"].update(shape=[9_000_000]), "over the size limit"),
    (lambda d: d["arrays"]["masks.gains"].update(shape=[2**26, 2**26]), "over the size limit"),
    (lambda d: d["arrays"]["beats"].update(shape=[10**30]), "shape[] must be 0.."),
    (lambda d: d["arrays"]["beats"].update(shape=[-1]), "shape[] must be 0.."),
    (lambda d: d["arrays"]["beats"].update(shape=[3, 1]), "must have 1 dimension"),
    (lambda d: d["arrays"]["beats"].update(shape=[4]), "its descriptor says 32"),
    (lambda d: d["arrays"].__delitem__("notes.easy.lane"), "arrays lack 'notes.easy.lane'"),
    (lambda d: d["arrays"].update(secret={"dtype": "u1", "shape": [0]}), "unexpected array"),
    (lambda d: d["arrays"]["notes.easy.t"].update(shape=[2]), "differ in length"),
    (lambda d: d["arrays"]["masks.gains"].update(shape=[0, 3]), "bands"),
])
def test_wrong_document_content(valid, edit, message):
    assert message in reason(with_document(valid, edit))


@pytest.mark.parametrize("text, message", [
    ('{"format": NaN}', "holds NaN"),
    ('{"format": "loopjam-chart", "version": 1, "version": 1}', "repeats a key"),
    ("[" * 100_000, "not valid JSON"),
    ("{", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    ('{"format":"loopjam-chart","version":1' + ',"x":' + "9" * 5000 + "}", "not valid JSON"),
])
def test_malformed_json(valid, text, message):
    assert message in reason(with_member(valid, "chart.json", text))


def test_non_finite_number_spelled_as_a_huge_literal(valid):
    data = with_document(valid, lambda d: json.dumps(d).replace('"duration_s": 4.0',
                                                                '"duration_s": 1e999'))
    assert reason(data) == "chart.json: meta.duration_s must be finite, got inf"


@pytest.mark.parametrize("column, values, message", [
    ("notes.expert.lane", np.array([1, 9], np.uint8), "lane 9 outside 0..4"),
    ("notes.expert.pitch", np.array([60, -7], np.int8), "pitch is below -1"),
    ("notes.expert.stem", np.array([0, 5], np.uint8), "stem index is outside"),
    ("notes.expert.mask", np.array([-1, 3], np.int32), "refers to mask 3"),
    ("notes.expert.mask", np.array([-1, -2], np.int32), "mask index is below -1"),
    ("notes.expert.t", np.array([2.0, 1.0]), "sorted ascending"),
    ("notes.expert.t", np.array([np.nan, 1.0]), "finite times"),
    ("notes.expert.dur", np.array([0.0, -1.0]), "duration -1.0"),
    ("beats", np.array([1.0, 1.0, 2.0]), "beats must be finite and strictly ascending"),
])
def test_model_invariants_are_reported_as_format_errors(valid, column, values, message):
    assert message in reason(with_member(valid, column + ".bin", values.tobytes()))


def test_mask_frames_must_add_up():
    chart = build_example()
    data = dumps(chart)
    frames = np.frombuffer(dict(members(data))["masks.frames.bin"], np.uint32).copy()
    frames[0] += 1
    assert "masks.frames add up to 641" in reason(with_member(data, "masks.frames.bin",
                                                              frames.tobytes()))


@pytest.mark.parametrize("data, message", [
    (b"", "no ZIP end record"),
    (b"hello, I am not a zip file at all" * 10, "no ZIP end record"),
])
def test_not_a_zip(data, message):
    assert message in reason(data)


def test_truncated(valid):
    assert "no ZIP end record" in reason(valid[:-1])
    assert "central directory is not where" in reason(valid[:100] + valid[-22:])


def test_archive_comment_and_padding_are_refused(valid):
    commented = bytearray(valid)
    commented[-2:] = struct.pack("<H", 3)
    assert "archive comment" in reason(bytes(commented))
    assert "no ZIP end record" in reason(bytes(commented) + b"abc")
    assert "no ZIP end record" in reason(valid + b"\0" * 10)


@pytest.mark.parametrize("name, message", [
    ("../x", "points outside the archive"),
    ("notes/../../x", "points outside the archive"),
    ("..\\x", "points outside the archive"),
    ("/etc/passwd", "absolute path"),
    ("C:\\windows", "absolute path"),
    ("evil.bin", "unexpected member 'evil.bin'"),
])
def test_hostile_member_names(valid, name, message):
    assert message in reason(rezip(members(valid) + [(name, b"x")]))


def test_duplicate_and_missing_members(valid):
    items = members(valid)
    assert reason(rezip(items + [items[0]])) == "duplicate member 'chart.json'"
    assert reason(rezip(items[1:])) == "missing member 'chart.json'"
    assert reason(rezip(items[:1] + items[2:])) == f"missing member {items[1][0]!r}"


def test_too_many_members(valid):
    items = members(valid) + [(f"x{i}", b"") for i in range(chartfile.MAX_MEMBERS)]
    assert "over the limit of 64" in reason(rezip(items))


def test_zip_bomb_declared_size_over_the_member_limit(valid):
    # No need for a real 64 MiB payload: the declared size alone is refused, before reading.
    data = patch_central(valid, "beats.bin", size=chartfile.MAX_MEMBER_BYTES + 1)
    assert "declares 67108865 bytes, over the 67108864-byte limit" in reason(data)


def test_zip_bomb_declared_total_over_the_limit(valid):
    data = valid
    for name in ["beats.bin", "notes.expert.t.bin", "notes.easy.t.bin", "notes.expert.dur.bin",
                 "notes.easy.dur.bin"]:
        data = patch_central(data, name, size=chartfile.MAX_MEMBER_BYTES)
    assert "over 268435456 bytes in all" in reason(data)


def test_zip_bomb_that_lies_about_its_size_is_read_no_further(valid):
    # 32 MiB of zeros deflated to ~32 KiB, declared as the 24 bytes beats.bin should hold.
    bomb = rezip([(n, bytes(32 * 2**20) if n == "beats.bin" else p) for n, p in members(valid)])
    bomb = patch_central(bomb, "beats.bin", size=24)
    assert reason(bomb).startswith("corrupt archive: ")     # CRC of the first 24 bytes fails


def test_encrypted_and_unsupported_compression(valid):
    assert reason(patch_central(valid, "beats.bin", flags=0x1)) == \
        "member 'beats.bin' is encrypted"
    bz = rezip(members(valid), compression=zipfile.ZIP_BZIP2)
    assert reason(bz) == "member 'chart.json' uses unsupported compression 12"


def test_crc_mismatch_is_corruption(valid):
    items = members(valid)
    stored = rezip(items, compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(io.BytesIO(stored)) as archive:
        offset = archive.getinfo("beats.bin").header_offset + 30 + len("beats.bin")
    corrupt = bytearray(stored)
    corrupt[offset] ^= 0xFF
    assert "Bad CRC-32" in reason(bytes(corrupt))


# --- read_chart on the file system -------------------------------------------------------------


def test_read_chart_names_the_file(tmp_path):
    path = tmp_path / "broken.chart"
    path.write_bytes(b"nope")
    with pytest.raises(ChartFormatError) as caught:
        read_chart(path)
    assert str(caught.value) == f"{path}: not a chart file (no ZIP end record at its end: " \
                                "truncated, padded or not a ZIP)"
    assert caught.value.path == str(path)


def test_read_chart_refuses_special_and_huge_files(tmp_path):
    with pytest.raises(ChartFormatError, match="not a regular file"):
        read_chart(tmp_path)
    fifo = tmp_path / "fifo.chart"
    os.mkfifo(fifo)
    with pytest.raises(ChartFormatError, match="not a regular file"):
        read_chart(fifo)                        # must not block waiting for a writer
    huge = tmp_path / "huge.chart"
    with open(huge, "wb") as out:               # sparse: costs no disk
        out.truncate(chartfile.MAX_FILE_BYTES + 1)
    with pytest.raises(ChartFormatError, match="over the 268435456-byte limit"):
        read_chart(huge)


def test_read_chart_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_chart(tmp_path / "absent.chart")


def test_loads_needs_bytes():
    with pytest.raises(TypeError):
        loads("not bytes")
    assert isinstance(loads(bytearray(Path(EXAMPLE).read_bytes())), Chart)


def test_the_documented_example_is_what_the_writer_makes():
    text = (Path(__file__).resolve().parents[1] / "docs" / "chart-format.md").read_text()
    documented = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    chart = Chart(ChartMeta("Song", artist="Band", duration_s=4.0),
                  {"expert": [Note(0.5, lane=1, pitch=60, stem="guitar"), Note(1.0, 0.5, 3)]},
                  beats=[0.5, 1.0, 1.5])
    data = dumps(chart)
    assert dict(members(data))["chart.json"].decode() == documented
    assert f"is a {len(data):,}-byte file with id `{chart_id(chart)}`".replace(",", " ") in text


# --- the sync reference's coarse bands (optional: charts before them have none) ---------------


def banded_chart(bands=None, band_rate=10.0) -> Chart:
    from chart_store.chart import SyncReference

    rng = np.random.default_rng(3)
    bands = rng.integers(0, 256, size=(40, 24)).astype(np.uint8) if bands is None else bands
    sync = SyncReference(rng.random(400).astype(np.float32), 100.0, bands=bands,
                         band_rate=band_rate)
    return Chart(ChartMeta("Song", duration_s=4.0), {"expert": [Note(1.0, lane=2)]}, sync=sync)


@pytest.fixture(scope="module")
def banded() -> bytes:
    return dumps(banded_chart())


def test_sync_bands_round_trip_exactly(banded):
    chart = loads(banded)
    assert chart == banded_chart() and chart.sync.bands.dtype == np.uint8
    assert chart.sync.bands.shape == (40, 24) and chart.sync.band_rate == 10.0
    assert document(banded)["arrays"]["sync.bands"] == {"dtype": "u1", "shape": [40, 24]}
    assert chart_id(chart) == chart_id(banded_chart())
    # the bands are content: other bands, another id
    other = banded_chart().sync.bands.copy()
    other[0, 0] ^= 1
    assert chart_id(banded_chart(other)) != chart_id(banded_chart())


def test_charts_without_bands_keep_their_bytes_and_load_without_them(banded):
    # A chart written before the bands existed: no band_rate, no sync.bands member.
    from chart_store.chart import SyncReference

    old = dumps(Chart(ChartMeta("Song", duration_s=4.0), {"expert": [Note(1.0, lane=2)]},
                      sync=SyncReference(np.ones(400, np.float32), 100.0)))
    assert document(old)["sync"] == {"frame_rate": 100.0} and document(old)["version"] == 1
    assert "sync.bands.bin" not in dict(members(old))
    chart = loads(old)
    assert chart.sync.bands is None and chart.sync.band_rate is None
    # ... and a banded chart stripped of its bands is such a chart
    def strip(doc):
        del doc["sync"]["band_rate"]
        del doc["arrays"]["sync.bands"]
    stripped = rezip([(n, p) for n, p in members(with_document(banded, strip))
                      if n != "sync.bands.bin"])
    assert loads(stripped).sync.bands is None


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["arrays"].__delitem__("sync.bands"), "arrays lack 'sync.bands'"),
    (lambda d: d["sync"].__delitem__("band_rate"), "unexpected array 'sync.bands'"),
    (lambda d: d["sync"].update(band_rate=0), "band_rate must be > 0"),
    (lambda d: d["sync"].update(band_rate=-10.0), "band_rate must be > 0"),
    (lambda d: d["sync"].update(band_rate="10"), "sync.band_rate must be a number"),
    (lambda d: d["sync"].update(band_rate=None), "sync.band_rate must be a number"),
    (lambda d: d["sync"].update(bands=[]), "unknown field sync.'bands'"),
    (lambda d: d["arrays"]["sync.bands"].update(dtype="f4"), "stores sync.bands as 'u1'"),
    (lambda d: d["arrays"]["sync.bands"].update(dtype="f2"), "dtype is 'f2'"),
    (lambda d: d["arrays"]["sync.bands"].update(shape=[960]), "must have 2 dimension"),
    (lambda d: d["arrays"]["sync.bands"].update(shape=[40, 24, 1]), "must have 2 dimension"),
    (lambda d: d["arrays"]["sync.bands"].update(shape=[2**40, 24]), "shape[] must be 0.."),
    (lambda d: d["arrays"]["sync.bands"].update(shape=[2**25, 24]), "over the size limit"),
    (lambda d: d["arrays"]["sync.bands"].update(shape=[40, 23]), "its descriptor says 920"),
])
def test_wrong_sync_bands(banded, edit, message):
    assert message in reason(with_document(banded, edit))


def test_a_chart_with_bands_is_version_2_and_version_1_cannot_carry_them(banded):
    # A version 1 reader refuses the file as newer instead of as corrupt ...
    assert document(banded)["version"] == 2
    assert chart_to_json(loads(banded))["version"] == 2
    # ... and a version 1 file with bands is not a file any writer makes.
    assert "unknown field sync.'band_rate'" in reason(
        with_document(banded, lambda d: d.update(version=1)))


def test_sync_bands_shapes_that_hold_no_band_are_refused(banded):
    data = with_member(with_document(banded, lambda d: d["arrays"]["sync.bands"].update(
        shape=[1, 0])), "sync.bands.bin", b"")
    assert "sync bands must be integers of shape (rows, 1..256)" in reason(data)
    wide = with_member(with_document(banded, lambda d: d["arrays"]["sync.bands"].update(
        shape=[3, 320])), "sync.bands.bin", bytes(960))
    assert "sync bands must be integers of shape (rows, 1..256)" in reason(wide)


def test_nan_band_rate_is_refused(banded):
    data = with_document(banded, lambda d: json.dumps(d).replace('"band_rate": 10.0',
                                                                 '"band_rate": NaN'))
    assert "holds NaN" in reason(data)


@pytest.mark.parametrize("bands, band_rate, message", [
    (np.zeros((4, 24), np.float32) + np.nan, 10.0, "must be integers"),
    (np.full((4, 24), 300), 10.0, "must be bytes"),
    (np.full((4, 24), -1), 10.0, "must be bytes"),
    (np.zeros(24, np.uint8), 10.0, "shape (rows, 1..256)"),
    (np.zeros((4, 24), np.uint8), float("nan"), "band_rate must be > 0"),
    (np.zeros((4, 24), np.uint8), None, "come together"),
    (None, 10.0, "come together"),
])
def test_sync_bands_model_checks(bands, band_rate, message):
    from chart_store.chart import ChartError, SyncReference

    with pytest.raises(ChartError) as caught:
        SyncReference(np.zeros(40, np.float32), 100.0, bands=bands, band_rate=band_rate)
    assert message in str(caught.value)


def test_credits_make_a_version_3_file_and_a_chart_without_them_keeps_its_bytes():
    plain = Chart(ChartMeta("Song", duration_s=4.0), {"expert": [Note(1.0, lane=2)]})
    credited = Chart(replace(plain.meta, charter="Someone", genre="Metal", year="2007"),
                     plain.difficulties)
    assert document(dumps(plain))["version"] == 1
    assert "charter" not in document(dumps(plain))["meta"]
    data = dumps(credited)
    assert document(data)["version"] == 3
    assert {k: document(data)["meta"][k] for k in ChartMeta.CREDITS} == {
        "charter": "Someone", "genre": "Metal", "year": "2007"}
    assert loads(data) == credited and chart_id(credited) != chart_id(plain)
    assert chart_to_json(credited)["charter"] == "Someone"
    # Earlier versions carry no credits: such a file is corrupt, not silently stripped.
    assert "unknown field meta.'charter'" in reason(
        with_document(data, lambda d: d.update(version=2)))
    assert "missing field meta.genre" in reason(
        with_document(data, lambda d: d["meta"].__delitem__("genre")))


def test_phrases_make_a_version_4_file_and_are_checked_like_every_field():
    plain = Chart(ChartMeta("Song", duration_s=8.0), {"expert": [Note(1.0, lane=2)]})
    marked = replace(plain, phrases=(Phrase("solo", 2.0, 3.0), Phrase("star_power", 0.5, 1.25)))
    assert [p.kind for p in marked.phrases] == ["star_power", "solo"]     # kept by time
    data = dumps(marked)
    assert document(data)["version"] == 4 and document(dumps(plain))["version"] == 1
    assert document(data)["phrases"] == [{"kind": "star_power", "t": 0.5, "dur": 1.25},
                                         {"kind": "solo", "t": 2.0, "dur": 3.0}]
    assert loads(data) == marked and chart_id(marked) != chart_id(plain)
    assert chart_to_json(marked)["phrases"][1] == {"kind": "solo", "t": 2.0, "dur": 3.0}
    assert "unknown field 'phrases'" in reason(with_document(data, lambda d: d.update(version=3)))
    assert "phrase kind must be one of" in reason(
        with_document(data, lambda d: d["phrases"][0].update(kind="overdrive")))
    assert "has duration -1" in reason(
        with_document(data, lambda d: d["phrases"][0].update(dur=-1)))
    assert "missing field phrases[].t" in reason(
        with_document(data, lambda d: d["phrases"][1].__delitem__("t")))
    with pytest.raises(ChartError, match="phrase kind"):
        Phrase("fill", 1.0)


def test_time_signatures_make_a_version_4_file_too():
    plain = Chart(ChartMeta("Song", duration_s=8.0), {"expert": [Note(1.0, lane=2)]})
    metred = replace(plain, time_signatures=(TimeSignature(2.0, 7, 8), TimeSignature(0.0, 4, 4)))
    data = dumps(metred)
    assert document(data)["version"] == 4 and document(data)["phrases"] == []
    assert document(data)["time_signatures"] == [
        {"t": 0.0, "numerator": 4, "denominator": 4}, {"t": 2.0, "numerator": 7, "denominator": 8}]
    assert loads(data) == metred and chart_to_json(metred)["time_signatures"][1]["numerator"] == 7
    assert "need 1..255 beats of a 1/2^k note" in reason(
        with_document(data, lambda d: d["time_signatures"][0].update(denominator=6)))
    assert "numerator must be" in reason(
        with_document(data, lambda d: d["time_signatures"][0].update(numerator=0)))
