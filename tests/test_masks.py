"""analyzer.masks: per-note masks from stems and from the mix, compact and rate-independent."""
import numpy as np
import pytest

from analyzer.masks import (MAX_TAIL_S, N_BANDS, PRE_S, MaskError, attach_masks, band_edges,
                            band_weights, fft_size, note_spans)
from chart_store.chart import Chart, ChartMeta, MaskBank, Note


def tone_scene(sr, seconds=3.0, seed=0):
    """A 440 Hz harmonic note from 1.0 to 1.6 s over white noise; returns (stem, mix, note)."""
    t = np.arange(int(sr * seconds)) / sr
    env = ((t >= 1.0) & (t < 1.6)).astype(float)
    stem = 0.3 * env * sum(np.sin(2 * np.pi * 440 * h * t) / h for h in range(1, 6))
    noise = 0.05 * np.random.default_rng(seed).standard_normal(t.size)
    return stem, stem + noise, Note(1.0, dur=0.6, pitch=69, stem="lead")


def during(bank, note, t0, t1):
    """Rows of ``note``'s mask covering chart times t0..t1 seconds."""
    spec = bank[note.mask]
    k = lambda t: int((t - note.t - spec.start_s) / bank.hop_s)
    return spec.gain_fraction()[max(k(t0), 0):k(t1)]


def band_of(hz, bank):
    return int(np.searchsorted(bank.band_edges_hz, hz, side="right") - 1)


def test_note_spans_follow_the_next_note_and_share_chords():
    notes = (Note(1.0), Note(1.0, lane=1), Note(1.5, dur=1.0), Note(5.0), Note(9.0, dur=0.2))
    start, stop = note_spans(notes)
    np.testing.assert_allclose(start, [1.0 - PRE_S, 1.0 - PRE_S, 1.5 - PRE_S, 5.0 - PRE_S,
                                       9.0 - PRE_S])
    # chord -> next onset; sustain -> its end + the tail cap (next note far); tap -> capped;
    # last note -> its end + the cap.
    np.testing.assert_allclose(stop, [1.5, 1.5, 2.5 + MAX_TAIL_S, 5.0 + MAX_TAIL_S,
                                      9.2 + MAX_TAIL_S])


def test_stem_mask_covers_the_harmonics_and_nothing_else():
    sr = 22050
    stem, mix, note = tone_scene(sr)
    bank, diffs = attach_masks({"expert": (note,)}, y=mix, sr=sr, stems={"lead": stem})
    mask = bank[diffs["expert"][0].mask].gain_fraction()
    middle = mask[mask.shape[0] // 4:3 * mask.shape[0] // 4]
    for h in (1, 2, 3):
        assert middle[:, band_of(440 * h, bank)].mean() > 0.8
    assert middle[:, band_of(150, bank)].mean() < 0.2   # below the fundamental: noise only
    # After the note ends (1.6 s) there is nothing to remove: the mask stops near there.
    end = note.t + bank[0].start_s + mask.shape[0] * bank.hop_s
    assert end < 1.7


def test_stereo_mask_is_fitted_on_every_channel_at_once():
    # The note in opposite phase on the two channels: it cancels in the downmix, yet the remover
    # applies one gain to each channel, where the note is most of the sound.
    sr = 22050
    stem, _, note = tone_scene(sr)
    stem = np.stack([stem, -stem])
    noise = 0.05 * np.random.default_rng(2).standard_normal(stem.shape)
    bank, diffs = attach_masks({"expert": (note,)}, y=stem + noise, sr=sr, stems={"lead": stem})
    mask = during(bank, diffs["expert"][0], 1.1, 1.5)
    assert mask[:, band_of(440, bank)].mean() > 0.8
    # A mono stem against a stereo mix: compared on the downmixes.
    mix = stem * [[1.0], [0.5]] + noise
    bank, diffs = attach_masks({"expert": (note,)}, y=mix, sr=sr, stems={"lead": stem[0]})
    assert during(bank, diffs["expert"][0], 1.1, 1.5)[:, band_of(440, bank)].mean() > 0.5


def test_mix_only_mask_finds_the_pitch_and_stays_conservative():
    sr = 22050
    stem, mix, note = tone_scene(sr)
    bank, diffs = attach_masks({"expert": (note,)}, y=mix, sr=sr)
    spec = bank[diffs["expert"][0].mask]
    mask = spec.gain_fraction()
    frame = lambda t: int((t - note.t - spec.start_s) / bank.hop_s)
    during, after = mask[frame(1.1):frame(1.5)], mask[frame(1.8):frame(2.8)]
    assert during[:, band_of(440, bank)].mean() > 0.3
    assert during[:, band_of(3000, bank)].mean() < 0.1   # no harmonic of 440 Hz has power here
    assert after[:, band_of(440, bank)].mean() < 0.1     # the note has ended: noise stays
    assert mask.max() <= 1.0


def test_detuned_pitch_is_tracked():
    # The note plays 40 cents sharp of its MIDI pitch: the comb follows it.
    sr = 22050
    t = np.arange(3 * sr) / sr
    f0 = 440 * 2 ** (40 / 1200)
    env = ((t >= 1.0) & (t < 1.6)).astype(float)
    stem = 0.3 * env * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 9))
    mix = stem + 0.05 * np.random.default_rng(1).standard_normal(t.size)
    bank, diffs = attach_masks({"x": (Note(1.0, dur=0.6, pitch=69),)}, y=mix, sr=sr)
    mask = during(bank, diffs["x"][0], 1.05, 1.55)
    assert mask[:, band_of(8 * f0, bank)].mean() > 0.2  # 8th harmonic, 3.7 kHz


