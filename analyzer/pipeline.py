"""One audio file in, one chart out: the analyzer's stages in order.

API
---
- :func:`analyze_file` — decode a file, check it, and :func:`analyze_audio` it, with its tags.
- :func:`analyze` — the same, also giving the separated stems to keep (:class:`Analysis`).
- :func:`analyze_audio` — samples → :class:`~chart_store.chart.Chart`.
- :data:`ANALYSIS_SR`, :data:`MIN_DURATION_S`, :data:`STAGES`.

Stages: decode (mono, :data:`ANALYSIS_SR`) → fingerprint + sync reference (the same functions the
live path uses) → stems (:func:`analyzer.stems.separate`) → notes, beats, lanes and difficulties
(:func:`analyzer.charting.chart_notes`) → per-note masks (:func:`analyzer.masks.attach_masks`).
Without Demucs the stems are HPSS's: charting reads the mix, and the masks of pitched notes come
from the harmonic stem (see :func:`analyzer.stems.available_method`).

One sample rate serves every stage: basic-pitch's 22.05 kHz, which also halves the cost of the
spectral stages; masks then reach 11 kHz, where nearly all of an instrument's energy lies.
Demucs, though, separates the file at its own rate and channels: the stems the notes come from are
kept on this machine (:class:`chart_store.stems.StemStore`, by :mod:`analyzer.batch`) for stem
cancellation, which needs them at playback quality; the stages above get their 22.05 kHz mono
downmix.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analyzer import decode
from analyzer.formats.common import decode_text
from chart_store.chart import DEFAULT_LANES, Chart, ChartMeta

__all__ = ["analyze_file", "analyze", "analyze_audio", "Analysis", "NothingToChart",
           "ANALYSIS_SR", "MIN_DURATION_S", "STAGES"]

#: Sample rate of every analysis stage (Hz).
ANALYSIS_SR = 22050
#: Shortest file :func:`analyze_file` accepts (seconds): too little music for a chart.
MIN_DURATION_S = 10.0
#: Names passed to the ``progress`` callback, in order (with Demucs, "stems" before "fingerprint").
STAGES = ("decode", "fingerprint", "stems", "notes", "masks")


class NothingToChart(ValueError):
    """Audio that decodes fine but has nothing to play along to: no steady beat and no onsets
    that stand out (noise, hum, crackle-free ambience). An empty chart would only look broken."""


@dataclass(frozen=True, eq=False)
class Analysis:
    """A chart and the separated stems its notes come from, to keep locally.

    ``stems`` maps each stem name some note of the chart names (Demucs' "other") to its audio at
    ``sr`` -- the file's own rate and channels, ``(channels, n)``, chart time 0 at sample 0. Empty
    when the notes come from the mix (HPSS, no separation): there is nothing to cancel then.
    """

    chart: Chart
    stems: dict[str, np.ndarray] = field(default_factory=dict)
    sr: int = ANALYSIS_SR


def analyze_file(path, *, stems: str = "auto", lanes: int = DEFAULT_LANES,
                 progress: Callable[[str], None] | None = None,
                 min_duration_s: float = MIN_DURATION_S) -> Chart:
    """Analyze an audio file into a chart.

    Parameters
    ----------
    path : str or Path
        Any file :func:`analyzer.decode.load` reads.
    stems : {"auto", "demucs", "hpss", "none"}
        Separation method (see :func:`analyzer.stems.separate`).
    lanes : int
        Lanes of the chart (4..7).
    progress : callable, optional
        Called with each stage name of :data:`STAGES` as it starts.
    min_duration_s : float
        Shorter files are refused.

    Returns
    -------
    Chart
        Title, artist and album from the file's tags (the file name when it has no title),
        source "analyzed".

    Raises
    ------
    analyzer.decode.DecodeError
        The file is unreadable, not audio, empty, silent, too short or too long, or has nothing
        to chart (:class:`NothingToChart`'s reason, naming the file).

    Examples
    --------
    >>> chart = analyze_file("song.flac")  # doctest: +SKIP
    >>> chart.meta.title, len(chart.track("expert"))  # doctest: +SKIP
    ('Song', 812)
    """
    return analyze(path, stems=stems, lanes=lanes, progress=progress,
                   min_duration_s=min_duration_s).chart


def analyze(path, *, stems: str = "auto", lanes: int = DEFAULT_LANES,
            progress: Callable[[str], None] | None = None,
            min_duration_s: float = MIN_DURATION_S) -> Analysis:
    """:func:`analyze_file`, also returning the separated stems the notes come from.

    With Demucs (``stems="demucs"``, or "auto" where its weights are cached) the file is decoded
    at its own rate and channels and separated there, so the stems are fit for playback (stem
    cancellation); the analysis stages get their 22.05 kHz mono downmix. Other methods decode
    straight to 22.05 kHz mono, as :func:`analyze_file` always did.

    Parameters
    ----------
    path : str or Path
        An audio file (anything :func:`analyzer.decode.load` reads).
    stems : {"auto", "demucs", "hpss", "none"}
        Source separation before transcription (:func:`analyzer.stems.available_method` for
        "auto").
    lanes : int
        Lanes of the chart (4..7).
    progress : callable, optional
        Called with each stage's name ("decode", "stems", "notes"...) as it starts.
    min_duration_s : float
        Shorter audio is refused (:class:`analyzer.decode.DecodeError`).

    Returns
    -------
    Analysis
        The chart, and the stems its notes come from at ``sr`` (empty without separation).

    Examples
    --------
    >>> result = analyze("song.flac", stems="demucs")  # doctest: +SKIP
    >>> sorted(result.stems), result.sr  # doctest: +SKIP
    (['other'], 44100)
    """
    from analyzer.stems import Stems, available_method, separate

    path = Path(path)
    if stems == "auto":
        stems = available_method()
    _report(progress, "decode")
    full = None
    if stems == "demucs":
        full, full_sr = decode.load(path, mono=False)
        y = _analysis_rate(full.mean(axis=0), full_sr)
    else:
        y, _ = decode.load(path, sr=ANALYSIS_SR, mono=True)
    decode.check_audio(y, ANALYSIS_SR, path=path, min_duration_s=min_duration_s)
    tags = decode.probe(path).tags
    # A file name need not be UTF-8 (a disk from another system): read it as a song file's text.
    meta = ChartMeta(title=tags.get("title") or decode_text(os.fsencode(path.stem)),
                     artist=tags.get("artist", ""),
                     album=tags.get("album", ""), duration_s=y.shape[-1] / ANALYSIS_SR)
    try:
        if full is None:
            chart = analyze_audio(y, ANALYSIS_SR, meta=meta, stems=stems, lanes=lanes,
                                  progress=progress)
            return Analysis(chart)
        _report(progress, "stems")  # here before "fingerprint": the separated stems come first
        kept = separate(full, full_sr, method="demucs")
        del full
        analysis_stems = Stems({name: _analysis_rate(a.reshape(-1, a.shape[-1]).mean(axis=0),
                                                     full_sr)
                                for name, a in kept.arrays.items()}, ANALYSIS_SR, kept.method)
        chart = analyze_audio(y, ANALYSIS_SR, meta=meta, stems=analysis_stems, lanes=lanes,
                              progress=progress)
    except NothingToChart as error:
        raise decode.DecodeError(path, str(error)) from None
    named = {note.stem for track in chart.difficulties.values() for note in track.notes}
    return Analysis(chart, {name: a for name, a in kept.arrays.items() if name in named}, full_sr)


def _analysis_rate(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono ``y`` at :data:`ANALYSIS_SR` (soxr, as :func:`analyzer.decode.load` resamples)."""
    if sr == ANALYSIS_SR:
        return np.ascontiguousarray(y, dtype=np.float32)
    import soxr
    return soxr.resample(y, sr, ANALYSIS_SR).astype(np.float32)


def analyze_audio(y: np.ndarray, sr: int, *, meta: ChartMeta, stems="auto",
                  lanes: int = DEFAULT_LANES,
                  progress: Callable[[str], None] | None = None) -> Chart:
    """Analyze samples into a chart (every stage after decoding).

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        The recording; chart time 0 is sample 0.
    sr : int
        Sample rate (Hz); :data:`ANALYSIS_SR` is the cheapest.
    meta : ChartMeta
        Descriptive data; ``duration_s`` and ``tool_version`` are set here.
    stems : {"auto", "demucs", "hpss", "none"} or analyzer.stems.Stems
        Separation method, as in :func:`analyze_file`, or stems already separated from ``y``
        (same rate and length; the "stems" stage is then not reported).
    lanes, progress
        As in :func:`analyze_file`.

    Raises
    ------
    NothingToChart
        No difficulty has a note: the audio has no beat or onsets to play along to.

    Examples
    --------
    >>> sr = 22050
    >>> t = np.arange(12 * sr) / sr
    >>> y = (np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.1)).astype(np.float32)
    >>> chart = analyze_audio(y, sr, meta=ChartMeta(title="beeps"))  # doctest: +SKIP
    """
    from analyzer.charting import chart_notes
    from analyzer.features import sync_reference
    from analyzer.masks import attach_masks
    from analyzer.stems import Stems, separate
    from chart_store import __version__
    from chart_store.fingerprint import fingerprint

    y = np.asarray(y, np.float32)
    _report(progress, "fingerprint")
    fp = fingerprint(y, sr)
    sync = sync_reference(y, sr)
    if isinstance(stems, Stems):
        separated = stems
    else:
        _report(progress, "stems")
        separated = separate(y, sr, method=stems)
    stem_audio = separated if len(separated) else None
    _report(progress, "notes")
    notes = chart_notes(y, sr, stems=stem_audio, lanes=lanes)
    if not any(notes.difficulties.values()):
        raise NothingToChart("no notes found: no steady beat and no onsets that stand out "
                             "(noise, a held tone or ambience?)")
    _report(progress, "masks")
    bank, difficulties = attach_masks(notes.difficulties, y=y, sr=sr, stems=stem_audio)
    meta = ChartMeta(title=meta.title, artist=meta.artist, album=meta.album,
                     duration_s=y.shape[-1] / sr, source=meta.source,
                     tool_version=f"loopjam {__version__} analyze stems={separated.method}")
    return Chart(meta=meta, difficulties=difficulties, lanes=lanes, beats=notes.beats,
                 fingerprint=fp, sync=sync, masks=bank)


def _report(progress, stage: str) -> None:
    if progress is not None:
        progress(stage)

