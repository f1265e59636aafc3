"""analyzer.stems: HPSS fallback on signals with known parts, the real Demucs code path with a
tiny randomly initialised model, and how "auto" chooses without network or heavy imports."""
import subprocess
import sys
import time

import numpy as np
import pytest

from analyzer.stems import Stems, StemsError, available_method, separate
from analyzer.stems import demucs as demucs_stems
from tests.fixtures.tiny_demucs import TINY_HTDEMUCS, cache_as

SR = 22050


def _band_energy(y, sr, lo, hi):
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


@pytest.fixture
def parts():
    """A 440 Hz lead, a 110 Hz bass and short noise bursts every 0.5 s, 4 s long."""
    t = np.arange(4 * SR) / SR
    lead = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    bass = (0.3 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)
    clicks = np.zeros_like(t, dtype=np.float32)
    burst = np.random.default_rng(1).standard_normal(int(0.004 * SR)).astype(np.float32)
    for start in np.arange(0.25, 4.0, 0.5):
        i = int(start * SR)
        clicks[i:i + len(burst)] = burst
    return {"lead": lead, "bass": bass, "clicks": clicks}


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """No Demucs weights anywhere: point both caches Demucs uses at empty folders."""
    hf = tmp_path / "hf-cache"
    hf.mkdir()
    try:  # read from the environment when huggingface_hub is imported: patch it if it was
        from huggingface_hub import constants
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf))
    except ImportError:
        pass
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    demucs_stems.load_model.cache_clear()
    yield hf
    demucs_stems.load_model.cache_clear()


def test_hpss_puts_each_part_in_its_stem(parts):
    mix = parts["lead"] + parts["bass"] + parts["clicks"]
    stems = separate(mix, SR, method="hpss")
    assert stems.method == "hpss" and stems.names == ("drums", "bass", "other")
    assert all(stems[n].shape == mix.shape and stems[n].dtype == np.float32 for n in stems.names)
    np.testing.assert_allclose(stems["drums"] + stems["bass"] + stems["other"], mix, atol=1e-5)
    # each tone lands (mostly) in its harmonic stem...
    assert _band_energy(stems["other"], SR, 420, 460) > 0.8 * _band_energy(mix, SR, 420, 460)
    assert _band_energy(stems["bass"], SR, 100, 120) > 0.8 * _band_energy(mix, SR, 100, 120)
    assert _band_energy(stems["drums"], SR, 420, 460) < 0.1 * _band_energy(mix, SR, 420, 460)
    # ...and the bursts' broadband energy (above the tones) in the drums
    assert _band_energy(stems["drums"], SR, 1000, 8000) > 0.6 * _band_energy(mix, SR, 1000, 8000)


def test_hpss_keeps_stereo_shape(parts):
    stereo = np.stack([parts["lead"] + parts["clicks"], parts["bass"]])
    stems = separate(stereo, SR, method="hpss")
    assert all(stems[n].shape == stereo.shape for n in stems.names)
    np.testing.assert_allclose(sum(stems.arrays.values()), stereo, atol=1e-5)


def test_hpss_in_blocks_is_exact_and_memory_stays_bounded():
    import tracemalloc

    from analyzer.stems.hpss import separate_hpss
    rng = np.random.default_rng(2)
    y = (0.1 * rng.standard_normal((2, 9 * SR))).astype(np.float32)
    whole = separate_hpss(y, SR, block_s=60.0)
    blocks = separate_hpss(y, SR, block_s=1.3)  # block edges must not show
    for name in whole:
        np.testing.assert_array_equal(whole[name], blocks[name])
    long = (0.1 * rng.standard_normal(120 * SR)).astype(np.float32)
    tracemalloc.start()
    try:
        separate_hpss(long, SR, block_s=10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # three output stems plus a bounded working set; the whole-signal spectrogram alone would be
    # another ~5x the input size
    assert peak < 5 * long.nbytes, peak / long.nbytes


def test_none_and_unknown_methods(parts):
    stems = separate(parts["lead"], SR, method="none")
    assert isinstance(stems, Stems) and stems.method == "none" and len(stems) == 0
    with pytest.raises(ValueError, match="unknown stems method"):
        separate(parts["lead"], SR, method="spleeter")


def test_auto_without_weights_is_hpss_fast_and_light(empty_caches, tmp_path):
    start = time.perf_counter()
    assert available_method() == "hpss"
    assert time.perf_counter() - start < 1.0
    assert separate(np.zeros(SR, np.float32), SR).method == "hpss"
    # deciding must not import torch (2.5 s and 200 MB per batch worker)
    code = ("import sys; from analyzer.stems import available_method; "
            "print(available_method(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"TORCH_HOME": str(tmp_path / "torch-home"), "PATH": "",
                              "HF_HUB_CACHE": str(empty_caches)})
    assert out.stdout.split() == ["hpss", "False"]