def test_chords_and_difficulties_share_masks():
    sr = 22050
    stem, mix, _ = tone_scene(sr)
    expert = (Note(1.0, lane=0, stem="lead"), Note(1.0, lane=2, stem="lead"),
              Note(1.3, lane=1, stem="lead"))
    easy = (Note(1.0, lane=0, stem="lead"), Note(1.3, lane=1, stem="lead"))
    bank, diffs = attach_masks({"expert": expert, "easy": easy}, y=mix, sr=sr,
                               stems={"lead": stem})
    e, z = diffs["expert"], diffs["easy"]
    assert e[0].mask == e[1].mask == z[0].mask
    assert e[2].mask == z[1].mask
    assert len(bank) == 2


def test_silent_spans_get_no_mask_and_notes_keep_their_fields():
    sr = 22050
    stem, mix, _ = tone_scene(sr)
    quiet = Note(0.2, dur=0.1, lane=3, pitch=40, stem="lead")
    silent_stem = np.zeros_like(stem)  # the charted instrument rests here
    bank, diffs = attach_masks({"expert": (quiet,)}, y=mix, sr=sr, stems={"lead": silent_stem})
    assert diffs["expert"][0].mask is None and len(bank) == 0
    kept = diffs["expert"][0]
    assert (kept.t, kept.dur, kept.lane, kept.pitch, kept.stem) == (0.2, 0.1, 3, 40, "lead")


def test_masks_round_trip_through_the_chart_model_and_file():
    chartfile = pytest.importorskip("chart_store.chartfile")
    sr = 22050
    stem, mix, note = tone_scene(sr)
    bank, diffs = attach_masks({"expert": (note, Note(2.0, pitch=64))}, y=mix, sr=sr,
                               stems={"lead": stem})
    chart = Chart(meta=ChartMeta(title="t", duration_s=3.0), difficulties=diffs, masks=bank)
    back = chartfile.loads(chartfile.dumps(chart))
    assert back.masks == bank
    assert back.difficulties["expert"].notes == diffs["expert"]


def test_masks_are_rate_independent():
    banks = {}
    for sr in (44100, 48000):
        stem, mix, note = tone_scene(sr)
        bank, diffs = attach_masks({"x": (note,)}, y=mix, sr=sr, stems={"lead": stem})
        banks[sr] = bank[diffs["x"][0].mask]
        assert isinstance(bank, MaskBank)
        np.testing.assert_allclose(bank.band_edges_hz, band_edges())
    a, b = (m.gain_fraction() for m in banks.values())
    n = min(a.shape[0], b.shape[0])
    assert abs(banks[44100].start_s - banks[48000].start_s) < 0.011
    # Cell by cell the noise differs (other samples fall in each frame); the shape is the same.
    assert np.mean(np.abs(a[:n] - b[:n])) < 0.1
    assert np.mean(np.abs(a[:n].mean(axis=0) - b[:n].mean(axis=0))) < 0.03


