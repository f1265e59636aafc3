"""notes.mid reading (known note lists written with mido) and writing (round trips)."""
from __future__ import annotations

import io

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from analyzer.formats.common import FormatError
from analyzer.formats.midi import export_midi, parse_midi
from analyzer.formats.tempo import TempoMap
from chart_store.chart import Chart, ChartMeta, Note, Phrase, TimeSignature
from tests.strategies import metas

RES = 480


def midi_bytes(tracks, *, tempos=((0, 500_000),), resolution=RES, type_=1, texts=()) -> bytes:
    """A MIDI file: a tempo track, then one track per (name, [(tick, length, note), ...]), each
    with the text events ``texts`` at tick 0."""
    mid = mido.MidiFile(type=type_, ticks_per_beat=resolution)
    events = [(tick, mido.MetaMessage("set_tempo", tempo=us)) for tick, us in tempos]
    if type_ == 1:
        mid.tracks.append(_track(events))
        events = []
    for name, notes in tracks:
        track_events = list(events)
        if name is not None:
            track_events.append((0, mido.MetaMessage("track_name", name=name)))
        track_events += [(0, mido.MetaMessage("text", text=text)) for text in texts]
        for tick, length, note in notes:
            track_events.append((tick, mido.Message("note_on", note=note, velocity=100)))
            track_events.append((tick + length, mido.Message("note_off", note=note)))
        mid.tracks.append(_track(track_events))
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def _track(events):
    track, previous = mido.MidiTrack(), 0
    # At one tick: metas first, then note-offs, then note-ons (what every editor writes).
    order = {"note_off": 1, "note_on": 2}
    for tick, msg in sorted(events, key=lambda e: (e[0], order.get(e[1].type, 0))):
        track.append(msg.copy(time=tick - previous))
        previous = tick
    return track


def test_difficulty_ranges_lanes_and_exact_times():
    notes = [(0, 10, 96), (480, 10, 100), (960, 10, 84), (1440, 10, 88), (480, 10, 72),
             (960, 10, 64), (0, 10, 60)]
    chart = parse_midi(midi_bytes([("PART GUITAR", notes)]))
    assert chart.instrument == "guitar" and chart.lanes == 5 and chart.stem == "guitar"
    got = {d: [(n.t, n.lane, n.dur) for n in ns] for d, ns in chart.difficulties.items()}
    assert got == {"expert": [(0.0, 0, 0.0), (0.5, 4, 0.0)], "hard": [(1.0, 0, 0.0), (1.5, 4, 0.0)],
                   "medium": [(0.5, 0, 0.0)], "easy": [(0.0, 0, 0.0), (1.0, 4, 0.0)]}
    assert all(n.pitch is None and n.stem == "guitar" for ns in chart.difficulties.values()
               for n in ns)


def test_tempo_changes_give_exact_seconds():
    # 120 BPM for 2 beats, then 60 BPM for 2 beats, then 240 BPM; tempo events in the tempo track.
    tempos = ((0, 500_000), (960, 1_000_000), (1920, 250_000))
    notes = [(0, 1, 96), (960, 1, 97), (1440, 1, 98), (1920, 1, 99), (2400, 1, 100)]
    chart = parse_midi(midi_bytes([("PART GUITAR", notes)], tempos=tempos))
    assert [n.t for n in chart.difficulties["expert"]] == [0.0, 1.0, 2.0, 3.0, 3.25]
    assert chart.tempo.ticks == (0, 960, 1920)
    np.testing.assert_allclose(chart.beats(3.5), [0, 0.5, 1, 2, 3, 3.25, 3.5])


def test_tempo_in_a_type0_file_and_default_120_bpm():
    notes = [(960, 1, 96)]
    type0 = parse_midi(midi_bytes([(None, notes)], tempos=((480, 250_000),), type_=0))
    assert type0.difficulties["expert"][0].t == pytest.approx(0.5 + 0.25)
    no_tempo = parse_midi(midi_bytes([("PART GUITAR", notes)], tempos=()))
    assert no_tempo.difficulties["expert"][0].t == 1.0


