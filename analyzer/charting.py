"""From audio to the notes of four difficulties: onsets → lanes, chords, sustains, thinning.

API
---
- :func:`chart_notes` — ``(y, sr, *, stems=None, lanes=5) -> ChartNotes``, the analyzer's entry.
- :class:`ChartNotes` — beat times, tempo, and a tuple of :class:`~chart_store.chart.Note` per
  difficulty (``mask`` None, ``stem`` set).
- :func:`assign_lanes` — a pitch contour → lanes that follow the melody (:func:`chart_notes`
  gives it the intervals the notes' partials move by, and which notes repeat the one before).
- :func:`counting_beats` — the beats the easier difficulties are thinned on.
- :data:`RULES` — what distinguishes the difficulties (:class:`DifficultyRule`).

How difficulties are made (the rule, and where its numbers come from)
----------------------------------------------------------------------
Which onsets are charted: those whose strength x metrical weight (on the beat > on the 8th >
elsewhere) x tonal weight (the share of new partials the onset brings, see
:func:`analyzer.notes.new_partials`, and less for a chord held on while the drums hit over it,
:func:`_held_over_factor`) reaches :data:`ONSET_THRESHOLD`, once lowered where the bars
that repeat this one lack the onset (:func:`analyzer.notes.repeat_consensus`); a brickwalled
master (:data:`BRICKWALL_CREST_DB`) is read with every mel band counting alike. They and the
beats are then moved onto the grid fitted to them where the music is on one
(:func:`analyzer.beats.snap_to_grid`: a detected onset and a tracked beat are a frame or so
off), and every difficulty is made from the snapped notes. The beats follow the tempo where it
changes (:func:`analyzer.beats.local_tempo`), and every rule in beats below reads the beat each
note falls in, so a song that speeds up is thinned at each section's own tempo. The chart is
published on a charter's tempo map: the fewest stretches of one tempo the tracked beats fit
(:func:`analyzer.beats.steady_beats`; one tempo for a song played to a click, where the tracker
wandered), the notes on its 16ths and triplets where they are within :data:`ON_GRID_S`. With a
separated stem of the charted instrument (Demucs' guitar, piano or other stem, the loudest), the
onsets are still the mix's, each weighed by what the stem hears there (:data:`STEM_WEIGHT`), and
pitches, sustains and lanes read the stem.

Human guitar charts (Frets on Fire / Guitar Hero conventions, checked on the four human charts of
``benchmarks/chart_quality``: Hard 0.53-0.84x the Expert onsets, Medium 0.30-0.73x, Easy
0.25-0.65x; shortest gap Expert a 16th note, Hard an 8th, Medium and Easy mostly a quarter) thin
notes by *metre*, not by a fixed ratio: fast runs go first, notes on strong beats stay. So each
difficulty is a shortest allowed gap in beats (Expert: a 16th, Hard: an 8th, Medium: a dotted
8th, Easy: a quarter; where the music divides the beat in three, a shuffle, Hard's is a triplet
8th and Medium's a quarter-note triplet), filled greedily by priority = onset strength x tonal
weight x metrical weight (on the beat > on the 8th, or on a third of the beat in triplet time >
elsewhere). Expert counts the tracked beats; the easier
levels count the beats a charter would (:func:`counting_beats`: half a beat later where the new
pitches come on the tracker's "and", half the tempo where the tracker doubled it), with the
metrical weight squared, and none keeps a larger share of the level above than the human charts
do (``max_share`` in :data:`RULES`), so the four levels differ where the music moves in 8ths
or slower. Where a charter counts half the tracked tempo, Expert's shortest gap is
a 16th of that beat too ("Feelings", 95 BPM tracked at 190: Expert F 0.672 -> 0.680, density
1.32x -> 1.23x; no other of the 8 songs is counted at half tempo). Easier levels also use fewer
lanes (Hard and Medium 4 of 5, Easy 3, as those charts do: the 8 songs' human Hard charts put
0-5 % of their notes on the orange lane, Medium none) and fewer chords; a note whose pitch goes
on through repeats that a level drops is held as a sustain there (a chugged chord becomes one
held chord), so sustains grow more common as levels get easier, as in human charts (two of the
benchmark songs: Expert 21-35 % of notes, Easy 56-67 %).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chart_store.chart import DIFFICULTIES, MAX_LANES, MIN_LANES, Note
from analyzer import beats as _beats
from analyzer import notes as _notes
from analyzer import onsets as _onsets

__all__ = ["chart_notes", "ChartNotes", "DifficultyRule", "RULES", "assign_lanes", "ChartingError",
           "counting_beats"]


class ChartingError(ValueError):
    """Arguments the charter cannot use (lane count out of range, mismatched arrays)."""


@dataclass(frozen=True)
class DifficultyRule:
    """How one difficulty differs from Expert.

    ``min_gap_beats``: shortest gap between two notes, in beats (never under ``min_gap_s``), and
    ``triplet_gap_beats`` where the beat is divided in three (:func:`analyzer.beats.triplet_feel`:
    a shuffle's swung 8th is a third of a beat from the next beat); ``lanes_drop``: lanes fewer
    than the chart's (at least 3 stay); ``chord_strength``: an onset at least this strong (the
    envelope's 99th percentile is 1) on a beat or 8th becomes a two-note chord (inf: no chords);
    ``sustain_beats``: a note that rings at least this long is a sustain; ``max_share``: at most
    this share of the next harder level's notes (the strongest by the thinning score stay).
    """

    min_gap_beats: float
    triplet_gap_beats: float
    lanes_drop: int
    chord_strength: float
    sustain_beats: float
    max_share: float = 1.0
    min_gap_s: float = 0.06

    def gap_s(self, beat_s: float | np.ndarray,
              in_triplets: bool | np.ndarray = False) -> float | np.ndarray:
        """Shortest gap between two notes at a beat of ``beat_s`` seconds (one, or each note's),
        in straight or triplet time, with the onsets' jitter allowed for (:data:`GAP_SLACK`)."""
        beats = np.where(in_triplets, self.triplet_gap_beats, self.min_gap_beats)
        return np.maximum(self.min_gap_s, beats * np.asarray(beat_s) * (1.0 - GAP_SLACK))


#: In triplet time Hard's 8th becomes a triplet 8th and Medium's dotted 8th a quarter-note
#: triplet; Expert's 16th (shorter than a triplet 8th) and Easy's quarter stay. ``max_share`` is
#: the largest share of the level above that any of the 8 human charts of benchmarks/
#: chart_quality keeps (Hard 0.53-0.84 of Expert, Medium 0.53-0.87 of Hard, Easy 0.71-0.95 of
#: Medium; one charter copied Expert to every level and is left out): where the music moves in
#: 8ths or slower the gaps alone leave the levels alike (60 game-music tracks: Hard kept over 90 %
#: of Expert on 36, Easy all of Medium on 11), and a player needs four different levels.
RULES: dict[str, DifficultyRule] = {
    "expert": DifficultyRule(min_gap_beats=0.25, triplet_gap_beats=0.25, lanes_drop=0,
                             chord_strength=1.2, sustain_beats=0.5),
    "hard": DifficultyRule(min_gap_beats=0.5, triplet_gap_beats=1 / 3, lanes_drop=1,
                           chord_strength=1.2, sustain_beats=0.5, max_share=0.84),
    "medium": DifficultyRule(min_gap_beats=0.75, triplet_gap_beats=2 / 3, lanes_drop=1,
                             chord_strength=1.6, sustain_beats=0.75, max_share=0.87),
    "easy": DifficultyRule(min_gap_beats=1.0, triplet_gap_beats=1.0, lanes_drop=2,
                           chord_strength=np.inf, sustain_beats=1.0, max_share=0.95),
}

#: Fastest lane changes a player can follow: notes closer than this many beats move <= 2 lanes.
FAST_BEATS = 0.5
#: Notes this close (s) to a 16th or an 8th-note triplet of the published tempo map move onto
#: it (:func:`analyzer.beats.on_grid`): an export then puts them on the grid an editor shows
#: (bench 86-87 % of the notes at every difficulty, dev 90-96 %; 75-86 % and 79-90 % with the
#: tracked beats), and F moves by under 0.005. A 32nd or a 16th-note triplet is >= 22 ms from
#: both up to 220 BPM, so none moves onto the wrong one.
ON_GRID_S = 0.02
#: How a charter spreads notes over five lanes, low to high: the mean of the human Expert charts
#: of the development songs of ``benchmarks/chart_quality`` (the benchmark songs' charter leans
#: further left, orange 0.03-0.11). Other lane counts take the same profile
#: (:func:`_lane_edges`): four lanes 0.23 / 0.38 / 0.28 / 0.11, as in the human Hard and Medium
#: charts there (0.21-0.22 / 0.36-0.39 / 0.27-0.30 / 0.12-0.14).
LANE_SHARES = (0.16, 0.30, 0.31, 0.17, 0.06)
#: Detected onsets jitter by a frame or two: a gap may be this fraction shorter than the rule's.
GAP_SLACK = 0.2
#: Onset strength (the envelope's 99th percentile is 1) an onset on the beat with a typical
#: share of new partials needs to be charted.
ONSET_THRESHOLD = 0.35
#: A master whose crest factor (:func:`analyzer.onsets.crest_factor_db`) is under this went
#: through a brickwall limiter (the 8 songs of benchmarks/chart_quality: 11.2-12.9 dB as mixed,
#: 7.9-9.6 dB limited by 4 or 8 dB; 60 game-music tracks 12.4-17.1 from the 10th to the 90th
#: percentile, 3 of them mastered loud at 10.1-10.5). Its limiter flattens the
#: loud bands' attacks, so its onsets are read with every mel band counting alike
#: (``onset_strength(per_band=True)``) at BRICKWALL_ONSET_THRESHOLD. Chosen on the development
#: songs (README "Loud masters, per band"): Expert F limited by 8 / 4 dB 0.670 / 0.696 ->
#: 0.693 / 0.695, density 1.34x / 1.28x -> 1.22x / 1.16x; as mixed per band would cost 0.012.
BRICKWALL_CREST_DB = 10.5
BRICKWALL_ONSET_THRESHOLD = 0.32
#: Metrical weights by position in the beat: on the beat, on the 8th, anywhere else. An onset's
#: strength times its metrical and tonal weights must reach ONSET_THRESHOLD, and ranks it when a
#: difficulty thins.
METRE_WEIGHTS = (1.0, 0.9, 0.75)
#: Onset weight from the share of new partials right after it (analyzer.notes.new_partials):
#: ``(FLOOR + share) / (FLOOR + TYPICAL)``, 0.5..1.5. Picked notes bring new partials, a drum hit
#: over a held chord does not (the human charter holds the chord); the share's median over a
#: song's onsets is 0.3-0.67 (8 songs). Measured on the development songs (benchmarks/
#: chart_quality): Expert F 0.682 -> 0.700, Hard 0.619 -> 0.626, density 1.36x -> 1.30x; a floor
#: of 0.25 scores the same there but halves a clean re-plucked note's weight instead of 0.5.
NEW_PARTIALS_FLOOR = 0.5
TYPICAL_NEW_PARTIALS = 0.5
#: An onset among the HELD_OVER_SIMILAR share of a song's onsets that sound most like the one
#: before, whose own partials rise by at most HELD_OVER_RISE (log-magnitude units; a song's
#: median is 0.2-0.37, a clean chord picked again 2-3), is weighed by HELD_OVER_FACTOR
#: (:func:`_held_over_factor`): most onsets a charter leaves out are drum hits over a chord held
#: on. Chosen on the development songs (benchmarks/chart_quality, README "Tenth round"). Not
#: with a separated stem, which tells those hits apart better (dev Expert with it, stem leak
#: 0 / 0.1 / 0.2 / 0.35: 0.784 / 0.776 / 0.761 / 0.737 without this weight, 0.780 / 0.773 /
#: 0.760 / 0.734 with it).
HELD_OVER_SIMILAR = 0.2
HELD_OVER_RISE = 0.5
HELD_OVER_FACTOR = 0.6
#: Hard, Medium and Easy are thinned on the beats a charter counts (:func:`counting_beats`),
#: ranked by strength x tonal weight x metrical weight ** THIN_METRE_POWER: charters keep the
#: notes on the beat there. Dev mean F ±50 ms (benchmarks/chart_quality) at powers 1 / 2 / 3:
#: Hard 0.645 / 0.647 / 0.649, Medium 0.399 / 0.417 / 0.419 (0.631 / 0.377 before).
THIN_METRE_POWER = 2
#: A song whose Expert chart has fewer notes than this per tracked beat is counted at half the
#: tracked tempo (human Expert charts: 1.3-2.7 notes per beat of their MIDI tempo, 8 songs;
#: generated ones 1.7-2.6 per tracked beat, and 0.89 on a 95 BPM song tracked at 190) ...
HALF_TIME_NOTES_PER_BEAT = 1.2
#: ... unless half of it is slower than this (BPM): the beat tracker's range is 100-220.
MIN_COUNTING_BPM = 80.0
#: Beats around each beat whose onsets decide whether the beat or the 8th after it is counted.
COUNTING_WINDOW_BEATS = 16
#: Onsets down to this strength are candidates: the charted ones need ONSET_THRESHOLD /
#: 1.5 at least, the weaker ones say what the repeats of a bar hold at each 16th note
#: (analyzer.notes.repeat_consensus lowers an onset's score where they do not hold it).
REPEAT_CANDIDATE_STRENGTH = 0.1
#: Onsets closer than this to a beat (or an 8th) are on it (seconds; about a frame and a half).
GRID_TOLERANCE_S = 0.02
#: A note with the previous note's pitch estimate repeats it (same lane) only if it also sounds
#: like it: its :func:`analyzer.notes.onset_similarity` is at least this far from the 10th to
#: the 90th percentile of the difficulty's similarities (how alike its different notes are, and
#: how alike its repeats are). See :func:`_repeats`.
REPEAT_SPLIT = 0.4
#: ... and one at least this alike is a repeat whatever the spread (a recording of one note
#: played again and again has no "different notes" for the split to find).
REPEAT_SURE = 0.9
#: A recording is charted only if its onset envelope has a beat (pulse clarity) or peaks that
#: stand out (contrast). Stationary noise has neither (pulse 0.04-0.1, contrast 1.5-2.1) and is
#: charted empty, like silence; songs score pulse 0.4-0.76 and contrast 3-5, a song under white
#: noise as loud as itself still 0.28 and 1.8 (charted with Expert F 0.83), sparse music without a
#: steady beat has a high contrast (see analyzer.beats.pulse_clarity / envelope_contrast).
MIN_PULSE_CLARITY = 0.2
MIN_CONTRAST = 2.5
#: ... or a sound that changes (analyzer.onsets.spectral_change, dB): stationary noise 0.3-0.6,
#: music 1.7-7. Without it a dense, distorted guitar track on its own (pulse 0.18, contrast 2.3:
#: chaos_god's guitar.ogg in benchmarks/chart_quality) was charted empty, like noise.
MIN_SPECTRAL_CHANGE_DB = 1.0
#: Separated stems that may hold the charted instrument (Demucs names); the loudest one is
#: charted (:func:`_charted_stem`): the guitar in a rock song, the piano in a piano ballad.
STEM_CHARTED = ("guitar", "piano", "other")
#: ... if it holds at least this share of the mix's power. A separator leaves an instrument the
#: song lacks near silent (bleed, ~1 %); weighing the mix's onsets by that would leave the song
#: without notes, so the mix is charted alone. In the benchmark songs the guitar holds 11-40 %.
MIN_STEM_SHARE = 0.05
#: With such a stem, an onset of the mix counts by the geometric mean of its strength and tonal
#: weight in the mix (1 - STEM_WEIGHT) and in the stem (STEM_WEIGHT): the stem tells a picked
#: note from a drum hit over a held chord, the mix keeps each onset's timing and the charter's
#: view of the whole band. The notes must then reach STEM_ONSET_THRESHOLD. Chosen on the
#: development songs with their real guitar stem, alone and with the backing leaking in at
#: gains 0.1-0.35 (a separator's bleed), by ``benchmarks.chart_quality.run --guitar-stem``:
#: Expert F 0.703 (mix alone) -> 0.737-0.784 with densities 0.89-1.10x (weights 0.5 / 0.75 / 1
#: and thresholds 0.40-0.50 measured; README there). Charting the stem alone (what this path did
#: before) scores as well on those songs but 0.56-0.73 on the benchmark songs, whose charter
#: simplifies what the guitar plays, and charts a guitar track with long rests as noise.
STEM_WEIGHT = 0.75
STEM_ONSET_THRESHOLD = 0.45


@dataclass(frozen=True, eq=False)
class ChartNotes:
    """What :func:`chart_notes` found: the beats of its tempo map (a few stretches of one tempo,
    :func:`analyzer.beats.steady_beats`), the song's tempo (BPM) and every difficulty's notes."""

    beats: np.ndarray
    bpm: float
    difficulties: dict[str, tuple[Note, ...]] = field(default_factory=dict)


def _charted_stem(stems, y):
    """The separated stem of the charted instrument, as ``(name, audio, sr)``, or None.

    Demucs' 6-source model has "guitar" and "piano" stems; its 4-source ``htdemucs`` puts guitars
    and keys in "other" (without drums, bass or vocals). Of those the loudest is charted, if it
    holds :data:`MIN_STEM_SHARE` of the mix (``y``). The HPSS fallback's "other" is no
    instrument's stem: it loses the pick attacks to "drums", and weighing the mix's onsets by it
    left Expert F where it was (dev 0.697-0.705 against 0.703; benchmarks/chart_quality/
    README.md), so with HPSS the mix alone is charted.
    """
    if stems is None or getattr(stems, "method", None) != "demucs":
        return None
    power = {name: float(np.mean(np.square(stems[name], dtype=np.float64)))
             for name in STEM_CHARTED if name in stems}
    if not power:
        return None
    name = max(power, key=power.get)
    if power[name] < MIN_STEM_SHARE * float(np.mean(np.square(y, dtype=np.float64))):
        return None
    return name, stems[name], int(stems.sr)


def chart_notes(y: np.ndarray, sr: int, *, stems=None, lanes: int = 5) -> ChartNotes:
    """Chart a recording: the notes of every difficulty, with lanes, chords and sustains.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        The mix, float.
    sr : int
        Sample rate of ``y`` (Hz).
    stems : analyzer.stems.Stems, optional
        Separated stems. With Demucs' stem of the charted instrument ("guitar", "piano" or
        "other": :func:`_charted_stem`), the mix's onsets are weighed by that stem's
        (:data:`STEM_WEIGHT`), the notes' pitches and sustains are read from it, and the notes
        name it as their ``stem``; otherwise the mix alone is charted ("mix").
    lanes : int
        Lanes of the chart, 4..7.

    Returns
    -------
    ChartNotes
        Every difficulty empty (and no beats) for silence and for stationary noise (see
        :data:`MIN_PULSE_CLARITY` and :data:`MIN_SPECTRAL_CHANGE_DB`).

    Examples
    --------
    >>> sr = 22050; y = np.zeros(12 * sr, np.float32)
    >>> for k in range(24):                    # a plucked A3 every half second
    ...     i = int((0.25 + 0.5 * k) * sr); t = np.arange(sr // 4) / sr
    ...     y[i:i + t.size] += np.sin(2 * np.pi * 220 * t) * np.exp(-8 * t)
    >>> cn = chart_notes(y, sr)
    >>> len(cn.difficulties["expert"]), round(cn.bpm)
    (24, 120)
    """
    if not MIN_LANES <= lanes <= MAX_LANES:
        raise ChartingError(f"lanes must be {MIN_LANES}..{MAX_LANES}, got {lanes}")
    # Onsets, beats and the bars' repeats are the mix's: drums keep the beat, and a separated
    # stem smears attacks. A stem of the charted instrument says which onsets are its own.
    spec = _onsets.analysis_spectrogram(y, sr)
    charted = _charted_stem(stems, y)
    brickwalled = charted is None and _onsets.crest_factor_db(y) < BRICKWALL_CREST_DB
    env = _onsets.onset_strength(spec)
    # A held tone or drone has no onsets. (Read per band, as its 3-9 dB crest factor would
    # ask, the ripple between its partials would count as onsets.)
    steady = _onsets.is_steady(env)
    if brickwalled and not steady:
        env = _onsets.onset_strength(spec, per_band=True)
    if steady or (_beats.pulse_clarity(env) < MIN_PULSE_CLARITY
                  and _onsets.envelope_contrast(env) < MIN_CONTRAST
                  and _onsets.spectral_change(spec) < MIN_SPECTRAL_CHANGE_DB):
        # Noise: its "onsets" are the envelope's random peaks (~9 notes/s otherwise).
        return ChartNotes(beats=np.zeros(0), bpm=_beats.estimate_tempo(env),
                          difficulties={name: () for name in DIFFICULTIES})
    # Candidates down to weak onsets: what the repeats of a bar hold (REPEAT_CANDIDATE_STRENGTH).
    onsets = _onsets.detect_onsets(env, threshold=REPEAT_CANDIDATE_STRENGTH)
    tempo = _beats.track_beats(env)
    # Off the 8th-note grid an onset must be stronger to be charted (charters favour the metre),
    # and one that brings no new partials (a drum hit over a held chord) too.
    feel = _beats.triplet_feel(onsets.times, onsets.strength, tempo.beats)
    metre = _metrical_weights(onsets.times, tempo.beats, feel)
    frames = np.round(onsets.times * _onsets.FRAME_RATE).astype(np.int64)
    share = _notes.new_partials(spec, frames)
    strength, tonal = onsets.strength, _tonal_factor(share)
    note_spec, stem = spec, "mix"
    threshold = BRICKWALL_ONSET_THRESHOLD if brickwalled else ONSET_THRESHOLD
    if charted is None:
        tonal = tonal * _held_over_factor(spec, onsets.times)
        # Where the pitched part rests (a drum intro, a break) there is nothing to chart.
        tonal = np.where(_notes.pitched_rests(spec)[frames], 0.0, tonal)
    else:  # the stem tells a drum hit over a held chord better (ninth and tenth rounds)
        stem, audio, audio_sr = charted
        note_spec = _onsets.analysis_spectrogram(audio, audio_sr)
        strength, tonal = _weighed_by_stem(note_spec, onsets.times, frames, strength, tonal)
        threshold = STEM_ONSET_THRESHOLD
    score = strength * metre * tonal
    # ... and one that the bars repeating this one do not have (their score ranks as before).
    on_chart = _notes.repeat_consensus(spec, onsets.times, score, tempo.beats) >= threshold
    times, strength, metre, share, tonal, score = (
        onsets.times[on_chart], strength[on_chart], metre[on_chart], share[on_chart],
        tonal[on_chart], score[on_chart])
    # Pitch, rings and sound are the charted instrument's (the stem's where there is one).
    pitches, _ = _notes.onset_pitches(note_spec, times)
    held = _held_until(times, pitches, _notes.ring_durations(note_spec, times, pitches))
    # Notes go on the beat grid where the music is on one: a detected onset is a frame or so off,
    # a tracked beat too. The grid is fitted to the onsets; the beats move onto it with them.
    grid = _beats.snap_to_grid(times, tempo.beats)
    tempo = _beats.TempoMap(tempo.bpm, grid.beats)
    # The chart is published on a charter's tempo map (a few stretches of one tempo), its notes
    # on that map's 16ths and triplets where they are within ON_GRID_S of one. The rules below
    # read the tracked beats: charting on a steadier grid chose no better notes (README there).
    published = _beats.steady_beats(grid.beats)
    times = _beats.on_grid(grid.times, published, tolerance_s=ON_GRID_S)
    sound = _notes.onset_spectra(note_spec, times)    # what each note's lane is judged on
    beat_s = _beat_lengths(times, tempo.beats)          # each note's: the tempo can change
    expert = _onsets.strongest_apart(times, score, min_gap_s=RULES["expert"].gap_s(beat_s))
    # The easier levels are thinned on the beat a charter counts, not necessarily the tracked one.
    counted = counting_beats(tempo, times, share, n_expert=expert.size)
    counted_s = _beat_lengths(times, counted)
    if _counted_at_half_tempo(tempo, n_expert=expert.size):
        expert = _onsets.strongest_apart(times, score,
                                         min_gap_s=RULES["expert"].gap_s(counted_s))
    counted_feel = _beats.triplet_feel(times, strength, counted)
    in_triplets = (counted_feel[_beats.beat_phase(times, counted).beat] if counted.size > 1
                   else False)
    thin_score = (strength * tonal
                  * _metrical_weights(times, counted, counted_feel) ** THIN_METRE_POWER)
    difficulties = {}
    above = expert
    for name in reversed(DIFFICULTIES):      # Expert first: each level thins the one above
        rule = RULES[name]
        keep = expert if name == "expert" else _strongest(_onsets.strongest_apart(
            times, thin_score, min_gap_s=rule.gap_s(counted_s, in_triplets)), thin_score,
            int(rule.max_share * above.size))
        above = keep
        n_lanes = max(3, lanes - rule.lanes_drop)
        # Lanes per difficulty: the melody's moves are between the notes this level keeps.
        repeats = _repeats(sound[:, keep], pitches[keep])
        lane = assign_lanes(times[keep], _contour(sound[:, keep], repeats), lanes=n_lanes,
                            fast_s=FAST_BEATS * beat_s[keep], repeats=repeats)
        chord = (strength[keep] >= rule.chord_strength) & (metre[keep] >= METRE_WEIGHTS[1])
        difficulties[name] = _notes_of(times[keep], lane, pitches[keep], held[keep], chord,
                                       n_lanes=n_lanes,
                                       sustain_s=rule.sustain_beats * beat_s[keep],
                                       release_s=0.25 * beat_s[keep], stem=stem)
    return ChartNotes(beats=published, bpm=tempo.bpm,
                      difficulties={name: difficulties[name] for name in DIFFICULTIES})


def _strongest(keep: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` of the indices ``keep`` with the highest ``score`` (ascending; all of them when
    there are no more than ``n``)."""
    if keep.size <= n:
        return keep
    return np.sort(keep[np.argsort(-score[keep], kind="stable")[:n]])


def counting_beats(tempo: _beats.TempoMap, times: np.ndarray, new_partials: np.ndarray, *,
                   n_expert: int) -> np.ndarray:
    """The beats a charter counts, which Hard, Medium and Easy are thinned on (times, s).

    A beat tracker can settle half a beat off (on the "and", where a metal band's drums and
    guitars accent) and at twice the tempo a charter counts (its range is 100-220 BPM). Charters
    put most notes of the easier levels on the beat (57-98 % of the human Medium notes, 71-98 %
    on 5 of 6 songs), and a picked note on the beat brings new partials (a chord change) more
    often than the one between beats. So:

    - tempo octave: a song whose Expert chart has fewer than :data:`HALF_TIME_NOTES_PER_BEAT`
      notes per tracked beat is counted at half the tempo, unless that is under
      :data:`MIN_COUNTING_BPM`;
    - phase: of the tracked beats and the 8ths between them (of every other tracked beat at half
      tempo), the ones where the charted onsets bring more new partials within
      :data:`COUNTING_WINDOW_BEATS` beats (:func:`analyzer.beats.alternate_pulses`).

    Measured on the development songs of ``benchmarks/chart_quality`` against their MIDI tempo
    maps: the beats counted sit on the human beat for 86 % of "Escape from chaosland" (tracked
    46 %), 67 % of "War of freedom" (51 %), 34 % of "Metal madness" (18 %: its audio accents
    the "and"), and "Feelings" (95 BPM, tracked 190) is counted at 95. Thinning on them with
    the metrical weight squared (:data:`THIN_METRE_POWER`): mean F ±50 ms Hard 0.631 -> 0.647,
    Medium 0.377 -> 0.417 (Expert is not thinned and unchanged).

    Examples
    --------
    >>> tm = _beats.TempoMap(120.0, np.arange(64) * 0.5)   # notes on the "and" of every beat
    >>> counting_beats(tm, np.arange(64) * 0.5 + 0.25, np.full(64, 0.5), n_expert=128)[:3]
    array([0.25, 0.75, 1.25])
    """
    beats = np.asarray(tempo.beats, dtype=np.float64)
    if beats.size < 2:
        return beats
    if _counted_at_half_tempo(tempo, n_expert=n_expert):
        pulses = beats
    else:
        # The 8ths: each tracked beat, then the midpoint to the next (the last period repeats).
        periods = np.diff(beats, append=2 * beats[-1] - beats[-2])
        pulses = np.column_stack([beats, beats + periods / 2]).ravel()
    return _beats.alternate_pulses(pulses, times, new_partials, window=COUNTING_WINDOW_BEATS)


def _counted_at_half_tempo(tempo: _beats.TempoMap, *, n_expert: int) -> bool:
    """Whether a charter counts half the tracked tempo (:func:`counting_beats`): fewer than
    :data:`HALF_TIME_NOTES_PER_BEAT` Expert notes a tracked beat, the half no slower than
    :data:`MIN_COUNTING_BPM`."""
    return (len(tempo.beats) >= 2 and n_expert < HALF_TIME_NOTES_PER_BEAT * len(tempo.beats)
            and tempo.bpm / 2 >= MIN_COUNTING_BPM)


def _beat_lengths(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """The length (s) of the beat each of ``times`` falls in (the nearest beat's outside): the
    median of the five beats around it, so that where the counted beat moves to the "and"
    (:func:`counting_beats`) and one beat is half as long, the tempo is not taken to double."""
    if beats.size < 2:
        return np.full(times.shape, 60.0 / 120.0)
    lengths = np.diff(beats)
    padded = np.pad(lengths, 2, mode="edge")
    typical = np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)
    return typical[_beats.beat_phase(times, beats).beat]


def _weighed_by_stem(stem_spec, times, frames, strength, tonal):
    """The mix's onset strengths and tonal weights at ``times`` (and their ``frames``), weighed
    with what the stem (:data:`STEM_CHARTED`) finds there: geometric means, the stem's weight
    :data:`STEM_WEIGHT`. An onset the stem does not hear at all is not charted."""
    mine = _onsets.envelope_near(_onsets.onset_strength(stem_spec), times)
    own_tonal = _tonal_factor(_notes.new_partials(stem_spec, frames))
    return (strength ** (1.0 - STEM_WEIGHT) * mine ** STEM_WEIGHT,
            tonal ** (1.0 - STEM_WEIGHT) * own_tonal ** STEM_WEIGHT)


def _held_over_factor(spec, times):
    """:data:`HELD_OVER_FACTOR` for the onsets that sound most like the onset before them (the
    top :data:`HELD_OVER_SIMILAR` of the song's, :func:`analyzer.notes.onset_similarity`) while
    their own partials hardly rise (:data:`HELD_OVER_RISE`, :func:`analyzer.notes.partial_rise`):
    a chord held while the drums hit over it. 1 for the others, and for a chord picked again
    (its partials dip and rise)."""
    factor = np.ones(times.shape)
    if times.size < 2:
        return factor
    spectra = _notes.onset_spectra(spec, times)
    similar = _notes.onset_similarity(spectra)
    rise = _notes.partial_rise(spec, times, spectra)
    held = ((similar >= np.quantile(similar, 1.0 - HELD_OVER_SIMILAR))
            & (rise <= HELD_OVER_RISE))
    factor[held] = HELD_OVER_FACTOR
    return factor


def _tonal_factor(new_partials):
    """How an onset's share of new partials (:func:`analyzer.notes.new_partials`) scales its
    strength: 1 at :data:`TYPICAL_NEW_PARTIALS`, 0.5 with none, 1.5 when all are new."""
    return (NEW_PARTIALS_FLOOR + new_partials) / (NEW_PARTIALS_FLOOR + TYPICAL_NEW_PARTIALS)


def _metrical_weights(times: np.ndarray, beats: np.ndarray,
                      feel: np.ndarray | None = None) -> np.ndarray:
    """:data:`METRE_WEIGHTS` of each onset from its position between the surrounding beats; in
    the beats ``feel`` flags as triplet time (:func:`analyzer.beats.triplet_feel`) the thirds of
    the beat take the 8th's weight."""
    weights = np.full(times.shape, METRE_WEIGHTS[2])
    if beats.size < 2 or times.size == 0:
        return weights
    at = _beats.beat_phase(times, beats)
    frac = at.phase - np.round(at.phase)             # distance to the nearest beat, in beats
    half = (at.phase * 2 - np.round(at.phase * 2)) / 2    # ... to the nearest 8th, in beats
    if feel is not None:
        third = (at.phase * 3 - np.round(at.phase * 3)) / 3
        half = np.where(feel[at.beat], third, half)
    tol = GRID_TOLERANCE_S / at.period
    weights[np.abs(half) <= tol] = METRE_WEIGHTS[1]
    weights[np.abs(frac) <= tol] = METRE_WEIGHTS[0]
    return weights


def assign_lanes(times: np.ndarray, pitches: np.ndarray, *, lanes: int = 5,
                 context_s: float = 4.0, fast_s: float | np.ndarray = 0.25,
                 repeats: np.ndarray | None = None) -> np.ndarray:
    """Lanes that follow the melody.

    ``pitches`` are MIDI numbers or any contour in semitones (only differences and ranges are
    read). A note's lane is where its pitch sits in the range of pitches played within
    ``±context_s`` (2nd..98th percentile), spread as a charter spreads notes
    (:data:`LANE_SHARES`: the top lane is for the highest notes), so a riff uses the lanes
    whatever its register. Then, note to note: a repeat stays in the same lane, a higher pitch
    moves right and a lower one left (one lane at least, unless at the edge or more than one
    lane past where the pitch sits, where the note stays), and notes closer than ``fast_s``
    (seconds; one, or each note's) move at most two lanes (a hand can follow that).

    ``repeats`` (bool, one per note) says which notes repeat the one before; without it, those
    whose pitch is unchanged. A note that is no repeat although its pitch is unchanged (no
    direction is known) moves one lane the way the lanes last moved, turning at the lowest lane
    and below the top one: lanes that moved back and forth instead turned a run of such notes
    into a trill (on the 8 songs of ``benchmarks/chart_quality``, Expert, a move straight back
    after a move on 14-21 % of the notes, against 9-16 % in the human charts; 9-14 % this way).

    Parameters
    ----------
    times : np.ndarray [shape=(n,)]
        Note times, seconds, ascending.
    pitches : np.ndarray [shape=(n,)]
        MIDI numbers, or any contour in semitones.
    lanes : int
        Lanes of the chart (4..7).
    context_s : float
        Half the window, seconds, whose range of pitches the lanes span.
    fast_s : float or np.ndarray [shape=(n,)]
        A note closer than this (seconds) to the one before moves at most two lanes.
    repeats : np.ndarray [shape=(n,), dtype=bool], optional
        Which notes repeat the one before.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=int] lanes in 0..lanes-1.

    Examples
    --------
    >>> assign_lanes(np.arange(6) * 0.5, np.array([40, 45, 45, 52, 47, 40]), lanes=5)
    array([0, 1, 1, 4, 2, 0])
    >>> assign_lanes(np.arange(6) * 0.5, np.array([40, 45, 45, 52, 47, 40]), lanes=5,
    ...              repeats=np.array([False, False, False, False, False, False]))
    array([0, 1, 2, 4, 2, 0])
    """
    times = np.asarray(times, dtype=np.float64)
    pitches = np.asarray(pitches, dtype=np.float64)
    if times.shape != pitches.shape:
        raise ChartingError("times and pitches must have the same shape")
    fast = np.broadcast_to(np.asarray(fast_s, dtype=np.float64), times.shape)
    n = times.size
    out = np.zeros(n, np.int64)
    if n == 0:
        return out
    if repeats is None:
        repeats = np.r_[False, pitches[1:] == pitches[:-1]]
    elif np.shape(repeats) != times.shape:
        raise ChartingError("repeats must have one value per note")
    edges = _lane_edges(lanes)
    middle = (lanes - 1) / 2
    last_step = 0
    lo_idx = np.searchsorted(times, times - context_s)
    hi_idx = np.searchsorted(times, times + context_s, side="right")
    for i in range(n):
        window = np.sort(pitches[lo_idx[i]:hi_idx[i]])
        lo = window[int(0.02 * (window.size - 1))]
        hi = window[int(np.ceil(0.98 * (window.size - 1)))]
        place = 0.5 if hi <= lo else (pitches[i] - lo) / (hi - lo)
        lane = sits = int(np.searchsorted(edges, place, side="right"))
        if i:
            prev, step = out[i - 1], np.sign(pitches[i] - pitches[i - 1])
            if repeats[i]:
                lane = prev
            else:
                top, bottom = min(sits + 1, lanes - 1), max(sits - 1, 0)
                if step == 0:
                    # No direction from the pitch: carry on the way the lanes last moved (a run,
                    # not a trill between two lanes), turning at its ends.
                    step = last_step or (1 if prev < middle else -1)
                    if (step > 0 and prev >= min(top, lanes - 2)) or (step < 0 and prev <= bottom):
                        step = -step
                # At least one lane the pitch's way, but never two past where it sits.
                if step > 0 and lane <= prev:
                    lane = prev + 1 if prev < top else prev
                elif step < 0 and lane >= prev:
                    lane = prev - 1 if prev > bottom else prev
            if times[i] - times[i - 1] < fast[i]:
                lane = int(np.clip(lane, prev - 2, prev + 2))
            if lane != prev:
                last_step = int(np.sign(lane - prev))
        out[i] = lane
    return out


def _lane_edges(lanes: int) -> np.ndarray:
    """Where in the range of pitches (0 lowest, 1 highest) each lane after the first begins, so
    that pitches spread evenly over the range fill the lanes as :data:`LANE_SHARES` says."""
    cumulative = np.concatenate([[0.0], np.cumsum(LANE_SHARES)]) / np.sum(LANE_SHARES)
    return np.interp(np.arange(1, lanes) / lanes, np.linspace(0, 1, len(LANE_SHARES) + 1),
                     cumulative)


def _repeats(sound: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Which notes repeat the one before (bool, shape (n,)): the same pitch estimate, and a
    sound (``sound``: :func:`analyzer.notes.onset_spectra` of the notes) as alike as
    :data:`REPEAT_SPLIT` says.

    On a mix the dominant pitch rarely changes where the guitar's notes do (the bass and a second
    guitar win the harmonic sum), so the pitch alone keeps lanes still where a charter moves them.
    A fixed similarity threshold does not carry over between recordings (a clean recording's
    different notes are as alike as a dense mix's repeats), so the threshold sits between this
    difficulty's 10th and 90th percentile of similarity.

    Measured with ``benchmarks/chart_quality`` on its development songs, lanes still following
    the pitch estimates (lane motion: the share of consecutive matched notes whose lane moves the
    way the human's does, left, same or right; the same with the moves shuffled in brackets):
    Expert 0.35 (0.36) with the pitch alone, 0.41 (0.34) with the sound; Hard 0.41 (0.44) ->
    0.40 (0.37). Split 0.2 / 0.3 / 0.5 gave Expert
    0.37 / 0.40 / 0.39, Hard 0.41 / 0.41 / 0.36; a cost for the gap to the previous note (fast
    notes repeat more) changed nothing beyond noise.
    """
    similarity = _notes.onset_similarity(sound)
    if similarity.size < 2:
        return np.zeros(similarity.size, bool)
    unlike, alike = np.percentile(similarity[1:], [10, 90])
    threshold = min(unlike + REPEAT_SPLIT * (alike - unlike), REPEAT_SURE)
    return (np.diff(pitches, prepend=-1) == 0) & (similarity >= threshold)


def _contour(sound: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    """The melody's contour (semitones from the first note) that the lanes follow: the
    intervals by which each note's partials moved from the previous note's
    (:func:`analyzer.notes.onset_intervals`), none at a repeat.

    On a mix the dominant pitch sticks to the bass or a second guitar, so a contour of pitch
    estimates gives most moves no direction; the shift of the partials gives one. Measured with
    ``benchmarks/chart_quality`` on its development songs at the human Expert onsets (lanes
    moving the human's way, chance in brackets): 0.429 (0.36) with the pitch estimates, 0.476
    (0.37) with this contour.
    """
    return np.cumsum(np.where(repeats, 0.0, _notes.onset_intervals(sound)))


def _held_until(times: np.ndarray, pitches: np.ndarray, rings: np.ndarray) -> np.ndarray:
    """When each note's sound ends (seconds): its own ring, carried on through the following
    notes while they repeat its pitch without a gap (a chugged chord is one held chord to a
    difficulty that drops the repeats)."""
    ends = times + rings
    held = ends.copy()
    joined = (pitches[1:] == pitches[:-1]) & (ends[:-1] >= times[1:] - 2.0 / _onsets.FRAME_RATE)
    for i in range(times.size - 2, -1, -1):
        if joined[i]:
            held[i] = held[i + 1]
    return held


def _notes_of(times, lanes, pitches, held, chord, *, n_lanes, sustain_s, release_s,
              stem) -> tuple[Note, ...]:
    """Note records: a sustain for a note whose sound is held at least ``sustain_s`` (ending
    ``release_s`` before the next note, so a player can let go; both one per note), a power
    chord (root and fifth in adjacent lanes) where ``chord``."""
    out: list[Note] = []
    nxt = np.append(times[1:], np.inf)
    for i, t in enumerate(times):
        dur = min(held[i] - t, nxt[i] - t - release_s[i])
        dur = float(dur) if held[i] - t >= sustain_s[i] and dur >= sustain_s[i] / 2 else 0.0
        lane, pitch = int(lanes[i]), int(pitches[i])
        if chord[i]:
            # A power chord: root and fifth in adjacent lanes (always reachable), the fifth right.
            root = min(lane, n_lanes - 2)
            out.append(Note(float(t), dur, root, pitch, stem))
            out.append(Note(float(t), dur, root + 1, pitch + 7, stem))
        else:
            out.append(Note(float(t), dur, lane, pitch, stem))
    out.sort(key=lambda note: (note.t, note.lane))
    return tuple(out)