# --- the real Demucs code path, with a tiny randomly initialised HTDemucs ----------------------

def _tiny_htdemucs_kwargs(sources=("drums", "bass", "other", "vocals")):
    # ~6k parameters, 8 kHz, 1 s segments: a 3 s clip separates in ~0.2 s on one CPU core.
    return dict(TINY_HTDEMUCS, sources=list(sources))


@pytest.fixture
def tiny_model():
    pytest.importorskip("demucs", reason="demucs not installed (pip install demucs)")
    import torch
    from demucs.htdemucs import HTDemucs
    torch.manual_seed(0)
    return HTDemucs(**_tiny_htdemucs_kwargs()).eval()


def test_demucs_path_runs_a_real_model(tiny_model, parts):
    mix = parts["lead"][:3 * SR] + parts["clicks"][:3 * SR]
    stems = separate(mix, SR, model=tiny_model)  # auto + a model object -> Demucs
    assert stems.method == "demucs" and stems.names == ("drums", "bass", "other", "vocals")
    for name in stems.names:
        assert stems[name].shape == mix.shape and stems[name].dtype == np.float32
        assert np.all(np.isfinite(stems[name])) and np.any(stems[name] != 0)
    stereo = np.stack([mix, 0.5 * mix])
    stereo_stems = separate(stereo, SR, method="demucs", model=tiny_model, device="cpu")
    assert all(stereo_stems[n].shape == stereo.shape for n in stereo_stems.names)


def test_demucs_output_follows_input_level(tiny_model, parts):
    # Demucs sees the mix normalised to unit deviation, and its output is scaled back: so
    # separating a louder copy gives louder stems, not different ones.
    mix = parts["lead"][:2 * SR] + parts["clicks"][:2 * SR]
    quiet = separate(mix, SR, method="demucs", model=tiny_model)
    loud = separate(3 * mix, SR, method="demucs", model=tiny_model)
    for name in quiet.names:
        np.testing.assert_allclose(loud[name], 3 * quiet[name], rtol=1e-3, atol=1e-4)


def test_cached_hf_weights_load_offline_and_auto_picks_demucs(tiny_model, empty_caches, parts):
    cache_as(empty_caches, "htdemucs", tiny_model, _tiny_htdemucs_kwargs())

    # Only the 4-source model is on disk: it is used, nothing is fetched.
    assert demucs_stems.cached_model() == "htdemucs" and available_method() == "demucs"
    start = time.perf_counter()
    bag = demucs_stems.load_model()
    assert time.perf_counter() - start < 10  # no network retries
    loaded = bag.models[0]
    for key, value in tiny_model.state_dict().items():
        assert np.array_equal(loaded.state_dict()[key].numpy(), value.numpy()), key
    stems = separate(parts["lead"][:2 * SR], SR)
    assert stems.method == "demucs" and len(stems) == 4


def test_the_six_source_model_is_preferred_when_cached_and_its_stems_are_charted(
        tiny_model, empty_caches, parts, monkeypatch):
    import torch
    from demucs.htdemucs import HTDemucs

    from analyzer import charting
    from tests.plucked import riff

    six = _tiny_htdemucs_kwargs(("drums", "bass", "other", "vocals", "guitar", "piano"))
    torch.manual_seed(0)
    cache_as(empty_caches, "htdemucs", tiny_model, _tiny_htdemucs_kwargs())
    cache_as(empty_caches, "htdemucs_6s", HTDemucs(**six).eval(), six)
    assert demucs_stems.cached_model() == "htdemucs_6s" and available_method() == "demucs"
    r = riff(bpm=120, bars=4, sr=SR)
    stems = separate(r.y, SR)
    assert stems.method == "demucs" and "guitar" in stems and len(stems) == 6
    # A random model's stems are no instruments, and nearly silent: what is checked is that the
    # chart reads the loudest of its guitar, piano and other stems.
    monkeypatch.setattr(charting, "MIN_STEM_SHARE", 0.0)
    loudest = max(("guitar", "piano", "other"), key=lambda name: np.mean(stems[name] ** 2))
    notes = charting.chart_notes(r.y, SR, stems=stems).difficulties["expert"]
    assert notes and {n.stem for n in notes} == {loudest}


def test_legacy_torch_hub_cache_is_checked_without_network(tiny_model, empty_caches, tmp_path):
    remote = demucs_stems._demucs_remote()
    names = {line.split("-", 1)[0]: line.strip()
             for line in (remote / "files.txt").read_text().splitlines() if ".th" in line}
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / names["955717e8"]).write_bytes(b"not the real weights")
    assert demucs_stems.weights_cached("htdemucs")
    start = time.perf_counter()
    with pytest.raises(StemsError, match="checksum"):
        demucs_stems.load_model("htdemucs")
    assert time.perf_counter() - start < 10
