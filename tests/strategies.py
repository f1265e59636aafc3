"""Hypothesis strategies for LoopJam's records, shared by the tests.

``charts()`` draws any chart the model accepts and the file format can store: any finite
times (negative, subnormal, -0.0 included), any text, 4..7 lanes, any subset of difficulties,
optional fingerprint and sync reference, a mask bank of 0..3 bands whose masks the notes use,
0..2 phrases and time signatures.
Sizes stay small so that hundreds of examples run in seconds. Strategies are built once, at
import: building them inside ``@composite`` functions costs more than drawing from them.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from chart_store.chart import (
    DIFFICULTIES, MAX_LANES, MIN_LANES, PHRASE_KINDS, Chart, ChartMeta, Fingerprint, MaskBank,
    Note, Phrase, Source, SpectralMask, SyncReference, TimeSignature,
)

MAX_MASKS = 3
finite = st.floats(allow_nan=False, allow_infinity=False)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
non_negative = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False)
stem_names = st.sampled_from(["mix", "guitar", "bass", "drums", "other"]) | st.text(max_size=6)
pitches = st.none() | st.integers(0, 127)

metas = st.builds(ChartMeta, title=st.text(max_size=12), artist=st.text(max_size=12),
                  album=st.text(max_size=8), duration_s=non_negative,
                  source=st.sampled_from(list(Source)), tool_version=st.text(max_size=6),
                  charter=st.just("") | st.text(max_size=6),
                  genre=st.just("") | st.text(max_size=4), year=st.just("") | st.text(max_size=4))
fingerprints = st.builds(
    Fingerprint, items=st.lists(st.integers(0, 2**32 - 1), max_size=4).map(
        lambda v: np.array(v, np.uint32)),
    algorithm=st.integers(0, 4), item_s=positive)
sync_references = st.builds(
    SyncReference, envelope=st.lists(finite32, max_size=4).map(lambda v: np.array(v, np.float32)),
    frame_rate=positive)
_band_edges = st.lists(st.floats(min_value=0, allow_infinity=False, width=32), max_size=4,
                       unique=True).map(lambda v: np.array(sorted(v), np.float32))
_mask_field_lists = st.lists(st.tuples(finite, st.binary(max_size=9), st.integers(0, 3)),
                             max_size=MAX_MASKS)
_beat_lists = st.lists(finite, unique=True, max_size=4)
_maybe_fingerprint = st.none() | fingerprints
_maybe_sync = st.none() | sync_references
_difficulty_names = st.lists(st.sampled_from(DIFFICULTIES), unique=True, max_size=4)
_lanes = st.integers(MIN_LANES, MAX_LANES)
_phrase_lists = st.lists(st.builds(Phrase, kind=st.sampled_from(PHRASE_KINDS), t=finite,
                                   dur=non_negative), max_size=2).map(tuple)
_metre_lists = st.lists(st.builds(TimeSignature, t=finite, numerator=st.integers(1, 255),
                                  denominator=st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128])),
                        max_size=2).map(tuple)
# Lane and mask are reduced modulo the chart's lanes and masks when the chart is built.
_note_fields = st.tuples(finite, non_negative, st.integers(0, MAX_LANES - 1), pitches,
                         stem_names, st.none() | st.integers(0, MAX_MASKS - 1))


@st.composite
def mask_banks(draw) -> MaskBank:
    """A bank of 0..3 bands and 0..3 masks of 0..3 frames."""
    edges = draw(_band_edges)
    n_bands = max(edges.size - 1, 0)
    masks = []
    for start_s, gains, frames in draw(_mask_field_lists):
        if n_bands:
            frames = len(gains) // n_bands
        masks.append(SpectralMask(start_s, np.frombuffer(
            gains[:frames * n_bands], np.uint8).reshape(frames, n_bands)))
    return MaskBank(band_edges_hz=edges, hop_s=draw(positive), masks=tuple(masks))


def charts(max_notes: int = 6) -> st.SearchStrategy[Chart]:
    """Any chart the format can store exactly, with at most ``max_notes`` notes in all."""
    return _charts(st.lists(_note_fields, max_size=max_notes))


@st.composite
def _charts(draw, note_lists) -> Chart:
    lanes = draw(_lanes)
    masks = draw(_mask_banks)
    names = draw(_difficulty_names)
    notes = sorted((Note(t, dur, lane % lanes, pitch, stem,
                         None if mask is None or not len(masks) else mask % len(masks))
                    for t, dur, lane, pitch, stem, mask in draw(note_lists)), key=lambda n: n.t)
    # One time-sorted list dealt out among the difficulties keeps each one sorted.
    difficulties = {name: notes[i::len(names)] for i, name in enumerate(names)}
    beats = sorted(draw(_beat_lists))
    return Chart(meta=draw(metas), difficulties=difficulties, lanes=lanes,
                 beats=np.array(beats, np.float64),
                 fingerprint=draw(_maybe_fingerprint), sync=draw(_maybe_sync),
                 masks=masks, phrases=draw(_phrase_lists),
                 time_signatures=draw(_metre_lists))


_mask_banks = mask_banks()
