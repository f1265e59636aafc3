"""Chromaprint fingerprints and the excerpt index, on synthetic songs with known answers."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from chart_store.fingerprint import (ITEM_S, FingerprintError, _lib, bit_error_rate,
                                     fingerprint)
from chart_store.index import ACCEPT_BER, SHORT_ACCEPT_BER, FingerprintIndex, probe_masks
from tests.fixtures.songs import synth_song

SR = 22050
N_SONGS = 8


@pytest.fixture(scope="module")
def songs():
    return [synth_song(seed, duration_s=30.0, sr=SR) for seed in range(N_SONGS)]


@pytest.fixture(scope="module")
def index(songs):
    index = FingerprintIndex()
    for seed, y in enumerate(songs):
        index.add(f"song{seed}", fingerprint(y, SR).items)
    return index


def test_item_period_is_the_library_hop():
    lib = _lib()
    ctx = lib.chromaprint_new(1)
    try:
        assert ITEM_S == lib.chromaprint_get_item_duration(ctx) / 11025
    finally:
        lib.chromaprint_free(ctx)


def test_items_per_second_and_determinism(songs):
    fp = fingerprint(songs[0], SR)
    assert fp.items.dtype == np.uint32 and fp.item_s == ITEM_S and fp.algorithm == 2
    # Item k covers ~2.6 s from k * ITEM_S on, so 30 s hold (30 - 2.6) / ITEM_S + 1 items.
    assert abs(len(fp.items) - ((30.0 - 2.6) / ITEM_S + 1)) <= 2
    assert fingerprint(songs[0], SR) == fp
    assert bit_error_rate(fp.items, fingerprint(songs[1], SR).items[:len(fp.items)]) > 0.25


@pytest.mark.parametrize("transform", ["stereo", "gain-10dB", "gain+10dB", "44100", "48000"])
def test_robust_to_what_playback_does(songs, transform):
    y = songs[2]
    ref = fingerprint(y, SR).items
    if transform == "stereo":
        y2, sr2 = np.stack([y, 0.5 * y]), SR
    elif transform.startswith("gain"):
        y2, sr2 = np.clip(y * 10 ** (float(transform[4:-2]) / 20), -1, 1), SR
    else:
        sr2 = int(transform)
        y2 = resample_poly(y, sr2 // 50, SR // 50).astype(np.float32)
    items = fingerprint(y2, sr2).items
    n = min(len(items), len(ref))
    assert bit_error_rate(items[:n], ref[:n]) < 0.1


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2)), np.array([0.0, np.nan])])
def test_bad_audio_is_refused(bad):
    with pytest.raises(FingerprintError):
        fingerprint(bad, SR)


def test_bad_sample_rate_is_refused():
    with pytest.raises(FingerprintError):
        fingerprint(np.zeros(100), 0)


def test_too_short_audio_has_no_items():
    assert len(fingerprint(np.zeros(SR), SR).items) == 0


def test_bit_error_rate():
    a = np.array([0, 0xFFFFFFFF], np.uint32)
    assert bit_error_rate(a, a) == 0.0
    assert bit_error_rate(a, ~a) == 1.0
    with pytest.raises(ValueError):
        bit_error_rate(a, a[:1])


def test_threshold_is_stricter_for_short_queries():
    index = FingerprintIndex()
    assert index.threshold(3) == SHORT_ACCEPT_BER < index.threshold(10) < ACCEPT_BER
    assert index.threshold(19) == index.threshold(500) == ACCEPT_BER


def test_probe_masks():
    assert len(probe_masks(0)) == 1 and len(probe_masks(1)) == 33 and len(probe_masks(2)) == 529
    assert len(np.unique(probe_masks(2))) == 529


@pytest.mark.parametrize("duration_s", [3.0, 5.0, 10.0])
def test_excerpts_from_anywhere_are_found_with_their_offset(songs, index, duration_s):
    rng = np.random.default_rng(int(duration_s))
    for seed, y in enumerate(songs):
        start = rng.uniform(0, 30.0 - duration_s)
        clip = y[int(start * SR):int((start + duration_s) * SR)] * 0.5
        hits = index.search(fingerprint(clip, SR).items)
        assert hits and hits[0].key == f"song{seed}", (seed, start, hits)
        assert abs(hits[0].offset_s - start) <= 0.13, (seed, start, hits[0])
        assert hits[0].bit_error_rate <= index.threshold(hits[0].overlap) <= ACCEPT_BER


def _ffmpeg_roundtrip(y, sr, codec, tmp_path):
    src, dst, back = tmp_path / "in.wav", tmp_path / f"out.{codec}", tmp_path / "back.wav"
    sf.write(src, y, sr)
    args = {"mp3": ["-c:a", "libmp3lame"], "opus": ["-c:a", "libopus"],
            "m4a": ["-c:a", "aac"]}[codec]
    for cmd in (["ffmpeg", "-y", "-loglevel", "error", "-i", str(src), *args, "-b:a", "96k",
                 str(dst)],
                ["ffmpeg", "-y", "-loglevel", "error", "-i", str(dst), "-ar", "48000",
                 str(back)]):
        subprocess.run(cmd, check=True, timeout=60)
    out, sr_out = sf.read(back, dtype="float32")
    return out, sr_out


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("codec", ["mp3", "opus", "m4a"])
def test_lossy_reencoded_quiet_resampled_excerpt(songs, index, codec, tmp_path):
    start = 11.37
    clip = songs[5][int(start * SR):int((start + 5.0) * SR)] * 10 ** (-8 / 20)
    clip = clip * np.minimum(1.0, np.arange(clip.size) / (0.5 * SR))  # a short fade-in
    degraded, sr = _ffmpeg_roundtrip(clip, SR, codec, tmp_path)
    hits = index.search(fingerprint(degraded, sr).items)
    assert hits and hits[0].key == "song5"
    # Codecs delay the signal a little (encoder padding is trimmed, not always exactly).
    assert abs(hits[0].offset_s - start) <= 0.13


def test_unknown_songs_are_rejected(index):
    for seed in range(100, 110):
        clip = synth_song(seed, duration_s=10.0, sr=SR)
        assert index.search(fingerprint(clip, SR).items) == [], seed


def test_noise_and_silence_are_rejected(index):
    rng = np.random.default_rng(3)
    assert index.search(fingerprint(rng.standard_normal(5 * SR) * 0.1, SR).items) == []
    assert index.search(fingerprint(np.zeros(5 * SR), SR).items) == []


def test_add_remove_reindex(songs):
    index = FingerprintIndex()
    items = fingerprint(songs[0], SR).items
    index.add("a", items)
    assert index.search(items[50:90])[0].key == "a"
    index.add("b", items)  # the same recording twice: both verify
    assert {h.key for h in index.search(items[50:90])} == {"a", "b"}
    index.remove("a")
    index.remove("missing")
    assert [h.key for h in index.search(items[50:90])] == ["b"]
    assert len(index) == 1 and index.nbytes > items.nbytes


def test_empty_index_and_query():
    index = FingerprintIndex()
    assert index.search(np.arange(40, dtype=np.uint32)) == []
    index.add("a", np.arange(100, dtype=np.uint32))
    assert index.search(np.zeros(0, np.uint32)) == []


def test_query_at_the_edges_of_a_recording(songs, index):
    y = songs[3]
    head = index.search(fingerprint(y[:int(4 * SR)], SR).items)
    tail = index.search(fingerprint(y[-int(4 * SR):], SR).items)
    assert head[0].key == tail[0].key == "song3"
    assert abs(head[0].offset_s) <= 0.13 and abs(tail[0].offset_s - 26.0) <= 0.13


def test_a_whole_recording_as_query_costs_a_bounded_lookup(songs, index):
    hits = index.search(fingerprint(songs[6], SR).items)
    assert hits[0].key == "song6" and abs(hits[0].offset_s) <= 0.13
    assert hits[0].bit_error_rate == 0.0


def test_bucketed_lookup_finds_exactly_the_positions_of_each_value():
    rng = np.random.default_rng(5)
    # Few distinct values (many per bucket) and values that share their high bits.
    runs = [rng.choice(rng.integers(0, 2**32, 300, dtype=np.uint32), size=400)
            ^ rng.integers(0, 256, 400).astype(np.uint32) for _ in range(6)]
    index = FingerprintIndex(max_postings=10**6)
    for k, run in enumerate(runs):
        index.add(f"r{k}", run)
    snap = index._snapshot()
    every = np.concatenate(runs)
    probes = np.concatenate([every[::7], rng.integers(0, 2**32, 200, dtype=np.uint32)])
    positions, rows = snap.lookup(probes, np.arange(probes.size))
    for row, probe in enumerate(probes):
        assert sorted(positions[rows == row]) == list(np.flatnonzero(every == probe))


def test_stop_values_are_left_out_of_the_postings():
    rng = np.random.default_rng(6)
    song = rng.integers(0, 2**32, 300, dtype=np.uint32)
    silence = np.full(200, 0x256DF977, np.uint32)  # one value repeated: no information
    index = FingerprintIndex(max_postings=100)
    index.add("song", np.concatenate([silence, song]))
    assert index._snapshot().postings.size == song.size
    assert index.search(silence[:40]) == []
    assert index.search(song[50:90])[0].key == "song"


def test_index_memory_is_about_nine_bytes_an_item():
    rng = np.random.default_rng(7)
    index = FingerprintIndex()
    for k in range(20):
        index.add(f"r{k}", rng.integers(0, 2**32, 5000, dtype=np.uint32))
    # 4 bytes an item, 4 a posting, 2 of low bits at this size, a table of ~4 bytes an item.
    assert index.nbytes < 14 * 100_000


def test_silence_in_the_index_does_not_match_silence_or_a_held_tone(songs):
    # Silence (and a steady tone) give one item over and over: it identifies nothing, even
    # when an indexed recording holds the same silence.
    index = FingerprintIndex()
    index.add("with-silence", fingerprint(np.concatenate([songs[0], np.zeros(10 * SR)]), SR).items)
    index.add("song1", fingerprint(songs[1], SR).items)
    assert index.search(fingerprint(np.zeros(5 * SR), SR).items) == []
    t = np.arange(5 * SR) / SR
    assert index.search(fingerprint(0.3 * np.sin(2 * np.pi * 440 * t), SR).items) == []
    hits = index.search(fingerprint(songs[0][int(10 * SR):int(15 * SR)], SR).items)
    assert hits[0].key == "with-silence"


def test_a_steady_query_needs_a_closer_match():
    rng = np.random.default_rng(8)
    # A held chord: four items at a time the same, one bit changing from one to the next.
    held = np.bitwise_xor.accumulate(np.concatenate([
        rng.integers(0, 2**32, 1, dtype=np.uint32),
        (np.uint32(1) << rng.integers(0, 32, 5).astype(np.uint32))]))
    query = np.repeat(held, 4)
    noisy = query ^ (np.uint32(1) << rng.integers(0, 32, query.size).astype(np.uint32))
    filler = rng.integers(0, 2**32, 200, dtype=np.uint32)
    for steady_rule, indexed, found in [(np.inf, noisy, True), (None, noisy, False),
                                        (None, query, True)]:
        index = FingerprintIndex() if steady_rule is None else FingerprintIndex(
            change_ber=steady_rule)
        index.add("chord", np.concatenate([filler, indexed, filler]))
        hits = index.search(query)
        assert bool(hits) == found, (steady_rule, hits)
        # 1 bit in 32 differs: well below the 5 s threshold, above 0.0095 x 2 changed bits.
        assert not hits or hits[0].bit_error_rate < index.threshold(len(query))
