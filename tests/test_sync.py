"""companion.sync: offsets to sub-frame precision, and tracking through seeks, pauses and drift.

The "stream" is a synthetic song played from known chart positions, so the true chart time of
every stream second is known exactly."""
import numpy as np
import pytest

from analyzer.features import FRAME_RATE, OnsetStream, sync_reference
from chart_store.chart import SyncReference
from companion.sync import SyncError, SyncStatus, Synchronizer, ncc_peak

SR = 22050


def _song(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    y = 0.05 * np.sin(2 * np.pi * 110 * t) + 0.005 * rng.standard_normal(t.size)
    onsets = np.cumsum(rng.uniform(0.12, 0.4, size=int(seconds / 0.12)))
    n = int(0.2 * SR)
    decay = np.exp(-t[:n] * 18)
    for on in onsets[onsets < seconds - 0.3]:
        i = int(on * SR)
        f = 200 * 2 ** (rng.integers(0, 24) / 12)
        y[i:i + n] += 0.3 * np.sin(2 * np.pi * f * t[:n]) * decay
    return y.astype(np.float32)


SONG = _song(50, seed=5)
REF = sync_reference(SONG, SR)


def _run(stream, truth, *, coarse=None, gain=0.5, update_s=0.25):
    """Feed ``stream`` block by block; every update record (stream_s, chart error s, status).

    ``truth(stream_s)`` gives the true chart time (None while the player is paused)."""
    onsets = OnsetStream(SR)
    sync = Synchronizer(REF)
    if coarse is not None:
        sync.set_coarse(coarse)
    out, next_update, quiet_since = [], update_s, None
    block = 256
    for i in range(0, stream.size, block):
        x = stream[i:i + block] * gain
        onsets.push(x)
        loud = np.sqrt(np.mean(x * x)) > 1e-3
        quiet_since = None if loud else (quiet_since if quiet_since is not None else i / SR)
        now = onsets.frames_done / FRAME_RATE
        if now >= next_update:
            next_update += update_s
            silent = quiet_since is not None and now - quiet_since > 0.3
            n = min(onsets.frames_done, 600)
            sync.update(onsets.latest(n), end_frame=onsets.frames_done, silent=silent)
            chart = sync.chart_time(now)
            true = truth(now)
            err = None if chart is None or true is None else chart - true
            out.append((now, err, sync.status))
    return out


def test_ncc_peak_subframe():
    rng = np.random.default_rng(1)
    x = np.convolve(rng.random(400) ** 6, np.hanning(5), mode="same")
    fine = np.interp(np.arange(200) + 123.3, np.arange(400), x)
    position, score, runner_up = ncc_peak(fine, x)
    assert abs(position - 123.3) < 0.1 and score > 0.95 and runner_up < 0.6


@pytest.mark.parametrize("coarse_error", [None, 0.12])
def test_locks_to_fractional_offset(coarse_error):
    rng = np.random.default_rng(7)
    errors = []
    for start_s in rng.uniform(3, 30, size=3):
        start = int(start_s * SR) + 0.37  # a fractional sample start is kept below
        stream = SONG[int(start):int(start) + 12 * SR]
        true_offset = int(start) / SR
        coarse = None if coarse_error is None else true_offset + coarse_error
        trace = _run(stream, lambda s: s + true_offset, coarse=coarse)
        locked = [(t, e) for t, e, st in trace if st is SyncStatus.LOCKED]
        assert locked and locked[0][0] <= 4.0  # locked within 4 s of stream
        errors += [abs(e) for t, e in locked]
    assert np.median(errors) < 0.003 and np.percentile(errors, 95) < 0.008


@pytest.mark.parametrize("a, b", [(5.0, 31.0), (20.0, 3.0), (8.0, 25.0)])
def test_seek_relocks_within_one_and_a_half_seconds(a, b):
    # play from chart a, at stream 10 s jump to chart b (forward or back)
    stream = np.concatenate([SONG[int(a * SR):int((a + 10) * SR)],
                             SONG[int(b * SR):int((b + 10) * SR)]])
    trace = _run(stream, lambda s: a + s if s < 10 else b + s - 10, coarse=a)
    after = [(t, e) for t, e, st in trace if t >= 10 + 1.5]
    assert all(e is not None and abs(e) < 0.01 for t, e in after), after[:6]


def test_pause_freezes_then_relocks():
    a, pause = 8.0, 3.0  # play 8 s from chart 8 s, pause 3 s (silence), resume where it stopped
    stream = np.concatenate([SONG[int(a * SR):int((a + 8) * SR)],
                             np.zeros(int(pause * SR), np.float32),
                             SONG[int((a + 8) * SR):int((a + 16) * SR)]])

    def truth(s):
        if s < 8:
            return a + s
        return None if s < 8 + pause else a + s - pause

    trace = _run(stream, truth, coarse=a)
    paused = [st for t, e, st in trace if 9.5 < t < 8 + pause]
    assert paused and all(st is SyncStatus.PAUSED for st in paused)
    resumed = [e for t, e, st in trace if t >= 8 + pause + 2.0]
    assert resumed and all(e is not None and abs(e) < 0.01 for e in resumed)


def test_follows_drift():
    # the player runs 0.2 % fast: stream second s is chart second 6 + 1.002 s
    speed, a = 1.002, 6.0
    src = np.arange(int(20 * SR)) * speed + a * SR
    stream = np.interp(src, np.arange(SONG.size), SONG).astype(np.float32)
    trace = _run(stream, lambda s: a + speed * s, coarse=a)
    late = [abs(e) for t, e, st in trace if t > 12 and e is not None]
    assert late and np.median(late) < 0.004 and max(late) < 0.012


def test_unrelated_audio_never_locks():
    other = _song(15, seed=99)
    trace = _run(other, lambda s: None)
    assert all(st is SyncStatus.SEARCHING for t, e, st in trace)


def _feed(sync, stream, *, start_s=0.0, until_s=None, update_s=0.25, since=None):
    """Feed ``stream`` (from stream second 0) to ``sync``; return [(stream_s, chart_s)]."""
    onsets = OnsetStream(SR)
    out, next_update = [], update_s
    for i in range(0, stream.size, 256):
        onsets.push(stream[i:i + 256] * 0.5)
        now = onsets.frames_done / FRAME_RATE
        if now >= next_update:
            next_update += update_s
            if since is not None:
                since(sync, now)
            n = min(onsets.frames_done, 600)
            sync.update(onsets.latest(n), end_frame=onsets.frames_done)
            out.append((now, sync.chart_time(now)))
    return out


# A song that plays one 6 s passage twice: 0-10 intro, 10-16 R, 16-24 bridge, 24-30 R, 30-40 end.
_R = SONG[int(20 * SR):int(26 * SR)]
REPEATED = np.concatenate([SONG[:int(10 * SR)], _R, SONG[int(30 * SR):int(38 * SR)], _R,
                           SONG[int(40 * SR):int(50 * SR)]])


def test_lock_on_the_wrong_copy_of_a_repeat_moves_once_the_copies_differ():
    # The stream plays from chart 24 s (the second copy), but the fingerprint said 10 s (the
    # first copy fits as well): once the song goes on past the repeat, the lock moves.
    sync = Synchronizer(sync_reference(REPEATED, SR))
    sync.set_coarse(10.0)
    trace = _feed(sync, REPEATED[int(24 * SR):int(36 * SR)])
    late = [(t, c - (24 + t)) for t, c in trace if t >= 6.0 + 2.0 and c is not None]
    assert late and all(abs(e) < 0.01 for t, e in late), late[:5]


def test_fingerprint_hint_settles_which_copy_plays():
    # Same mistake; the fingerprint's recheck (a hint) points at the second copy while the
    # copies are still identical: the lock moves there without waiting for them to differ.
    sync = Synchronizer(sync_reference(REPEATED, SR))
    sync.set_coarse(10.0)

    def hint(s, now):
        if 4.0 <= now < 4.25:
            s.hint(24.0, stream_s=now)

    trace = _feed(sync, REPEATED[int(24 * SR):int(30 * SR)], since=hint)
    moved = [(t, c - (24 + t)) for t, c in trace if t >= 4.5 and c is not None]
    assert moved and all(abs(e) < 0.01 for t, e in moved), moved[:5]


def test_fingerprints_that_contradict_an_earlier_one_do_not_move_a_confirmed_lock():
    # Playing the first copy (chart 10 s on); a recheck agrees. Two later ones name the other
    # copy (Chromaprint confusing two copies of a chorus): the envelope fits both alike and
    # saw no jump, so the lock stays.
    sync = Synchronizer(sync_reference(REPEATED, SR))
    sync.set_coarse(10.0)
    hints = {3.0: 10.01, 4.5: 24.02, 5.5: 23.98}

    def hint(s, now):
        for at, offset in hints.items():
            if at <= now < at + 0.25:
                s.hint(offset, stream_s=now, from_s=0.0)

    trace = _feed(sync, REPEATED[int(10 * SR):int(16 * SR)], since=hint)
    locked = [(t, c - (10 + t)) for t, c in trace if t >= 2.0 and c is not None]
    assert sync.confirmed
    assert locked and all(abs(e) < 0.01 for t, e in locked), locked[:5]


def test_a_lock_where_the_fingerprint_put_it_does_not_hop_to_another_copy():
    # The chart's first copy of the passage was analyzed from a noisier take, so the stream
    # (the clean take, at the first copy: the fingerprint says 10 s) fits the second copy a
    # little better. Nothing jumped, so the envelope's preference alone does not move the lock.
    noisy = _R + 0.05 * np.random.default_rng(1).standard_normal(_R.size).astype(np.float32)
    reference = np.concatenate([SONG[:int(10 * SR)], noisy, SONG[int(30 * SR):int(38 * SR)],
                                _R, SONG[int(40 * SR):int(50 * SR)]])
    sync = Synchronizer(sync_reference(reference, SR))
    sync.set_coarse(10.0)
    trace = _feed(sync, REPEATED[int(10 * SR):int(16 * SR)])
    locked = [(t, c - (10 + t)) for t, c in trace if t >= 2.0 and c is not None]
    assert locked and all(abs(e) < 0.01 for t, e in locked), locked[:5]


def test_pause_with_exact_edges_relocks_within_a_second_of_sound():
    a, pause = 8.0, 3.0
    stream = np.concatenate([SONG[int(a * SR):int((a + 8) * SR)],
                             np.zeros(int(pause * SR), np.float32),
                             SONG[int((a + 8) * SR):int((a + 16) * SR)]])
    onsets = OnsetStream(SR)
    sync = Synchronizer(REF)
    sync.set_coarse(a)
    errors, next_update = [], 0.25
    for i in range(0, stream.size, 256):
        onsets.push(stream[i:i + 256] * 0.5)
        now = onsets.frames_done / FRAME_RATE
        if now >= next_update:
            next_update += 0.25
            silent = 8.3 <= now < 8 + pause + 0.01  # the caller's silence detector
            since = 8.0 if silent else (8.0 + pause if now > 8 + pause else None)
            sync.update(onsets.latest(min(onsets.frames_done, 600)),
                        end_frame=onsets.frames_done, silent=silent, since_s=since)
            if now >= 8 + pause + 1.0:
                errors.append(sync.chart_time(now) - (a + now - pause))
    assert errors and max(abs(e) for e in errors) < 0.01, errors[:5]


def test_a_short_seek_into_a_repeated_passage_follows_the_fingerprint():
    # Playing the first copy of the repeat (chart 10-16 s), the player skips 0.21 s ahead at
    # stream 4 s. The envelope fits both copies equally, so only the fingerprint can say which;
    # its first recheck of the audio since the jump (here 2.7 s after it, 30 ms off as
    # Chromaprint is) moves the lock at once, though it is less than a second from the old one.
    jump, skip = 4.0, 0.21
    stream = np.concatenate([REPEATED[int(8 * SR):int((8 + jump) * SR)],
                             REPEATED[int((8 + jump + skip) * SR):int(18 * SR)]])
    sync = Synchronizer(sync_reference(REPEATED, SR))
    sync.set_coarse(8.0)

    def hint(s, now):
        if jump + 2.7 <= now < jump + 2.95:
            s.hint(8.0 + skip + 0.03, stream_s=now, from_s=jump - 0.5)

    trace = _feed(sync, stream, since=hint)
    before = [c - (8 + t) for t, c in trace if 2.5 <= t < jump]
    after = [(t, c - (8 + skip + t)) for t, c in trace if t >= jump + 2.95]
    assert before and max(abs(e) for e in before) < 0.01
    assert after and all(abs(e) < 0.01 for t, e in after), after[:5]


# Clicks every 0.4 s from chart 10 s on: one beat of it looks like any other to the envelope.
_BEATS = SONG[:int(40 * SR)].copy()
_BEATS[int(10 * SR):] = 0.0
_CLICK = SONG[int(3 * SR):int(3.1 * SR)]
for _on in np.arange(10.0, 40.0, 0.4):
    _BEATS[int(_on * SR):int(_on * SR) + _CLICK.size] += _CLICK


def test_two_fingerprints_that_agree_move_a_lock_one_beat_off_and_one_does_not():
    # The identification put the lock one beat early (chart 12.0 for 12.4): the envelope fits
    # both. A single recheck saying so is within a fingerprint's error of a beat; two in a row
    # that agree with each other move the lock.
    sync = Synchronizer(sync_reference(_BEATS, SR))
    sync.set_coarse(12.0)
    hints = {4.0: 12.43, 6.0: 12.38}

    def hint(s, now):
        for at, offset in hints.items():
            if at <= now < at + 0.25:
                s.hint(offset, stream_s=now, from_s=now - 3.5)

    trace = _feed(sync, _BEATS[int(12.4 * SR):int(22.4 * SR)], since=hint)
    one = [c - (12.0 + t) for t, c in trace if 3.0 <= t < 6.0]
    two = [c - (12.4 + t) for t, c in trace if t >= 6.25]
    assert one and max(abs(e) for e in one) < 0.01  # still where it was
    assert two and max(abs(e) for e in two) < 0.01, two[:5]


# A song whose rhythm says nothing about where it is: the same click every 0.25 s over pads
# whose chord changes (cross-faded, so no onset) every half second. The onset envelope of any
# second of it fits every beat; its spectrum (the reference's coarse bands) fits one place.
def _harmony_song(seconds, seed, *, chords=None):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    steps = int(np.ceil(seconds / 0.5))
    if chords is None:
        chords = rng.integers(0, 36, size=(steps, 3))
    y = np.zeros(n)
    ramp = np.linspace(0, 1, int(0.1 * SR))  # each chord fades in over 0.1 s, out over the next's
    for k in range(steps):
        lo, end = int(k * 0.5 * SR), int((k + 1) * 0.5 * SR)
        gain = np.concatenate([ramp, np.ones(end - lo - ramp.size), ramp[::-1]])
        hi = min(lo + gain.size, n)
        for note in chords[k]:
            f = 110 * 2 ** (note / 12)
            y[lo:hi] += 0.05 * gain[:hi - lo] * np.sin(2 * np.pi * f * t[lo:hi])
    click = np.random.default_rng(0).standard_normal(int(0.02 * SR)) * np.hanning(int(0.02 * SR))
    for on in np.arange(0.0, seconds - 0.05, 0.25):
        i = int(on * SR)
        y[i:i + click.size] += 0.3 * click
    return y.astype(np.float32), chords


HARMONY, _CHORDS = _harmony_song(60, seed=11)


def _feed_bands(sync, stream, *, gain=0.5, update_s=0.25, bands=True, since=None):
    """Like :func:`_run`, giving the synchroniser the live coarse bands too (and calling
    ``since(sync, stream_s)`` before each update, as :func:`_feed`)."""
    onsets = OnsetStream(SR)
    out, next_update, quiet_since, sound_since = [], update_s, None, 0.0
    for i in range(0, stream.size, 256):
        x = stream[i:i + 256] * gain
        onsets.push(x)
        loud = np.sqrt(np.mean(x * x)) > 1e-3
        if loud and quiet_since is not None:
            sound_since = i / SR
        quiet_since = None if loud else (quiet_since if quiet_since is not None else i / SR)
        now = onsets.frames_done / FRAME_RATE
        if now >= next_update:
            next_update += update_s
            rows = min(onsets.rows_done, 60)
            silent = quiet_since is not None and now - quiet_since > 0.3
            if since is not None:
                since(sync, now)
            # the edges of a silence to a block (as the app says them to a sample)
            sync.update(onsets.latest(min(onsets.frames_done, 600)),
                        end_frame=onsets.frames_done, silent=silent,
                        since_s=quiet_since if silent else sound_since,
                        bands=onsets.latest_bands(rows) if bands and rows else None)
            out.append((now, sync.chart_time(now)))
    return out


def _seek_stream(song, a, b, *, before=8.0, after=8.0):
    return np.concatenate([song[int(a * SR):int((a + before) * SR)],
                           song[int(b * SR):int((b + after) * SR)]])


@pytest.mark.parametrize("a, b", [(4.0, 31.37), (30.0, 12.61), (10.0, 45.13), (10.0, 18.2)])
def test_bands_place_a_seek_the_envelope_cannot(a, b):
    # Off the click grid (b's fraction of a beat), so the lock is in doubt at once; the envelope
    # fits every beat of the chart equally, the bands only b (also a skip of a fifth of a
    # second: 10 + 8 s -> 18.2 s).
    stream = _seek_stream(HARMONY, a, b)
    sync = Synchronizer(sync_reference(HARMONY, SR))
    sync.set_coarse(a)
    trace = _feed_bands(sync, stream)
    before = [c - (a + t) for t, c in trace if 3.0 <= t < 8.0]
    after = [(t, c - (b + t - 8.0)) for t, c in trace if t >= 8.0 + 2.0]
    assert before and max(abs(e) for e in before) < 0.01
    assert after and all(abs(e) < 0.01 for t, e in after), after[:5]


def test_without_bands_the_envelope_cannot_place_it():
    # The same seek with a chart from before the bands (or no live bands): nothing to go on
    # but the fingerprint, which this test does not give, so no re-lock.
    a, b = 4.0, 31.37
    stream = _seek_stream(HARMONY, a, b)
    reference = sync_reference(HARMONY, SR)
    old = SyncReference(reference.envelope, reference.frame_rate)
    for sync, bands in ((Synchronizer(old), True), (Synchronizer(reference), False)):
        sync.set_coarse(a)
        trace = _feed_bands(sync, stream, bands=bands)
        after = [c - (b + t - 8.0) for t, c in trace if t >= 8.0 + 2.0]
        assert not any(c is not None and abs(c) < 0.01 for c in after)


def test_bands_place_a_seek_made_while_paused():
    # Play 8 s from 4 s, pause 3 s, resume at 31.37 s: not where it stopped, and off the click
    # grid, so only the bands can place it (the envelope alone never does).
    a, b, pause = 4.0, 31.37, 3.0
    stream = np.concatenate([HARMONY[int(a * SR):int((a + 8) * SR)],
                             np.zeros(int(pause * SR), np.float32),
                             HARMONY[int(b * SR):int((b + 8) * SR)]])
    back = 8.0 + pause
    for bands in (True, False):
        sync = Synchronizer(sync_reference(HARMONY, SR))
        sync.set_coarse(a)
        trace = _feed_bands(sync, stream, bands=bands)
        after = [c - (b + t - back) for t, c in trace if t >= back + 1.5]
        placed = [c is not None and abs(c) < 0.01 for c in after]
        assert after and (all(placed) if bands else not any(placed)), (bands, after[:4])


def test_bands_do_not_jump_to_either_copy_of_a_repeated_passage():
    # The chord sequence of 20-30 s comes again at 40-50 s: a seek into one copy fits both
    # alike, so the bands do not say which (the fingerprint, later, or the song going on does).
    chords = _CHORDS.copy()
    chords[80:100] = chords[40:60]
    song, _ = _harmony_song(60, seed=11, chords=chords)
    a, b = 4.0, 42.37
    sync = Synchronizer(sync_reference(song, SR))
    sync.set_coarse(a)
    trace = _feed_bands(sync, _seek_stream(song, a, b, after=5.0))
    wrong = b - 20.0  # the other copy
    assert not any(c is not None and abs(c - (wrong + t - 8.0)) < 0.05
                   for t, c in trace if t >= 8.0)


@pytest.mark.parametrize("other", [14.0, 44.0])
def test_a_fingerprint_naming_a_place_whose_music_differs_does_not_move_the_lock(other):
    # Playing from 24 s, locked there. A fingerprint recheck names another place on the same
    # click grid (Chromaprint confusing two copies of a riff): the envelope fits there as well
    # as here, but the chords there are not the ones playing, so the lock stays.
    sync = Synchronizer(sync_reference(HARMONY, SR))
    sync.set_coarse(24.0)

    def hint(s, now):
        if 5.0 <= now < 5.25:
            s.hint(other, stream_s=now, from_s=0.0)

    trace = _feed_bands(sync, HARMONY[int(24 * SR):int(32 * SR)], since=hint)
    locked = [(t, c - (24 + t)) for t, c in trace if t >= 2.0]
    assert locked and all(c is not None and abs(c) < 0.01 for t, c in locked), locked[:5]


def test_live_bands_must_match_the_reference():
    sync = Synchronizer(sync_reference(HARMONY[:10 * SR], SR))
    with pytest.raises(SyncError):
        sync.update(np.ones(300), end_frame=300, bands=np.zeros((30, 12), np.uint8))
