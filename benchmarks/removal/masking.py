"""Note removal on real songs: how much of a missed note goes, how much of the rest stays.

Run::

    nice -n 10 .venv/bin/python -m benchmarks.removal.masking [--songs DIR|dev] [--out DIR]
        [--quick] [--no-generated | --generated-only] [--guitar-stem BLEED] [--only SONG...]

For each song folder of the benchmark set (:func:`benchmarks.data.songs_dir`; ``--songs dev`` for
the development set constants are tuned on, or any folder of Frets on Fire / Clone Hero / YARG
songs with a stem of the charted instrument, :func:`benchmarks.data.song_parts`; here song.ogg
backing, guitar.ogg stem, notes.mid; mix = song.ogg + guitar.ogg), the stream is the mix at
-6 dB re-encoded as Ogg Vorbis 160 kbps by ffmpeg (as a streaming service serves it). Charts:

- **imported**: the human Expert chart (:func:`benchmarks.data.song_parts`),
  masks from guitar.ogg (:func:`analyzer.masks.attach_masks`); removed by stem cancellation
  (guitar.ogg given to the remover) or by masks only;
- **generated**: :func:`analyzer.pipeline.analyze_audio` of the mix alone (its own notes, stems
  and masks), removed by masks. With ``--guitar-stem BLEED`` it is analyzed as the Demucs path
  is, with a stand-in for a separated guitar stem (guitar.ogg plus song.ogg at gain BLEED), and
  also removed by cancelling against that stem (``"cancel"``), as ``loopjam play`` does with
  the stem Demucs left on the machine.

The player misses everything (``miss-all``), either declared ahead (a bot) or known only when
the judgement window closes (90 ms after the note, as heard, i.e. ``latency`` later in stream
time) as for a human player. Over the union of the missed notes' spans, with y the
latency-aligned output, g the guitar stem at the stream's gain and delay (least squares), and
t = stream - g::

    removal     = 10 log10(Σg² / Σ(y-t)²)
    backing SDR = 10 log10(Σt² / Σ(y-t)²)

The ``masks_oracle`` run gives the ceiling of masking: the best real gain per bin and frame of
the remover's own STFT, from the true stem (the phase-sensitive mask), shared by the channels as
a chart's masks are, and as ``masks_oracle_per_channel`` one gain per channel (the ceiling of
masks stored per channel), both removed by overlap-add and scored like the real runs.
``autoplay`` (nothing missed) reports the SNR of the output against the delayed input. With
``--out``, the first song also gets before/after WAV clips of a missed passage, a spectrogram
PNG and three listening checks over the whole song, each also given for the untouched stream:
clicks (1 ms frames where the error's >4 kHz energy jumps 6 dB above its local median while
neither the guitar nor the backing has such a jump there), pumping (the backing's apparent gain
over 50 ms frames, dB: median and 10-90 % spread) and musical noise (isolated time-frequency
blips in the error above the backing, per second).
Prints one JSON object per song and one summary line.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analyzer.masks import attach_masks, note_spans
from benchmarks.data import dev_songs_dir, song_folders, song_parts, songs_dir
from companion.removal import NoteRemover

JUDGEMENT_S = 0.090
BLOCK = 512


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    return y, sr  # (n, channels)


def _vorbis_stream(mix: np.ndarray, sr: int, workdir: Path) -> np.ndarray:
    """The mix at -6 dB through ffmpeg's libvorbis at 160 kbps and back, (n, channels)."""
    import soundfile as sf
    src, enc = workdir / "mix.wav", workdir / "stream.ogg"
    sf.write(src, 0.5 * mix, sr, subtype="FLOAT")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "libvorbis",
                    "-b:a", "160k", str(enc)], check=True)
    y, _ = _read(enc)
    n = mix.shape[0]
    return np.pad(y, ((0, max(0, n - y.shape[0])), (0, 0)))[:n]