def test_delay_shifts_notes_and_beats():
    chart = parse_midi(midi_bytes([("PART GUITAR", [(480, 1, 96)])]), offset_s=0.25)
    assert chart.difficulties["expert"][0].t == 0.75
    assert chart.beats(1.3).tolist() == [0.25, 0.75, 1.25]


def test_sustain_cutoff_default_is_a_twelfth_step_and_ini_overrides():
    notes = [(0, 160, 96), (960, 161, 97), (1920, 960, 98)]
    chart = parse_midi(midi_bytes([("PART GUITAR", notes)]))
    assert [n.dur for n in chart.difficulties["expert"]] == pytest.approx([0.0, 161 / 960, 1.0])
    strict = parse_midi(midi_bytes([("PART GUITAR", notes)]), sustain_cutoff_ticks=0)
    assert [n.dur for n in strict.difficulties["expert"]] == pytest.approx(
        [160 / 960, 161 / 960, 1.0])


def test_sustain_spanning_a_tempo_change_is_exact():
    notes = [(0, 1920, 96)]  # 2 beats at 120 BPM then 2 at 60 BPM
    tempos = ((0, 500_000), (960, 1_000_000))
    chart = parse_midi(midi_bytes([("PART GUITAR", notes)], tempos=tempos))
    assert chart.difficulties["expert"][0].dur == 3.0


def test_chords_are_notes_on_one_tick_sorted_by_lane():
    chart = parse_midi(midi_bytes([("PART GUITAR", [(480, 1, 100), (480, 1, 96), (480, 1, 98)])]))
    assert [(n.t, n.lane) for n in chart.difficulties["expert"]] == [(0.5, 0), (0.5, 2), (0.5, 4)]


def test_a_chord_spread_over_a_few_ticks_is_one_chord():
    # Recorded or hand-drawn: 0, 5 and 15 ticks after the first note-on; then one 16 ticks after.
    notes = [(480, 240, 96), (485, 235, 98), (495, 225, 100), (496, 1, 97)]
    chart = parse_midi(midi_bytes([("PART GUITAR", notes)]))
    assert [(n.t, n.dur, n.lane) for n in chart.difficulties["expert"]] == [
        (0.5, 0.25, 0), (0.5, 0.25, 2), (0.5, 0.25, 4), (496 / 960, 0.0, 1)]


def test_markers_opens_and_other_tracks_are_ignored():
    notes = [(0, 1, 96), (0, 480, 116), (0, 480, 103), (0, 1, 95), (0, 1, 101), (0, 1, 102),
             (0, 1, 104), (480, 1, 12), (480, 1, 127)]
    chart = parse_midi(midi_bytes([("EVENTS", [(0, 1, 96)]), ("PART VOCALS", [(0, 1, 97)]),
                                   ("PART GUITAR", notes)]))
    assert [(n.t, n.lane) for n in chart.difficulties["expert"]] == [(0.0, 0)]
    assert set(chart.difficulties) == {"expert"}


def test_star_power_and_solos_are_the_parts_phrases():
    # 120 BPM: 480 ticks are 0.5 s. Another part's phrases are not this one's.
    guitar = [(0, 1, 96), (960, 1, 97), (480, 960, 116), (1920, 1440, 103), (2400, 480, 116)]
    chart = parse_midi(midi_bytes([("PART BASS", [(0, 1, 96), (0, 4800, 116)]),
                                   ("PART GUITAR", guitar)]), offset_s=0.25)
    assert chart.phrases == (Phrase("star_power", 0.75, 1.0), Phrase("solo", 2.25, 1.5),
                             Phrase("star_power", 2.75, 0.5))
    # Guitar Hero 1 marked star power with 103, and had no solos.
    old = parse_midi(midi_bytes([("T1 GEMS", [(0, 1, 96), (0, 960, 103)])]))
    assert old.phrases == (Phrase("star_power", 0.0, 1.0),)


