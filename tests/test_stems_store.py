"""chart_store.stems: local, compressed stem audio beside the store."""
import numpy as np
import pytest

from chart_store.stems import StemStore, StemStoreError


def _tone(sr, seconds=1.0, channels=2):
    t = np.arange(int(sr * seconds)) / sr
    y = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([y, 0.5 * y]) if channels == 2 else y


def test_round_trip_keeps_the_sound_and_compresses(tmp_path):
    store = StemStore(root=tmp_path)
    y = _tone(44100)
    path = store.put("chart1", "guitar", y, 44100)
    back, sr = store.get("chart1", "guitar")
    assert sr == 44100 and back.shape == y.shape and back.dtype == np.float32
    err = np.sum((back - y) ** 2) / np.sum(y ** 2)
    assert err < 1e-3  # lossy, but close: > 30 dB SNR on a pure tone
    assert path.suffix == ".ogg" and path.stat().st_size < y.nbytes / 8


def test_mono_names_replace_and_remove(tmp_path):
    store = StemStore(root=tmp_path)
    assert store.names("c") == ()
    store.put("c", "guitar", _tone(48000, channels=1), 48000)
    store.put("c", "bass", _tone(48000, channels=1), 48000)
    store.put("c", "guitar", 0.5 * _tone(48000, channels=1), 48000)
    assert store.names("c") == ("bass", "guitar")
    y, sr = store.get("c", "guitar")
    assert y.ndim == 1 and sr == 48000 and 0.2 < np.max(np.abs(y)) < 0.3
    store.remove("c")
    assert store.names("c") == ()


def test_default_root_is_under_loopjam_home(loopjam_home):
    StemStore().put("c", "guitar", _tone(22050, channels=1), 22050)
    assert (loopjam_home / "stems" / "c" / "guitar.ogg").is_file()


@pytest.mark.parametrize("chart_id,name", [("../x", "guitar"), ("c", "a/b"), ("c", ""), ("", "g")])
def test_bad_names_are_refused(tmp_path, chart_id, name):
    with pytest.raises(StemStoreError):
        StemStore(root=tmp_path).put(chart_id, name, np.zeros(100, np.float32), 44100)


def test_missing_stem_and_bad_audio(tmp_path):
    store = StemStore(root=tmp_path)
    with pytest.raises(StemStoreError, match="no stem"):
        store.get("c", "guitar")
    with pytest.raises(StemStoreError):
        store.put("c", "guitar", np.zeros((3, 4, 5)), 44100)
    with pytest.raises(StemStoreError):
        store.put("c", "guitar", np.zeros(100), 0)