def _align(stream: np.ndarray, ref: np.ndarray, sr: int) -> tuple[int, float]:
    """Delay (samples) and gain of ``ref`` in ``stream`` (cross-correlation, then least squares)."""
    a, b = stream[:, 0][sr * 20:sr * 50], ref[:, 0][sr * 20:sr * 50]
    n = 1 << int(np.ceil(np.log2(2 * a.size)))
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    lags = np.r_[0:200, n - 200:n]
    lag = int(lags[np.argmax(corr[lags])])
    lag = lag if lag < n // 2 else lag - n
    shifted = np.roll(ref, lag, axis=0)
    gain = float(np.sum(stream * shifted) / np.sum(shifted * shifted))
    return lag, gain


def _run(stream: np.ndarray, sr: int, notes, bank, *, stems=None, misses="ahead",
         sync_error_s: float = 0.0) -> tuple[np.ndarray, int, float]:
    """Feed the stream block by block as live; returns (aligned output, latency, cpu seconds)."""
    rm = NoteRemover(sr=sr, channels=stream.shape[1], notes=notes, masks=bank, stems=stems)
    rm.set_sync(0.0, sync_error_s)
    order = np.argsort([n.t for n in notes], kind="stable")
    if misses == "ahead":
        for i in order:
            rm.miss(int(i))
        due = []
    else:
        # Known when the player hears the window close: the note time + window, plus the
        # remover's latency (the heard stream runs that much behind the input).
        known = np.array([notes[i].t for i in order]) + JUDGEMENT_S + rm.latency_samples / sr
        due = list(zip((known * sr).astype(int), order)) if misses == "late" else []
    out = np.empty_like(stream)
    k = 0
    cpu = time.process_time()
    for pos in range(0, stream.shape[0], BLOCK):
        while k < len(due) and due[k][0] <= pos:
            rm.miss(int(due[k][1]))
            k += 1
        out[pos:pos + BLOCK] = rm.process(stream[pos:pos + BLOCK])
    cpu = time.process_time() - cpu
    lat = rm.latency_samples
    return out[lat:], lat, cpu


def _span_mask(notes, n: int, sr: int) -> np.ndarray:
    starts, stops = note_spans(notes)
    mask = np.zeros(n + 1, np.int32)
    np.add.at(mask, np.clip((starts * sr).astype(int), 0, n), 1)
    np.add.at(mask, np.clip((stops * sr).astype(int), 0, n), -1)
    return np.cumsum(mask)[:n] > 0


def _scores(y, t, g, span) -> dict:
    e = np.sum((y[span] - t[span]) ** 2)
    return {"removal_db": round(float(10 * np.log10(np.sum(g[span] ** 2) / e)), 2),
            "backing_sdr_db": round(float(10 * np.log10(np.sum(t[span] ** 2) / e)), 2)}


def _clicks(y, t, g, sr) -> int:
    """Clicks the remover added: 1 ms frames where the error y - t, high-passed at 4 kHz, jumps
    6 dB above its own median over the surrounding 40 ms (and above -70 dB per sample) while
    neither the guitar g nor the backing t has such a jump within 1 ms (a pick attack left over,
    or a drum hit partly masked, is the music's own transient, not a click).
    Too abrupt gain changes, buffer seams and limiter steps show up this way; the guitar left
    over, damage to the backing and musical noise are smooth at that scale."""
    from scipy.ndimage import maximum_filter1d, median_filter
    from scipy.signal import butter, sosfilt
    sos = butter(4, 4000, "highpass", fs=sr, output="sos")
    hop = int(0.001 * sr)

    def jumps(x):
        hp = sosfilt(sos, x.mean(axis=1))
        frames = hp[:hp.size // hop * hop].reshape(-1, hop)
        energy = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-20)
        return (energy > median_filter(energy, size=41, mode="nearest") + 6) & (energy > -70)

    own = maximum_filter1d((jumps(g) | jumps(t)).astype(np.uint8), size=3).astype(bool)
    return int(np.sum(jumps(y - t) & ~own))