def test_stems_from_a_separator_only_count_the_note_harmonics():
    from analyzer.stems import Stems
    sr = 22050
    stem, mix, note = tone_scene(sr)
    # A shared stem: the note plus a 1 kHz-ish organ that is not the note.
    t = np.arange(stem.size) / sr
    organ = 0.2 * np.sin(2 * np.pi * 1250 * t)
    shared = Stems(arrays={"lead": stem + organ}, sr=sr, method="hpss")
    bank, diffs = attach_masks({"x": (note,)}, y=mix + organ, sr=sr, stems=shared)
    mask = during(bank, diffs["x"][0], 1.05, 1.55)
    assert mask[:, band_of(1250, bank)].mean() < 0.2
    assert mask[:, band_of(440, bank)].mean() > 0.6
    exact, d2 = attach_masks({"x": (note,)}, y=mix + organ, sr=sr,
                             stems={"lead": stem + organ})
    assert during(exact, d2["x"][0], 1.05, 1.55)[:, band_of(1250, bank)].mean() > 0.6


def test_helpers_and_errors():
    assert fft_size(44100) == fft_size(48000) == 1024
    edges = band_edges()
    assert edges[0] == 0 and np.all(np.diff(edges) > 0)
    weights = band_weights(48000, 1024, edges)
    assert weights.shape == (513, N_BANDS) and np.allclose(weights.sum(axis=1), 1)
    assert weights[0, 0] == 1 and weights[-1, -1] == 1
    assert np.all((weights > 0).sum(axis=1) <= 2)
    with pytest.raises(MaskError):
        attach_masks({"x": ()}, y=np.zeros((2, 3, 4)), sr=22050)
    with pytest.raises(MaskError):
        attach_masks({"x": ()}, y=np.zeros(100), sr=10)
    with pytest.raises(MaskError):
        attach_masks({"x": ()}, y=np.zeros(100), sr=22050, stems=[1, 2])


def test_mix_notes_borrow_a_separators_harmonic_stem():
    from analyzer.masks import HARMONIC_STEM, MIX_GAIN_SCALE
    from analyzer.stems import Stems
    sr = 22050
    stem, mix, _ = tone_scene(sr)
    # A noise burst (drums) over the note: from the mix alone it looks like the note's harmonics
    # rising above the background; the separator's harmonic stem knows it is not the note.
    t = np.arange(stem.size) / sr
    burst = 1.0 * ((t >= 1.0) & (t < 1.6)) * np.random.default_rng(2).standard_normal(t.size)
    note = Note(1.0, dur=0.6, pitch=69, stem="mix")  # charted from the mix
    stems = Stems(arrays={HARMONIC_STEM: stem, "drums": burst}, sr=sr, method="hpss")
    bank, diffs = attach_masks({"x": (note,)}, y=mix + burst, sr=sr, stems=stems)
    alone, d2 = attach_masks({"x": (note,)}, y=mix + burst, sr=sr)
    borrowed = during(bank, diffs["x"][0], 1.05, 1.55)
    guessed = during(alone, d2["x"][0], 1.05, 1.55)
    assert diffs["x"][0].stem == "mix"  # the note still says where it was charted from
    assert 0.3 < borrowed[:, band_of(440, bank)].mean() <= MIX_GAIN_SCALE + 0.01
    fifth = band_of(5 * 440, bank)  # the weakest harmonic, under the burst
    assert borrowed[:, fifth].mean() < 0.5 * guessed[:, fifth].mean()


def test_blocks_do_not_change_the_masks(monkeypatch):
    # Spectra are taken block by block; a block boundary inside a note must not show.
    import analyzer.masks as masks
    sr = 22050
    stem, mix, _ = tone_scene(sr, seconds=6.0)
    notes = tuple(Note(t, dur=0.3, lane=i % 5, pitch=57 + i % 12, stem=s)
                  for i, t in enumerate(np.arange(0.2, 5.5, 0.35)) for s in ("lead", "mix"))
    diffs = {"expert": notes, "easy": notes[::4]}
    whole = attach_masks(diffs, y=mix, sr=sr, stems={"lead": stem})
    monkeypatch.setattr(masks, "_BLOCK_FRAMES", 7)
    assert attach_masks(diffs, y=mix, sr=sr, stems={"lead": stem}) == whole
