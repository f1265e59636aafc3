"""The chart model: time queries and the invariants every chart keeps."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chart_store.chart import (
    Chart, ChartError, ChartMeta, Fingerprint, MaskBank, Note, Source, SpectralMask,
    SyncReference, Track,
)
from chart_store.chartfile import chart_id


def track(*times) -> Track:
    return Track(tuple(Note(t, lane=i % 4) for i, t in enumerate(times)))


def test_notes_between_is_half_open():
    notes = track(1.0, 1.5, 2.0, 2.0, 3.0)
    assert [n.t for n in notes.notes_between(1.5, 2.0)] == [1.5]
    assert [n.t for n in notes.notes_between(1.5, 2.0000001)] == [1.5, 2.0, 2.0]
    assert notes.notes_between(3.5, 9.0) == ()
    assert notes.notes_between(2.0, 1.0) == ()
    assert notes.index_range(2.0, 3.0) == range(2, 4)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), max_size=30), st.floats(-2e6, 2e6), st.floats(-2e6, 2e6))
def test_notes_between_matches_a_linear_scan(times, t0, t1):
    notes = track(*sorted(times))
    assert notes.notes_between(t0, t1) == tuple(n for n in notes if t0 <= n.t < t1)


def test_track_basics():
    notes = track(1.0, 2.0, 5.0)
    assert len(notes) == 3 and notes[1].t == 2.0 and [n.t for n in notes] == [1.0, 2.0, 5.0]
    assert notes.density() == pytest.approx(0.5)
    assert track(1.0).density() == 0.0 and track(2.0, 2.0).density() == 0.0
    assert not notes.times.flags.writeable
    assert Note(1.0, 0.5).end == 1.5


@pytest.mark.parametrize("times", [(2.0, 1.0), (float("nan"),), (1.0, float("inf"))])
def test_track_needs_finite_sorted_times(times):
    with pytest.raises(ChartError, match="finite times sorted ascending"):
        track(*times)


def meta() -> ChartMeta:
    return ChartMeta("Song")


@pytest.mark.parametrize("build, message", [
    (lambda: Chart(meta(), {}, lanes=3), "lanes must be 4..7"),
    (lambda: Chart(meta(), {}, lanes=8), "lanes must be 4..7"),
    (lambda: Chart(meta(), {"insane": []}), "unknown difficulties"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, lane=5)]}), "lane 5 outside 0..4"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, lane=-1)]}), "lane -1 outside"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, lane=1.5)]}), "lane 1.5 outside"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, pitch=128)]}), "pitch 128, not a MIDI"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, pitch=-1)]}), "pitch -1, not a MIDI"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, pitch=60.0)]}), "pitch 60.0, not a MIDI"),
    (lambda: ChartMeta("x", source="bootleg"), "unknown source 'bootleg'"),
    (lambda: Fingerprint([1], algorithm=-1), "algorithm must be 0..2"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, mask=0)]}), "refers to mask 0"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, dur=-0.5)]}), "duration -0.5"),
    (lambda: Chart(meta(), {"expert": [Note(1.0, dur=float("nan"))]}), "duration nan"),
    (lambda: Chart(meta(), {}, beats=[1.0, 1.0]), "beats must be finite and strictly"),
    (lambda: Chart(meta(), {}, beats=[[1.0]]), "beats must be finite and strictly"),
    (lambda: ChartMeta("x", duration_s=-1.0), "duration_s must be a finite number"),
    (lambda: ChartMeta("x", duration_s=float("inf")), "duration_s must be a finite number"),
    (lambda: Fingerprint(np.zeros((2, 2))), "one-dimensional"),
    (lambda: Fingerprint([1], item_s=0.0), "item_s must be > 0"),
    (lambda: SyncReference([0.0, float("nan")], 100.0), "finite one-dimensional"),
    (lambda: SyncReference([0.0], 0.0), "frame_rate must be > 0"),
    (lambda: SpectralMask(0.0, np.zeros(3)), "2-D"),
    (lambda: SpectralMask(float("nan"), np.zeros((1, 1))), "start_s must be finite"),
    (lambda: MaskBank(np.array([100.0, 50.0])), "strictly ascending"),
    (lambda: MaskBank(np.array([-1.0, 50.0])), ">= 0"),
    (lambda: MaskBank(hop_s=0.0), "hop_s must be > 0"),
    (lambda: MaskBank(np.array([0.0, 100.0]), masks=(SpectralMask(0.0, np.zeros((1, 2))),)),
     "mask 0 has 2 bands, the bank has 1"),
])
def test_invariants_raise_chart_error(build, message):
    with pytest.raises(ChartError, match=message):
        build()


def test_chart_error_is_a_value_error():
    assert issubclass(ChartError, ValueError)


def test_difficulties_are_kept_in_canonical_order_and_named_on_miss():
    chart = Chart(meta(), {"expert": [Note(1.0)], "easy": (Note(2.0),)})
    assert list(chart.difficulties) == ["easy", "expert"]
    assert isinstance(chart.difficulties["easy"], Track)
    assert chart.hardest() == "expert"
    with pytest.raises(KeyError, match="has easy, expert"):
        chart.track("hard")


def test_equality_and_id_follow_the_content():
    a = Chart(meta(), {"expert": [Note(1.0, lane=1)]}, beats=[0.5, 1.0])
    b = Chart(meta(), {"expert": (Note(1.0, lane=1),)}, beats=np.array([0.5, 1.0]))
    c = Chart(meta(), {"expert": [Note(1.0, lane=2)]}, beats=[0.5, 1.0])
    assert a == b and a != c
    assert a.id == b.id == chart_id(a) != c.id
    with pytest.raises(TypeError):
        hash(a)


def test_arrays_are_read_only_copies():
    items = np.arange(4, dtype=np.uint32)
    fingerprint = Fingerprint(items)
    items[0] = 99
    assert fingerprint.items[0] == 0 and not fingerprint.items.flags.writeable
    assert SpectralMask(0.0, np.full((1, 2), 255)).gain_fraction().tolist() == [[1.0, 1.0]]


def test_source_rank_prefers_human_charts():
    assert Source.IMPORTED_HUMAN.rank > Source.ANALYZED.rank > Source.RECORDED_LIVE.rank
    assert ChartMeta("x", source="imported-human").source is Source.IMPORTED_HUMAN
    with pytest.raises(ValueError):
        ChartMeta("x", source="stolen")
