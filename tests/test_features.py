"""analyzer.features: onset envelope, sync reference, and the streaming twin being frame-exact."""
import numpy as np
import pytest

from analyzer.features import (FRAME_RATE, FeatureError, OnsetStream, onset_envelope,
                               sync_reference)
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
