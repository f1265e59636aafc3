"""companion.removal: the note remover's real-time properties and removal on known signals.

The synthetic scene: a harmonic "guitar" note every 0.25 s (the stem, known exactly) over a
coloured-noise "backing"; the stream is the mix at a player's gain and a few samples of delay.
With y the latency-aligned output, g the stem in the stream and t = stream - g, over the notes'
spans: removal = 10 log10(Σg²/Σ(y-t)²), backing SDR = 10 log10(Σt²/Σ(y-t)²).
"""
import numpy as np
import pytest
from scipy.signal import lfilter

from analyzer.masks import attach_masks, note_spans
from chart_store.chart import MaskBank, Note, SpectralMask
from companion.removal import NoteRemover, RemovalError, make_remover
from companion.removal.processor import HOLD_S

PITCHES = (57, 60, 64, 62, 55)


def scene(sr, seconds=4.0, seed=0, note_every=0.25):
    """(stem, backing, notes): notes from 0.5 s to seconds - 0.5 s, the stem their exact sound."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    stem = np.zeros(n)
    notes = []
    for i, t0 in enumerate(np.arange(0.5, seconds - 0.5, note_every)):
        pitch = PITCHES[i % len(PITCHES)]
        f0 = 440 * 2 ** ((pitch - 69) / 12)
        env = np.where((t >= t0) & (t < t0 + note_every), np.exp(-(t - t0) * 3), 0.0)
        stem += 0.3 * env * sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 8))
        notes.append(Note(float(t0), lane=i % 5, pitch=pitch, stem="guitar"))
    backing = lfilter([1], [1, -0.9], rng.standard_normal(n))
    backing *= 0.1 / np.std(backing)
    return stem, backing, tuple(notes)


def stream_of(stem, backing, *, gain=0.5, delay=3):
    """Stereo stream (n, 2) float32 and the stem as it sits in it (n, 2)."""
    def place(x):
        y = np.zeros_like(x)
        y[delay:] = gain * x[:-delay]
        return np.stack([y, 0.8 * y], axis=1)
    return place(stem + backing).astype(np.float32), place(stem)


def run(remover, x, block=512):
    return np.concatenate([remover.process(x[i:i + block]) for i in range(0, len(x), block)])


def scores(remover, out, x, g, notes, sr):
    lat = remover.latency_samples
    y, t, g = out[lat:], (x - g)[:-lat], g[:-lat]
    starts, stops = note_spans(notes)
    span = np.zeros(len(y), bool)
    for a, b in zip(starts, stops):
        span[int(a * sr):int(b * sr)] = True
    e = np.sum((y[span] - t[span]) ** 2)
    return 10 * np.log10(np.sum(g[span] ** 2) / e), 10 * np.log10(np.sum(t[span] ** 2) / e)


def remover_for(sr, mode="cancel", notes_every=0.25, **kw):
    stem, backing, notes = scene(sr, note_every=notes_every)
    x, g = stream_of(stem, backing)
    stems = {"guitar": stem} if mode == "stem-masks" else None
    bank, diffs = attach_masks({"expert": notes}, y=stem + backing, sr=sr, stems=stems)
    notes = diffs["expert"]
    rm = NoteRemover(sr=sr, channels=2, notes=notes, masks=bank,
                     stems={"guitar": (stem, sr)} if mode == "cancel" else None, **kw)
    rm.set_sync(0.0, 0.0)
    return rm, x, g, notes


# -- real-time properties -------------------------------------------------------------------------

@pytest.mark.parametrize("sr", [44100, 48000])
def test_latency_is_fixed_and_under_25_ms(sr):
    rm = NoteRemover(sr=sr, channels=2)
    assert rm.latency_samples / sr <= 0.025
    x = np.random.default_rng(1).uniform(-1, 1, (3000, 2)).astype(np.float32)
    out = run(rm, x, block=100)
    assert np.array_equal(out[rm.latency_samples:], x[:-rm.latency_samples])
    assert not out[:rm.latency_samples].any()


def test_nothing_to_remove_is_an_exact_delay_even_with_stems_loaded():
    rm, x, _, notes = remover_for(44100)  # a canceller runs, but no note is missed
    for i in range(len(notes)):
        rm.hit(i)
    out = run(rm, x, block=333)
    assert np.array_equal(out[rm.latency_samples:], x[:-rm.latency_samples])


def test_the_audio_thread_allocates_next_to_nothing_per_block():
    # Into the caller's buffer, with nothing to remove, a 1024-frame block allocates no more
    # than a few numpy scalars (before: 24 kB of temporaries a block).
    import tracemalloc

    rm = NoteRemover(sr=48000, channels=2)
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (1024, 2)).astype(np.float32)
    out = np.empty_like(x)
    for _ in range(8):
        assert rm.process(x, out) is out
    tracemalloc.start()
    try:
        for _ in range(50):
            rm.process(x, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4096
    with pytest.raises(RemovalError, match="out must be"):
        rm.process(x, np.empty((512, 2), np.float32))


def test_block_sizes_1_37_512_4096_give_the_same_output():
    sr = 22050
    stem, backing, notes = scene(sr, seconds=1.6, note_every=0.2)
    x, _ = stream_of(stem, backing)
    x[8000:8100] *= 3.0  # over full scale: the limiter works too
    bank, diffs = attach_masks({"expert": notes}, y=stem + backing, sr=sr)
    notes = diffs["expert"]
    outs = []
    for block in (1, 37, 512, 4096):
        # Half the notes by cancellation, half by masks.
        mixed = tuple(n if i % 2 else Note(n.t, lane=n.lane, stem="mix", mask=n.mask)
                      for i, n in enumerate(notes))
        rm = NoteRemover(sr=sr, channels=2, notes=mixed, masks=bank, stems={"guitar": (stem, sr)})
        rm.set_sync(0.0, 0.0)
        for i in range(len(notes)):
            rm.miss(i)
        outs.append(run(rm, x, block))
    assert np.abs(outs[0] - x[:len(outs[0])]).max() > 0.01  # something was removed
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], atol=1e-6)


@pytest.mark.parametrize("kind", ["silence", "dc", "noise", "nonfinite", "jumps"])
def test_hostile_input_gives_bounded_finite_output(kind):
    sr = 22050
    rm, x, _, notes = remover_for(sr)
    rng = np.random.default_rng(2)
    n = len(x)
    if kind == "silence":
        x = np.zeros_like(x)
    elif kind == "dc":
        x = np.ones_like(x)
    elif kind == "noise":
        x = rng.uniform(-1, 1, x.shape).astype(np.float32)
    elif kind == "nonfinite":
        x = x.copy()
        x[rng.integers(0, n, 500), rng.integers(0, 2, 500)] = np.nan
        x[1000:1010] = np.inf
        x[2000:2010] = -np.inf
        x[3000:3010] = 1e30
    else:  # sudden gain jumps: x40 for a second, then silence, then back
        x = x.copy()
        x[n // 4:n // 2] *= 40
        x[n // 2:3 * n // 4] = 0
    for i in range(len(notes)):
        rm.miss(i)
    out = run(rm, x, block=256)
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0
    if kind == "silence":
        assert not out.any()
    if kind == "jumps":
        # The canceller must not subtract its stale path from the silent part (the stem stays).
        lat = rm.latency_samples
        quiet = out[n // 2 + lat + sr // 2:3 * n // 4 + lat]
        assert np.sqrt(np.mean(quiet ** 2)) < 0.05


def test_limiter_is_smooth_and_releases():
    sr = 48000
    rm = NoteRemover(sr=sr, channels=1)
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 220 * t))[:, None].astype(np.float32)
    x = np.concatenate([x, x])
    x[sr // 4:sr // 2] *= 4.0  # 2.0 peak for a quarter second
    out = run(rm, x)[rm.latency_samples:]
    ref = x[:len(out)]
    assert np.abs(out).max() <= 1.0
    gain = np.abs(out[:, 0]) / np.maximum(np.abs(ref[:, 0]), 1e-3)
    loud = slice(sr // 4 + 100, sr // 2)
    # Halved at the peaks, and held there between them (2.2 % ripple per 4.5 ms cycle).
    assert gain[loud][np.abs(ref[loud, 0]) > 0.5].max() <= 0.53
    # Released within ~2.5 time constants after the burst, and never a sample-to-sample jump.
    late = slice(sr // 2 + int(1.2 * sr), 2 * sr - rm.latency_samples)
    np.testing.assert_allclose(out[late], ref[late], atol=1e-3)
    assert np.abs(np.diff(out[:, 0])).max() < 0.1


# -- removal on known signals ------------------------------------------------------------------

def removal_when_all_missed(mode=None, sr=44100):
    """(removal dB, backing SDR dB) of a remover built by ``remover_for`` with every note missed."""
    rm, x, g, notes = remover_for(sr) if mode is None else remover_for(sr, mode=mode)
    for i in range(len(notes)):
        rm.miss(i)
    return scores(rm, run(rm, x), x, g, notes, sr)


def test_stem_cancellation_removes_the_note_and_keeps_the_backing():
    removal, backing_sdr = removal_when_all_missed()
    # The path (gain 0.5, 3 samples late, the right channel at 0.8) is learnt from the stream;
    # the first notes are heard before it has converged.
    assert removal > 25
    assert backing_sdr > 20


def test_stem_masks_remove_more_than_they_damage():
    removal, backing_sdr = removal_when_all_missed("stem-masks")
    assert removal > 8
    # Here the note is as loud as the backing: backing SDR = removal - 10 log10(Σg²/Σt²).
    assert backing_sdr > 3


def test_pitch_masks_from_the_mix_remove_some_of_the_note():
    removal, _ = removal_when_all_missed("pitch-masks")
    assert removal > 2


def test_removal_is_the_same_at_44100_and_48000_hz():
    results = []
    for sr in (44100, 48000):
        rm, x, g, notes = remover_for(sr, mode="stem-masks")
        for i in range(len(notes)):
            rm.miss(i)
        results.append(scores(rm, run(rm, x), x, g, notes, sr)[0])
    assert abs(results[0] - results[1]) < 0.5


def test_a_bank_made_at_44100_works_at_48000():
    # Masks are Hz and seconds: the bank of one rate removes the same at another.
    stem, backing, notes = scene(44100)
    bank, diffs = attach_masks({"expert": notes}, y=stem + backing, sr=44100,
                               stems={"guitar": stem})
    stem48, backing48, _ = scene(48000)
    x, g = stream_of(stem48, backing48)
    rm = NoteRemover(sr=48000, channels=2, notes=diffs["expert"], masks=bank)
    rm.set_sync(0.0, 0.0)
    for i in range(len(notes)):
        rm.miss(i)
    assert scores(rm, run(rm, x), x, g, diffs["expert"], 48000)[0] > 8


def test_late_misses_keep_the_attack_and_remove_the_rest():
    sr = 44100
    rm, x, g, notes = remover_for(sr, notes_every=0.5, hold_s=0.0)  # each miss on its own
    out = np.empty_like(x)
    due = {int((n.t + 0.09) * sr) // 512: i for i, n in enumerate(notes)}
    for k, pos in enumerate(range(0, len(x), 512)):
        if k in due:
            rm.miss(due[k])
        out[pos:pos + 512] = rm.process(x[pos:pos + 512])
    lat = rm.latency_samples
    y, t = out[lat:], (x - g)[:-lat]
    note = notes[3]
    a = int(note.t * sr)
    attack = slice(a, a + int(0.05 * sr))
    rest = slice(a + int(0.2 * sr), a + int(0.45 * sr))
    err = lambda s: np.sum((y[s] - t[s]) ** 2) / np.sum(g[s] ** 2)
    assert err(attack) > 0.5   # the attack was played before the miss was known
    assert err(rest) < 0.01    # the rest is gone


def test_hold_bridges_consecutive_late_misses_and_a_hit_cuts_it():
    sr = 22050
    stem, backing, notes = scene(sr, note_every=0.1)  # denser than the judgement delay
    x, g = stream_of(stem, backing)
    rm = NoteRemover(sr=sr, channels=2, notes=notes, stems={"guitar": (stem, sr)})
    rm.set_sync(0.0, 0.0)
    hit_at = 20
    events = {}
    for i, n in enumerate(notes):
        events.setdefault(int((n.t + (-0.02 if i == hit_at else 0.09 + 0.05)) * sr) // 256,
                          []).append(("hit" if i == hit_at else "miss", i))
    out = np.empty_like(x)
    for k, pos in enumerate(range(0, len(x), 256)):
        for kind, i in events.get(k, ()):
            getattr(rm, kind)(i)
        out[pos:pos + 256] = rm.process(x[pos:pos + 256])
    lat = rm.latency_samples
    y, t = out[lat:], (x - g)[:-lat]
    err = lambda a, b: np.sum((y[a:b] - t[a:b]) ** 2) / np.sum(g[a:b] ** 2)
    # Between notes 8 and 16 every miss came 140 ms late, yet removal never paused.
    assert err(int(notes[8].t * sr), int(notes[16].t * sr)) < 0.05
    # The hit note (pressed 20 ms early) sounds: its span keeps the guitar.
    hit = notes[hit_at]
    assert err(int(hit.t * sr) + sr // 50, int((hit.t + 0.09) * sr)) > 0.8
    assert HOLD_S >= 0.09


def test_hit_only_mode_removes_unhit_notes_and_keeps_hit_ones():
    sr = 22050
    stem, backing, notes = scene(sr, note_every=0.5)
    x, g = stream_of(stem, backing)
    rm = NoteRemover(sr=sr, channels=2, notes=notes, stems={"guitar": (stem, sr)},
                     mode="hit-only")
    rm.set_sync(0.0, 0.0)
    rm.hit(4)
    out = run(rm, x)
    lat = rm.latency_samples
    y, t = out[lat:], (x - g)[:-lat]
    err = lambda n: (lambda s: np.sum((y[s] - t[s]) ** 2) / np.sum(g[s] ** 2))(
        slice(int(n.t * sr) + sr // 20, int((n.t + 0.4) * sr)))
    assert err(notes[4]) > 0.9
    assert err(notes[5]) < 0.05


def test_set_chart_switches_without_a_gap():
    sr = 22050
    rm = make_remover(sr=sr, channels=2)
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (sr, 2)).astype(np.float32)
    first = rm.process(x[:5000])
    same = make_remover(sr=sr, channels=2, notes=(Note(0.5, stem="guitar"),), previous=rm,
                        stems={})
    assert same is rm
    out = np.concatenate([first, rm.process(x[5000:])])
    assert np.array_equal(out[rm.latency_samples:], x[:-rm.latency_samples])


def test_a_chart_prepared_in_the_background_takes_over_when_ready_and_the_audio_never_waits():
    # The live session loads and resamples a song's stems beside the thread that judges notes:
    # until they are ready the audio plays on unchanged; the misses said meanwhile wait, in
    # order, and then take the notes out.
    import threading
    import time

    sr = 22050
    stem, backing, notes = scene(sr, note_every=0.25)
    x, _ = stream_of(stem, backing)
    bank, diffs = attach_masks({"expert": notes}, y=stem + backing, sr=sr)
    rm = make_remover(sr=sr, channels=2)
    release = threading.Event()

    def slow_stems():  # decoding a song's stem takes a second or two
        release.wait(10)
        return {"guitar": (stem, sr)}

    rm.set_chart(diffs["expert"], masks=bank, load_stems=slow_stems, background=True)
    rm.set_sync(0.0, 0.0)
    for i in range(len(notes)):
        rm.miss(i)
    half = x.shape[0] // 2
    t0 = time.perf_counter()
    first = run(rm, x[:half], block=512)
    assert time.perf_counter() - t0 < 5.0          # the audio did not wait for the stems
    lag = rm.latency_samples
    assert np.array_equal(first[lag:], x[:half - lag])   # nothing removed yet
    release.set()
    deadline = time.monotonic() + 10
    while rm._commands and time.monotonic() < deadline:
        rm.process(np.zeros((0, 2), np.float32))   # an empty block drains what is ready
        time.sleep(0.01)
    second = run(rm, x[half:], block=512)
    assert np.abs(second[lag:] - x[half:-lag]).max() > 0.01   # now the notes go


def test_sync_offset_moves_the_notes():
    # The chart runs 1.0 s ahead of the stream: chart note at 1.5 s plays at stream 0.5 s.
    sr = 22050
    stem, backing, notes = scene(sr, note_every=0.5)
    x, g = stream_of(stem, backing)
    shifted = tuple(Note(n.t + 1.0, lane=n.lane, stem="guitar") for n in notes)
    chart_stem = np.concatenate([np.zeros(sr), stem])
    rm = NoteRemover(sr=sr, channels=2, notes=shifted, stems={"guitar": (chart_stem, sr)})
    rm.set_sync(stream_s=2.0, chart_s=3.0)
    for i in range(len(shifted)):
        rm.miss(i)
    removal, _ = scores(rm, run(rm, x), x, g, notes, sr)
    assert removal > 20


def test_bad_parameters_and_blocks_are_refused():
    with pytest.raises(RemovalError):
        NoteRemover(sr=100)
    with pytest.raises(RemovalError):
        NoteRemover(sr=44100, mode="mute-everything")
    rm = NoteRemover(sr=44100, channels=2)
    with pytest.raises(RemovalError):
        rm.process(np.zeros((10, 3), np.float32))


def test_masks_and_notes_without_sound_do_nothing():
    sr = 22050
    bank = MaskBank(band_edges_hz=[0, 1000, 11025], hop_s=0.01,
                    masks=(SpectralMask(0.0, np.zeros((10, 2), np.uint8)),))
    notes = (Note(0.1, mask=0), Note(0.2), Note(0.3, mask=None, stem="bass"))
    rm = NoteRemover(sr=sr, channels=1, notes=notes, masks=bank)
    for i in range(3):
        rm.miss(i)
    rm.miss(99)  # unknown indices are ignored
    x = np.random.default_rng(4).uniform(-0.5, 0.5, (sr // 2, 1)).astype(np.float32)
    out = run(rm, x)
    assert np.array_equal(out[rm.latency_samples:], x[:-rm.latency_samples])


# -- through the live wiring ----------------------------------------------------------------------

def test_loopjam_play_miss_all_cancels_the_stored_stem(tmp_path):
    """`loopjam play FILE --player miss-all`: the chart's stem sits in the local StemStore, the
    stream is the mix at 48 kHz starting part-way; the guitar is gone from the output."""
    import soundfile
    from scipy.signal import resample_poly

    from analyzer.features import sync_reference
    from chart_store.chart import Chart, ChartMeta
    from chart_store.fingerprint import fingerprint
    from chart_store.local import LocalStore
    from chart_store.stems import StemStore
    from companion.cli import main
    from tests.fixtures.songs import synth_song

    sr, seconds, start_s = 22050, 30.0, 4.0
    backing = synth_song(11, duration_s=seconds, sr=sr)
    stem, _, notes = scene(sr, seconds=seconds, seed=1, note_every=0.5)
    mix = (backing + stem).astype(np.float32)
    chart = Chart(ChartMeta("Removal e2e", duration_s=seconds), {"expert": notes},
                  fingerprint=fingerprint(mix, sr), sync=sync_reference(mix, sr))
    chart_id = LocalStore().put(chart)
    StemStore().put(chart_id, "guitar", stem, sr)
    up = lambda x: resample_poly(x, 320, 147)[int(start_s * 48000):].astype(np.float32)
    x, g = up(mix), up(stem)
    soundfile.write(tmp_path / "in.wav", np.stack([x, x], axis=1), 48000, subtype="FLOAT")
    log = tmp_path / "log.jsonl"
    assert main(["play", str(tmp_path / "in.wav"), "--sink", str(tmp_path / "out.wav"),
                 "--speed", "max", "--player", "miss-all", "--no-overlay",
                 "--log", str(log)]) == 0
    import json
    events = [json.loads(line) for line in log.read_text().splitlines()]
    lag = events[-1]["output_latency_samples"]
    after = next(e["after_s"] for e in events if e["event"] == "identified")
    out, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    y = out[lag:lag + x.size, 0]
    # From 3 s after identification (the path has been learnt) to the last note.
    a, b = int((after + 3.0) * 48000), int((seconds - 1.0 - start_s) * 48000)
    err = np.sum((y[a:b] - (x - g)[a:b]) ** 2)
    assert 10 * np.log10(np.sum(g[a:b] ** 2) / err) > 15


def test_canceller_finds_a_sync_error_of_a_few_milliseconds():
    sr = 22050
    stem, backing, notes = scene(sr, seconds=6.0, note_every=0.25)
    x, g = stream_of(stem, backing, delay=3 + 90)  # the sync is 90 samples (4 ms) off
    rm = NoteRemover(sr=sr, channels=2, notes=notes, stems={"guitar": (stem, sr)})
    rm.set_sync(0.0, 0.0)
    for i in range(len(notes)):
        rm.miss(i)
    out = run(rm, x)
    assert abs(rm._cancellers[0].lag + 90) <= 4  # whole samples; the FIR takes the rest
    late = tuple(n for n in notes if n.t > 3.0)
    assert scores(rm, out, x, g, late, sr)[0] > 20


def test_cancellation_is_deep_within_half_a_second_of_the_stems_first_entry():
    """The first frames of a stem's entry can hold next to nothing of it (here the noise floor of
    its recording, -100 dB, before the first note): fitted alone they give a path thousands of
    times too loud, which must not hold the cancellation off (it did for 1.7 s on a real song)."""
    sr = 44100
    stem, backing, notes = scene(sr, seconds=4.0, note_every=0.25)
    entry = int(2.0 * sr)  # silence, a breath of noise floor, then the stem under a louder backing
    stem[:entry] = 0.0
    stem[entry - 2048:entry] = 1e-5 * np.random.default_rng(3).standard_normal(2048)
    notes = tuple(n for n in notes if n.t >= 2.0)
    x, g = stream_of(stem, 4 * backing)
    rm = NoteRemover(sr=sr, channels=2, notes=notes, stems={"guitar": (stem, sr)})
    rm.set_sync(0.0, 0.0)
    for i in range(len(notes)):
        rm.miss(i)
    out = run(rm, x)
    lat = rm.latency_samples
    y, t = out[lat:], (x - g)[:-lat]
    a, b = entry + sr // 2, len(y) - sr // 4
    err = np.sum((y[a:b] - t[a:b]) ** 2)
    assert 10 * np.log10(np.sum(g[a:b] ** 2) / err) > 20