def test_time_signatures_are_read_from_any_track_and_written_back():
    mid = mido.MidiFile(type=1, ticks_per_beat=RES)
    mid.tracks.append(_track([(0, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
                              (1440, mido.MetaMessage("time_signature", numerator=6,
                                                      denominator=8))]))
    mid.tracks.append(_track([(0, mido.MetaMessage("track_name", name="PART GUITAR")),
                              (0, mido.Message("note_on", note=96, velocity=100)),
                              (1, mido.Message("note_off", note=96))]))
    buffer = io.BytesIO()
    mid.save(file=buffer)
    chart = parse_midi(buffer.getvalue(), offset_s=0.5)
    assert chart.time_signatures == (TimeSignature(0.5, 3, 4), TimeSignature(2.0, 6, 8))
    generated = Chart(ChartMeta("t"), {"expert": (Note(0.5, lane=1),)}, beats=np.arange(8) * 0.5)
    assert parse_midi(export_midi(generated).data).time_signatures == (TimeSignature(0.0),)
    metred = Chart(generated.meta, generated.difficulties, beats=generated.beats,
                   time_signatures=(TimeSignature(0.0, 3, 4), TimeSignature(1.5, 7, 8)))
    assert parse_midi(export_midi(metred).data).time_signatures == metred.time_signatures


def test_export_writes_the_phrases_back():
    chart = Chart(ChartMeta("t"), {"expert": (Note(0.5, lane=1), Note(3.0, lane=2))},
                  beats=np.arange(16) * 0.5,
                  phrases=(Phrase("star_power", 0.5, 1.0), Phrase("solo", 2.0, 2.0),
                           Phrase("star_power", 3.0, 0.0)))
    back = parse_midi(export_midi(chart).data)
    # A phrase of no length still spans a tick, so a game sees it.
    assert back.phrases[:2] == chart.phrases[:2]
    assert back.phrases[2].kind == "star_power" and back.phrases[2].t == 3.0
    assert 0 < back.phrases[2].dur < 0.01
    with pytest.raises(FormatError, match="before the song start"):
        export_midi(Chart(chart.meta, chart.difficulties, phrases=(Phrase("solo", -1.0, 2.0),)))


@pytest.mark.parametrize("present, chosen", [
    (["PART BASS", "PART GUITAR"], "guitar"), (["PART KEYS", "PART RHYTHM"], "rhythm"),
    (["PART KEYS", "PART BASS"], "bass"), (["PART KEYS"], "keys"),
])
def test_instrument_choice_guitar_first(present, chosen):
    chart = parse_midi(midi_bytes([(name, [(0, 1, 96)]) for name in present]))
    assert chart.instrument == chosen and chart.stem == chosen


def test_empty_guitar_track_falls_through_and_instrument_can_be_asked():
    data = midi_bytes([("PART GUITAR", [(0, 1, 40)]), ("PART BASS", [(0, 1, 97)])])
    assert parse_midi(data).instrument == "bass"
    with pytest.raises(FormatError, match="no keys notes"):
        parse_midi(data, instrument="keys")


def test_old_fof_file_with_one_unnamed_track_is_guitar():
    chart = parse_midi(midi_bytes([("notes", [(0, 1, 96), (480, 1, 85)])], type_=0))
    assert chart.instrument == "guitar"
    assert set(chart.difficulties) == {"expert", "hard"}
    # Named after its song, not a show or instrument track (those are whole names).
    for song in ("Beat It", "Part of Me", "Events Horizon", "Harmony"):
        chart = parse_midi(midi_bytes([(song, [(0, 1, 96), (480, 1, 97)])], type_=0))
        assert chart.instrument == "guitar" and len(chart.difficulties["expert"]) == 2


def test_a_drums_or_vocals_track_is_never_read_as_guitar():
    # Their notes 96-100 are drum pads and sung pitches: a song charted for drums alone has no
    # guitar chart (it imported as one, and a human chart outranks a generated one).
    for name in ("PART DRUMS", "PART VOCALS", "HARM1", "PART REAL_GUITAR", "PART DRUMS_2X",
                 "BEAT", "EVENTS"):
        with pytest.raises(FormatError, match="no notes in any chart track"):
            parse_midi(midi_bytes([(name, [(0, 1, 96), (480, 1, 97)])]))
    both = midi_bytes([("PART DRUMS", [(0, 1, 97)]), ("notes", [(480, 1, 98)])])
    assert [n.lane for n in parse_midi(both).difficulties["expert"]] == [2]


def test_six_fret_track_has_six_lanes():
    chart = parse_midi(midi_bytes([("PART GUITAR GHL", [(0, 1, 95), (480, 1, 100)])]))
    assert chart.lanes == 6
    assert [n.lane for n in chart.difficulties["expert"]] == [0, 5]


@pytest.mark.parametrize("text", ["[ENHANCED_OPENS]", "ENHANCED_OPENS"])
def test_open_notes_are_strummed_notes_on_lane_0(text):
    # An open note is a strum with no fret held: a note the player plays, at its own time. It was
    # dropped, leaving a hole in the chart where the guitar plays its open string.
    notes = [(0, 1, 95), (480, 960, 95), (1440, 1, 97), (0, 1, 83), (0, 1, 71), (0, 1, 59)]
    chart = parse_midi(midi_bytes([("PART GUITAR", notes)], texts=[text]))
    assert [(n.t, n.lane, n.dur) for n in chart.difficulties["expert"]] == [
        (0.0, 0, 0.0), (0.5, 0, 1.0), (1.5, 1, 0.0)]
    assert set(chart.difficulties) == {"expert", "hard", "medium", "easy"}
    # Without the event, 95 means nothing and 59 is the guitarist's hand animation.
    plain = parse_midi(midi_bytes([("PART GUITAR", notes)]))
    assert [n.t for n in plain.difficulties["expert"]] == [1.5]
    assert set(plain.difficulties) == {"expert"}
    # On 6-fret the note under white 1 is always the open note.
    ghl = parse_midi(midi_bytes([("PART GUITAR GHL", [(0, 1, 94), (480, 1, 96), (0, 1, 58)])]))
    assert [(n.t, n.lane) for n in ghl.difficulties["expert"]] == [(0.0, 0), (0.5, 1)]
    assert [(n.t, n.lane) for n in ghl.difficulties["easy"]] == [(0.0, 0)]


def test_retriggered_and_unterminated_notes():
    mid = mido.MidiFile(type=0, ticks_per_beat=RES)
    mid.tracks.append(mido.MidiTrack([
        mido.Message("note_on", note=96, velocity=100, time=0),
        mido.Message("note_on", note=96, velocity=100, time=960),  # re-attack: ends the first
        mido.Message("note_on", note=96, velocity=0, time=480),    # velocity 0 = off
        mido.Message("note_on", note=97, velocity=100, time=480),  # never switched off
    ]))
    buffer = io.BytesIO()
    mid.save(file=buffer)
    notes = parse_midi(buffer.getvalue()).difficulties["expert"]
    assert [(n.t, n.dur, n.lane) for n in notes] == [(0.0, 1.0, 0), (1.0, 0.5, 0), (2.0, 0.0, 1)]


@pytest.mark.parametrize("data, message", [
    (b"", "not a readable MIDI file"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01", "not a readable MIDI file"),
    (b"garbage" * 30, "not a readable MIDI file"),
])
def test_broken_files_raise_format_error(data, message):
    with pytest.raises(FormatError, match=message):
        parse_midi(data)


def test_truncated_file_raises_format_error():
    data = midi_bytes([("PART GUITAR", [(i * 120, 60, 96 + i % 5) for i in range(100)])])
    with pytest.raises(FormatError, match="notes.mid: "):
        parse_midi(data[: len(data) // 2])


def test_file_without_chart_notes():
    with pytest.raises(FormatError, match="no notes"):
        parse_midi(midi_bytes([("PART GUITAR", [(0, 1, 40)])]))


# -- writing -----------------------------------------------------------------------------------

def _chart(notes, *, lanes=5, beats=np.arange(0, 20, 0.5)):
    return Chart(ChartMeta("t"), {"expert": tuple(notes)}, lanes=lanes, beats=beats)


def test_export_writes_part_guitar_with_the_tempo_of_the_beats():
    beats = np.r_[np.arange(0.3, 4.0, 0.5), np.arange(4.3, 8, 0.4)]  # 120 then 150 BPM
    chart = _chart([Note(0.8, 0, 1, None, "guitar"), Note(4.7, 1.2, 3, None, "guitar")],
                   beats=beats)
    written = export_midi(chart)
    mid = mido.MidiFile(file=io.BytesIO(written.data))
    assert mid.ticks_per_beat == 480 and mid.type == 1
    assert [m.name for t in mid.tracks for m in t if m.type == "track_name"][1] == "PART GUITAR"
    back = parse_midi(written.data, sustain_cutoff_ticks=written.sustain_cutoff_ticks)
    assert [(n.lane, round(n.t, 6), round(n.dur, 6)) for n in back.difficulties["expert"]] == [
        (1, 0.8, 0.0), (3, 4.7, 1.2)]
    # Every beat of the chart is a beat of the file.
    file_beats = back.beats(8.0)
    assert all(np.min(np.abs(file_beats - b)) < 1e-5 for b in beats)


def test_export_takes_any_title():
    chart = Chart(ChartMeta("日本 Ünï"), {"expert": (Note(1.0),)})
    mid = mido.MidiFile(file=io.BytesIO(export_midi(chart).data), charset="utf-8")
    assert mid.tracks[0].name == "日本 Ünï"


def test_export_clips_a_sustain_at_the_next_note_of_its_lane():
    chart = _chart([Note(1.0, 2.0, 0), Note(2.0, 0, 0)])
    written = export_midi(chart)
    notes = parse_midi(written.data, sustain_cutoff_ticks=written.sustain_cutoff_ticks)
    assert [(n.t, n.dur) for n in notes.difficulties["expert"]] == [(1.0, 1.0), (2.0, 0.0)]


def test_export_of_very_short_sustains_lowers_the_cutoff():
    chart = _chart([Note(1.0, 0.05, 0), Note(1.0, 0, 1)])
    written = export_midi(chart)
    assert written.sustain_cutoff_ticks < round(0.05 / 0.5 * 480)
    back = parse_midi(written.data, sustain_cutoff_ticks=written.sustain_cutoff_ticks)
    assert [round(n.dur, 3) for n in back.difficulties["expert"]] == [0.05, 0.0]


def test_export_rejects_notes_before_zero_and_empty_charts():
    with pytest.raises(FormatError, match="before the song start"):
        export_midi(_chart([Note(-0.1, 0, 0)]))
    with pytest.raises(FormatError, match="no notes"):
        export_midi(_chart([]))


def test_seven_lanes_fold_to_five_and_six_lanes_stay_six():
    seven = export_midi(_chart([Note(1.0, 0, 6), Note(1.5, 0, 0), Note(2.0, 0, 3)], lanes=7))
    assert [n.lane for n in parse_midi(seven.data).difficulties["expert"]] == [4, 0, 2]
    six = parse_midi(export_midi(_chart([Note(1.0, 0, 5)], lanes=6)).data)
    assert six.lanes == 6 and six.difficulties["expert"][0].lane == 5


@st.composite
def playable_charts(draw):
    """Charts as a song has them: 4-6 lanes, tempo 60-250 BPM with changes, a pickup before the
    first beat, notes (chords, sustains) that do not overlap on a lane, times up to ~2 minutes,
    any metadata text."""
    lanes = draw(st.integers(4, 6))
    beats, t = [], draw(st.floats(0, 3))
    for _ in range(draw(st.integers(0, 5))):
        period = 60 / draw(st.floats(60, 250))
        for _ in range(draw(st.integers(1, 40))):
            beats.append(t)
            t += period
    difficulties = {}
    for name in draw(st.lists(st.sampled_from(["easy", "medium", "hard", "expert"]), min_size=1,
                              max_size=4, unique=True)):
        free = [0.0] * lanes  # when each lane is free again
        notes, t = [], 0.0
        for _ in range(draw(st.integers(0, 30))):
            # A chord's notes on one time; others far enough apart not to read as one chord.
            step = draw(st.sampled_from([0.0, 0.0, 0.07, 0.125, 0.25, 0.5, 1.0, 3.7]))
            t = round(t + step + (draw(st.floats(0, 0.02)) if step else 0.0), 6)
            lane = draw(st.integers(0, lanes - 1))
            if t < free[lane] + 0.005:
                continue
            dur = draw(st.sampled_from([0.0, 0.0, 0.03, 0.2, 1.5]))
            notes.append(Note(t, dur, lane, None, "guitar"))
            free[lane] = t + dur
        difficulties[name] = sorted(notes, key=lambda n: (n.t, n.lane))
    return Chart(draw(metas), difficulties, lanes=lanes, beats=np.array(beats))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(playable_charts())
def test_midi_round_trip_keeps_notes(chart):
    assume(any(len(t) for t in chart.difficulties.values()))
    written = export_midi(chart)
    back = parse_midi(written.data, sustain_cutoff_ticks=written.sustain_cutoff_ticks)
    assert back.lanes == (6 if chart.lanes == 6 else 5)
    assert set(back.difficulties) == {d for d, t in chart.difficulties.items() if len(t)}
    for name, track in chart.difficulties.items():
        got = back.difficulties.get(name, ())
        assert len(got) == len(track)
        for lane in range(chart.lanes):  # notes 1 ms apart may swap order across lanes
            want_lane = [n for n in track if n.lane == lane]
            got_lane = [n for n in got if n.lane == lane]
            assert len(got_lane) == len(want_lane)
            for a, b in zip(got_lane, want_lane):  # both ends of a sustain within 1 ms
                assert abs(a.t - b.t) < 1e-3 and abs(a.end - b.end) < 1e-3
                assert (a.dur > 0) == (b.dur > 0)


def test_tempo_map_from_beats_is_exact_and_splits_slow_beats():
    beats = np.array([0.7, 1.7, 2.2, 2.7])  # a 1 s beat is written as two 0.5 s beats
    tempo = TempoMap.from_beats(beats)
    assert max(tempo.beat_s) <= 0.9
    grid = tempo.beat_times(2.8)
    assert all(np.min(np.abs(grid - b)) < 1e-6 for b in beats)
    assert tempo.seconds(tempo.tick_at(1.2345)) == pytest.approx(1.2345, abs=1e-12)


def test_a_steady_tempo_is_written_as_one_tempo():
    beats = 0.34 + np.arange(1000) * 60 / 180.001      # a chart on one tempo, from 0.34 s
    tempo = TempoMap.from_beats(beats)
    assert len(tempo.ticks) == 2                        # the pickup to the first beat, then one
    assert 60 / tempo.beat_s[1] == pytest.approx(180.001, abs=1e-3)   # whole microseconds
    grid = tempo.beat_times(beats[-1] + 0.01)[1:]
    assert np.abs(grid - beats).max() < 0.5e-6 * beats.size    # 0.5 us a beat at most
    # A first beat 45 ms in joins the pickup: 127 BPM, not a 45 ms beat at 1300 BPM.
    early = TempoMap.from_beats(0.045 + np.arange(100) * 60 / 140)
    assert len(early.ticks) == 2 and 2 / 3 * 140 < 60 / early.beat_s[0] < 140
    # Where the tempo changes, a new run starts; a jittery tempo is exact beat by beat.
    two = np.r_[beats[:100], beats[99] + np.arange(1, 101) * 0.3]
    assert len(TempoMap.from_beats(two).ticks) == 3
    jitter = beats + np.random.default_rng(0).uniform(-0.005, 0.005, beats.size)
    grid = TempoMap.from_beats(jitter).beat_times(jitter[-1] + 0.01)[1:]
    assert np.abs(grid - jitter).max() < 1e-6


def test_absurd_tempo_is_an_error_not_a_hang():
    chart = parse_midi(midi_bytes([("PART GUITAR", [(0, 1, 96)])], tempos=((0, 1),)))
    with pytest.raises(FormatError, match="more than 60000 beats"):
        chart.beats(300.0)
