"""analyzer.features: onset envelope, sync reference, and the streaming twin being frame-exact."""
import numpy as np
import pytest

from analyzer.features import (BAND_POOL, BAND_RATE, BAND_STEP, FRAME_RATE, N_BANDS,
                               FeatureError, OnsetStream, onset_envelope, sync_reference)
from chart_store.chart import SyncReference


def _song(sr, seconds=6.0, seed=1):
    """A drone plus decaying tone bursts at irregular, known onset times."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    y = 0.05 * np.sin(2 * np.pi * 110 * t)
    onsets = np.cumsum(rng.uniform(0.2, 0.5, size=int(seconds / 0.2)))
    onsets = onsets[onsets < seconds - 0.2]
    n = int(0.15 * sr)
    for k, on in enumerate(onsets):
        i = int(round(on * sr))
        y[i:i + n] += 0.4 * np.sin(2 * np.pi * (300 + 70 * (k % 5)) * t[:n]) * np.exp(-t[:n] * 25)
    return y.astype(np.float32), onsets


def test_frame_count_and_click_position():
    for sr in (22050, 44100, 48000):
        y = np.zeros(sr * 2, dtype=np.float32)
        y[int(1.23 * sr)] = 1.0
        env = onset_envelope(y, sr)
        assert env.shape == (2 * FRAME_RATE,)
        assert env.dtype == np.float32 and np.all(env >= 0)
        assert int(np.argmax(env)) == 123


def test_same_envelope_at_44k_and_48k():
    a = onset_envelope(_song(44100)[0], 44100)
    b = onset_envelope(_song(48000)[0], 48000)
    assert a.shape == b.shape
    assert np.corrcoef(a, b)[0, 1] > 0.999
    assert np.max(np.abs(a - b)) < 0.02 * np.max(a)


def test_peaks_at_onsets():
    y, onsets = _song(44100)
    env = onset_envelope(y, 44100)
    frames = np.round(onsets * FRAME_RATE).astype(int)
    # every burst gives a peak within one frame of its onset, far above the drone's flux
    for f in frames:
        assert env[f - 1:f + 3].max() > 10 * np.median(env)


@pytest.mark.parametrize("block", [1, 37, 512, 4096])
def test_streaming_is_frame_exact(block):
    sr = 48000
    y, _ = _song(sr, seconds=0.5 if block == 1 else 3.0)
    offline = onset_envelope(y, sr)
    stream = OnsetStream(sr, capacity=offline.size)
    ends = np.array([stream.centre_sample(k) + stream.win_length // 2 for k in range(offline.size)])
    completed = 0
    for i in range(0, y.size, block):
        completed += stream.push(y[i:i + block])
        # a frame is complete as soon as its window's last sample arrived
        pushed = min(i + block, y.size)
        assert completed == np.count_nonzero(ends <= pushed)
    stream.flush()
    assert np.array_equal(stream.latest(stream.frames_done), offline)


def test_latest_ring_wraps():
    sr = 44100
    y, _ = _song(sr, seconds=3.0)
    offline = onset_envelope(y, sr)
    stream = OnsetStream(sr, capacity=64)
    out = np.empty(50, dtype=np.float32)
    stream.push(y)
    stream.latest(50, out=out)
    assert np.array_equal(out, offline[stream.frames_done - 50:stream.frames_done])
    with pytest.raises(FeatureError):
        stream.latest(65)


def test_gain_changes_little():
    y, _ = _song(44100)
    a = onset_envelope(y, 44100)
    b = onset_envelope(0.5 * y, 44100)
    assert np.corrcoef(a, b)[0, 1] > 0.98


def test_sync_reference_and_errors():
    y, _ = _song(48000, seconds=2.0)
    ref = sync_reference(np.stack([y, y]), 48000)
    assert isinstance(ref, SyncReference) and ref.frame_rate == FRAME_RATE
    assert np.allclose(ref.envelope, onset_envelope(y, 48000))
    with pytest.raises(FeatureError):
        OnsetStream(1000)
    with pytest.raises(FeatureError):
        OnsetStream(48000).push(np.zeros((2, 10)))


@pytest.mark.parametrize("block", [1, 37, 513, 4096])
def test_band_rows_stream_frame_exact(block):
    sr = 48000
    y, _ = _song(sr, seconds=0.5 if block == 1 else 3.0)
    ref = sync_reference(y, sr)
    stream = OnsetStream(sr, capacity=ref.envelope.size)
    rows = 0
    for i in range(0, y.size, block):
        stream.push(y[i:i + block])
        # a row is complete with its last frame
        assert stream.rows_done == stream.frames_done // BAND_POOL
        if stream.rows_done != rows:
            rows = stream.rows_done
            assert np.array_equal(stream.latest_bands(rows), ref.bands[:rows])
    assert rows >= ref.bands.shape[0] - 1  # the last row may wait for flush()
    stream.flush()
    assert np.array_equal(stream.latest_bands(ref.bands.shape[0]), ref.bands)


def test_band_rows_hold_the_spectrum():
    sr = 44100
    t = np.arange(3 * sr) / sr
    y = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    ref = sync_reference(y, sr)
    assert ref.band_rate == BAND_RATE and ref.bands.dtype == np.uint8
    assert ref.bands.shape == (3 * FRAME_RATE // BAND_POOL, N_BANDS)
    loud = ref.bands[1:-1].astype(int)
    assert np.all(np.argmax(loud, axis=1) == np.argmax(loud[0]))  # one band, steady
    # half the level is log(2) lower where the tone is (up to rounding)
    quiet = sync_reference(0.5 * y, sr).bands[1:-1].astype(int)
    drop = (loud - quiet)[:, np.argmax(loud[0])]
    assert np.all(np.abs(drop - np.log(2) / BAND_STEP) <= 1.5)


def test_band_ring_wraps_and_refuses_what_it_lost():
    sr = 44100
    y, _ = _song(sr, seconds=3.0)
    ref = sync_reference(y, sr)
    stream = OnsetStream(sr, capacity=100)  # 10 rows
    stream.push(y)
    out = np.empty((8, N_BANDS), np.uint8)
    stream.latest_bands(8, out=out)
    assert np.array_equal(out, ref.bands[stream.rows_done - 8:stream.rows_done])
    with pytest.raises(FeatureError):
        stream.latest_bands(11)