def _pumping(y, t, span, sr) -> dict:
    """How much the remover modulates the backing's level: over 50 ms frames within the spans,
    the backing's apparent gain in the output, <y, t> / <t, t> per frame (the guitar left over is
    uncorrelated with t, so this follows what happened to the backing), in dB: its median and its
    spread (10th to 90th percentile) -- a steady duck is a level change, a wide spread pumps."""
    hop = int(0.05 * sr)
    k = y.shape[0] // hop
    frames = np.flatnonzero(span[:k * hop].reshape(k, hop).mean(axis=1) > 0.5)
    yy = y[:k * hop].reshape(k, -1)[frames]
    tt = t[:k * hop].reshape(k, -1)[frames]
    power = np.sum(tt * tt, axis=1)
    loud = power > 1e-3 * np.median(power)  # leave out the silences between phrases
    gain = 20 * np.log10(np.clip(np.sum(yy * tt, axis=1)[loud] / power[loud], 1e-3, None))
    p10, p50, p90 = np.percentile(gain, [10, 50, 90])
    return {"median_db": round(float(p50), 2), "p10_p90_db": round(float(p90 - p10), 2)}


def _musical_noise(e, t, span, sr) -> float:
    """Isolated time-frequency blips in the error ``e`` that the backing ``t`` does not cover
    (per second of span): STFT cells (1024, hop 256 at 44.1 kHz) 10 dB above the median of their
    5 x 3 (frequency x time) neighbourhood and no more than 6 dB under the backing's same cell.
    Musical noise is made of these; the guitar left over, whose partials are continuous in time,
    is not."""
    from scipy.ndimage import median_filter
    n_fft, hop = 1024, 256

    def db_of(x):
        frames = np.lib.stride_tricks.sliding_window_view(x.mean(axis=1), n_fft)[::hop]
        keep = span[np.minimum(np.arange(frames.shape[0]) * hop + n_fft // 2, span.size - 1)]
        spec = np.fft.rfft(frames[keep] * np.hanning(n_fft), axis=1)
        return 10 * np.log10(np.abs(spec) ** 2 + 1e-20), keep

    db, keep = db_of(e)
    around = median_filter(db, size=(3, 5), mode="nearest")
    blips = (db > around + 10) & (db > db_of(t)[0] - 6)
    return round(float(blips.sum() / max(keep.sum() * hop / sr, 1e-9)), 1)


def _spectrogram_png(clips: dict[str, np.ndarray], sr: int, path: Path) -> None:
    from PIL import Image, ImageDraw
    n_fft, hop = 2048, 256
    specs = {}
    for name, x in clips.items():
        m = x.mean(axis=1)
        frames = np.lib.stride_tricks.sliding_window_view(m, n_fft)[::hop] * np.hanning(n_fft)
        specs[name] = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T[:n_fft // 4] + 1e-9)
    top = max(float(d.max()) for d in specs.values())
    rows = []
    for name, db in specs.items():
        # 0..5.5 kHz, low at the bottom; white = loud, 70 dB of range.
        img = np.clip((db - top + 70) / 70, 0, 1)[::-1]
        rows.append((name, (img * 255).astype(np.uint8)))
    width = max(r[1].shape[1] for r in rows)
    height = sum(r[1].shape[0] + 14 for r in rows)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    y0 = 0
    for name, img in rows:
        draw.text((2, y0), name, fill=255)
        canvas.paste(Image.fromarray(img), (0, y0 + 14))
        y0 += img.shape[0] + 14
    canvas.save(path)


RUNS = ("cancel_ahead", "cancel_late", "cancel_sync_off_8ms", "masks_ahead", "masks_late",
        "autoplay", "masks_oracle")


def _oracle(stream, g, span, sr, *, per_channel: bool = False) -> dict:
    """The ceiling of any mask the remover can apply: one real gain 0..1 per STFT bin and frame
    of the remover's own STFT (sine window of :func:`analyzer.masks.fft_size`, hop 1/2), shared
    by the channels (as a chart's masks are applied), or one per channel with ``per_channel``
    (what masks stored per channel could reach): the least-squares one from the true stem in the
    stream (the phase-sensitive mask, better than the ideal ratio mask). Removed by the remover's
    own overlap-add and scored in the time domain over the spans, like the real runs (scoring the
    masked spectra instead reads 0.4-0.6 dB low: overlap-add smooths part of the error away)."""
    from analyzer.masks import fft_size
    n_fft = fft_size(sr)
    hop = n_fft // 2
    window = np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft)  # analysis and synthesis
    n_frames = (stream.shape[0] - n_fft) // hop + 1
    removed = np.zeros(stream.shape[::-1])
    for f0 in range(0, n_frames, 4096):  # bounded memory on a long song
        f1 = min(f0 + 4096, n_frames)
        a, b = f0 * hop, (f1 - 1) * hop + n_fft

        def spectra(x):  # (channels, frames, bins)
            frames = np.lib.stride_tricks.sliding_window_view(x[a:b].T, n_fft, axis=1)[:, ::hop]
            return np.fft.rfft(frames * window, axis=-1)

        x, s = spectra(stream), spectra(g)
        cross = s.real * x.real + s.imag * x.imag
        power = x.real ** 2 + x.imag ** 2
        if not per_channel:
            cross, power = cross.sum(axis=0), power.sum(axis=0)
        mask = np.clip(cross / np.maximum(power, 1e-20), 0.0, 1.0)
        frames = np.fft.irfft(mask * x, n=n_fft, axis=-1) * window
        for k in range(f1 - f0):
            removed[:, a + k * hop:a + k * hop + n_fft] += frames[:, k]
    return _scores(stream - removed.T, stream - g, g, span)


def bench_song(folder: Path, out_dir: Path | None, *, quick: bool, generated: bool,
               imported: bool = True, runs=RUNS, guitar_stem: float | None = None) -> dict:
    parts = song_parts(folder, mono=False)
    if not parts.has_stem:
        raise SystemExit(f"{folder}: no {parts.stem} stem to measure its removal against")
    song, guitar, sr = parts.rest.T, parts.instrument.T, parts.sr   # (n, channels)
    n = song.shape[0]
    mix = song + guitar
    if quick:  # the first 60 s
        n = 60 * sr
        mix, song, guitar = mix[:n], song[:n], guitar[:n]
    stem = None if guitar_stem is None else guitar + np.float32(guitar_stem) * song
    with tempfile.TemporaryDirectory() as tmp:
        stream = _vorbis_stream(mix, sr, Path(tmp))
    lag, gain = _align(stream, mix, sr)
    g = gain * np.roll(guitar, lag, axis=0)
    t = stream - g

    if not imported:
        return {"song": folder.name, "seconds": round(n / sr, 1),
                "generated": _generated(mix, sr, stream, t, g, stem)}
    human = parts.notes
    notes = tuple(nt for nt in human.difficulties["expert"] if nt.t < n / sr - 1)
    result = {"song": folder.name, "seconds": round(n / sr, 1), "notes": len(notes),
              "stream_gain": round(gain, 4), "stream_delay": lag}
    bank = None
    if {"masks_ahead", "masks_late"} & set(runs):
        t0 = time.perf_counter()
        bank, diffs = attach_masks({"expert": notes}, y=mix.T, sr=sr,
                                   stems={human.stem: guitar.T})
        notes = diffs["expert"]
        result["masks"] = {"count": len(bank), "seconds_to_compute":
                           round(time.perf_counter() - t0, 2),
                           "bytes": int(sum(m.gains.size for m in bank.masks))}
    span = _span_mask(notes, n, sr)
    stems = {human.stem: (guitar.T, sr)}
    configs = {
        "cancel_ahead": dict(stems=stems, misses="ahead"),
        "cancel_late": dict(stems=stems, misses="late"),
        "cancel_sync_off_8ms": dict(stems=stems, misses="ahead", sync_error_s=0.008),
        "masks_ahead": dict(misses="ahead"),
        "masks_late": dict(misses="late"),
        "autoplay": dict(stems=stems, misses="none"),
    }
    if "masks_oracle" in runs:
        result["masks_oracle"] = _oracle(stream, g, span, sr)
        result["masks_oracle_per_channel"] = _oracle(stream, g, span, sr, per_channel=True)
    outputs = {}
    for name, kw in ((k, v) for k, v in configs.items() if k in runs):
        y, lat, cpu = _run(stream, sr, notes, bank, **kw)
        m = y.shape[0]
        if name == "autoplay":
            d = y - stream[:m]
            snr = 10 * np.log10(np.sum(stream[:m] ** 2) / max(np.sum(d ** 2), 1e-30))
            result[name] = {"snr_db": round(float(min(snr, 300.0)), 1),
                            "exact": bool(np.array_equal(y, stream[:m]))}
        else:
            result[name] = _scores(y, t[:m], g[:m], span[:m])
        result[name]["cpu_share"] = round(cpu / (n / sr), 4)
        result["latency_ms"] = round(1000 * lat / sr, 2)
        outputs[name] = y
    if generated:
        result["generated"] = _generated(mix, sr, stream, t, g, stem)
    if out_dir is not None and set(RUNS) <= set(runs):
        result["listening"] = _listen(out_dir, folder.name, sr, stream, t, outputs, notes)
    return result


def _generated(mix, sr, stream, t, g, stem=None) -> dict:
    """A chart analyzed from the mix alone (its own notes and masks), every note missed; with
    ``stem`` (frames, channels at ``sr``: a stand-in for Demucs' guitar stem) analyzed with it as
    the Demucs path is, and also removed by cancelling against it (``"cancel"``)."""
    import librosa

    from analyzer.pipeline import ANALYSIS_SR, analyze_audio
    from analyzer.stems import Stems
    from chart_store.chart import ChartMeta

    def mono(x):
        return librosa.resample(x.mean(axis=1), orig_sr=sr, target_sr=ANALYSIS_SR)

    stems = "auto" if stem is None else Stems({"guitar": mono(stem)}, ANALYSIS_SR, "demucs")
    t0 = time.perf_counter()
    chart = analyze_audio(mono(mix), ANALYSIS_SR, meta=ChartMeta(title="bench"), stems=stems)
    seconds = time.perf_counter() - t0
    notes = chart.track("expert").notes
    y, _, cpu = _run(stream, sr, notes, chart.masks, misses="ahead")
    m = y.shape[0]
    span = _span_mask(notes, stream.shape[0], sr)[:m]
    result = {"notes": len(notes), "masked_notes": sum(nt.mask is not None for nt in notes),
              "stems": sorted({nt.stem for nt in notes}), "analysis_s": round(seconds, 1),
              **_scores(y, t[:m], g[:m], span)}
    if stem is not None:
        y, _, _ = _run(stream, sr, notes, chart.masks, stems={"guitar": (stem.T, sr)},
                       misses="ahead")
        result["cancel"] = _scores(y, t[:m], g[:m], span)
    return result


def _listen(out_dir: Path, song: str, sr: int, stream, t, outputs, notes) -> dict:
    import soundfile as sf
    out_dir.mkdir(parents=True, exist_ok=True)
    # A missed passage: 6 s from the note nearest 40 % into the song (past any solo intro).
    times = np.array([nt.t for nt in notes])
    start_t = float(times[np.argmin(np.abs(times - 0.4 * stream.shape[0] / sr))]) - 1.0
    a, b = int(start_t * sr), int((start_t + 6.0) * sr)
    clips = {"stream (before)": stream[a:b], "ideal (stream - guitar)": t[a:b],
             "cancel, miss known late": outputs["cancel_late"][a:b],
             "masks only, declared ahead": outputs["masks_ahead"][a:b]}
    for name, x in clips.items():
        fname = name.split(" (")[0].split(",")[0].replace(" ", "_")
        if "late" in name or "ahead" in name:
            fname += "_late" if "late" in name else "_ahead"
        sf.write(out_dir / f"{song}_{fname}.wav", x, sr)
    _spectrogram_png(clips, sr, out_dir / f"{song}_spectrogram.png")
    m = outputs["cancel_late"].shape[0]
    g = stream - t
    clicks = {name: _clicks(outputs[name], t[:m], g[:m], sr)
              for name in ("cancel_late", "cancel_ahead", "masks_ahead", "masks_late")}
    span = _span_mask(notes, m, sr)
    # "stream": nothing removed (the error is the guitar itself), the reference for both.
    heard = {"stream": stream[:m], **{k: outputs[k] for k in
                                      ("cancel_late", "cancel_ahead", "masks_ahead", "masks_late")}}
    pumping = {k: _pumping(y, t[:m], span, sr) for k, y in heard.items()}
    noise = {k: _musical_noise(y - t[:m], t[:m], span, sr) for k, y in heard.items()}
    # The detector's own checks: one 0.02 spike added to the late-cancel output must count, and
    # a hard 10 ms gap in it (gain 0 for 10 ms) must count twice.
    probe = outputs["cancel_late"].copy()
    probe[m // 2] += 0.02
    clicks["probe_one_added_click"] = _clicks(probe, t[:m], g[:m], sr) - clicks["cancel_late"]
    probe = outputs["cancel_late"].copy()
    probe[m // 3:m // 3 + sr // 100] = 0.0
    clicks["probe_hard_10ms_gap"] = _clicks(probe, t[:m], g[:m], sr) - clicks["cancel_late"]
    return {"clip_start_s": round(start_t, 2), "files": str(out_dir), "clicks": clicks,
            "backing_gain": pumping, "musical_noise_blips_per_s": noise}


def _mean_scores(scores: list[dict]) -> dict:
    """Mean removal and backing SDR (dB) over songs' score dicts (:func:`_scores`)."""
    return {m: round(float(np.mean([s[m] for s in scores])), 2)
            for m in ("removal_db", "backing_sdr_db")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", help="folder of song folders, or 'dev' for the development "
                                         "set (default: the benchmark set)")
    parser.add_argument("--out", type=Path, help="write clips/PNG of the first song here")
    parser.add_argument("--quick", action="store_true", help="first 60 s of each song only")
    parser.add_argument("--no-generated", action="store_true",
                        help="skip the charts generated from the mix (slow)")
    parser.add_argument("--generated-only", action="store_true",
                        help="only the charts generated from the mix")
    parser.add_argument("--runs", nargs="*", default=RUNS, choices=RUNS,
                        help="which removals to run on the imported charts (default: all)")
    parser.add_argument("--guitar-stem", type=float, metavar="BLEED",
                        help="analyze the generated charts as the Demucs path does, with a "
                             "guitar stem: guitar.ogg plus song.ogg at gain BLEED (0: perfect); "
                             "they are also removed by cancelling against it")
    parser.add_argument("--only", nargs="*",
                        help="song folder names (default: every song of the set)")
    args = parser.parse_args(argv)
    root = dev_songs_dir() if args.songs == "dev" else songs_dir(args.songs)
    names = args.only or [p.relative_to(root) for p in song_folders(root)]
    results = []
    for i, name in enumerate(names):
        r = bench_song(root / name, args.out if i == 0 else None, quick=args.quick,
                       generated=not args.no_generated, imported=not args.generated_only,
                       runs=args.runs, guitar_stem=args.guitar_stem)
        print(json.dumps(r), flush=True)
        results.append(r)
    if args.generated_only:
        summary = {"generated": _mean_scores([r["generated"] for r in results])}
        if args.guitar_stem is not None:
            summary["generated_cancel"] = _mean_scores([r["generated"]["cancel"] for r in results])
        print(json.dumps({"summary": summary}), flush=True)
        return 0
    keys = [k for k in results[0] if isinstance(results[0][k], dict) and "removal_db" in results[0][k]]
    summary = {k: _mean_scores([r[k] for r in results]) for k in keys}
    if "generated" in results[0]:
        summary["generated"] = _mean_scores([r["generated"] for r in results])
    if "autoplay" in results[0]:
        summary["autoplay_snr_db_min"] = min(r["autoplay"]["snr_db"] for r in results)
    if "latency_ms" in results[0]:
        summary["latency_ms"] = results[0]["latency_ms"]
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
