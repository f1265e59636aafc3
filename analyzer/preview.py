"""A picture of a chart over its audio, to judge a chart at a glance.

API
---
- :func:`render_preview` — Chart (+ optional audio) → ``PIL.Image``.
- :func:`save_preview` — the same, written as PNG.

The timeline is wrapped into rows (like lines of a score), :data:`ROW_S` seconds each. Every row
has a log-frequency spectrogram of the audio (or, without audio, the chart's own sync envelope)
with each pitched note marked at its pitch, the lane strip below it (one line per lane, note heads
in the lane colours, sustains as bars), and the beat grid through both (brighter every 4th beat).
"""
from __future__ import annotations

import numpy as np

from chart_store.chart import song_name

__all__ = ["render_preview", "save_preview", "LANE_COLOURS", "ROW_S", "MIN_WIDTH"]

#: Seconds of chart per row.
ROW_S = 15.0
#: Narrowest image (pixels): the labels' margin and a strip of chart.
MIN_WIDTH = 200
#: Note colours by lane, left to right (the usual five-fret colours, then two more).
LANE_COLOURS = ((46, 204, 64), (230, 57, 53), (250, 214, 45), (52, 120, 246), (255, 133, 27),
                (177, 87, 255), (40, 220, 220))
_FMIN_HZ, _FMAX_HZ = 55.0, 8000.0
_SPEC_H, _LANE_H, _LABEL_H, _GAP, _LEFT = 150, 16, 16, 14, 54
# Colour map for the spectrogram: dark blue-black → purple → orange → pale yellow.
_MAP_ANCHORS = np.array([(0, 0, 4), (40, 11, 84), (120, 28, 109), (200, 60, 70), (245, 125, 21),
                         (252, 255, 164)], np.float32)


def _colour_map(values: np.ndarray) -> np.ndarray:
    """Map 0..1 to RGB uint8 along :data:`_MAP_ANCHORS`."""
    pos = np.clip(values, 0, 1) * (len(_MAP_ANCHORS) - 1)
    lo = np.minimum(pos.astype(int), len(_MAP_ANCHORS) - 2)
    frac = (pos - lo)[..., None]
    return (_MAP_ANCHORS[lo] * (1 - frac) + _MAP_ANCHORS[lo + 1] * frac).astype(np.uint8)


def _hz_to_row(hz, height: int):
    """Row (0 = top) of frequency ``hz`` on the log axis."""
    frac = np.log(np.asarray(hz, float) / _FMIN_HZ) / np.log(_FMAX_HZ / _FMIN_HZ)
    return (1 - frac) * (height - 1)


def _spectrogram_strip(y, sr, t0, t1, width, height) -> np.ndarray:
    """RGB (height, width) log-frequency spectrogram of ``y`` between t0 and t1 seconds."""
    n_fft = 2048 if sr <= 24000 else 4096
    start = max(0, int(t0 * sr) - n_fft // 2)
    segment = y[start:int(t1 * sr) + n_fft // 2]
    columns = np.zeros((n_fft // 2 + 1, width), np.float32)
    if segment.size >= n_fft:
        window = np.hanning(n_fft).astype(np.float32)
        centres = ((t0 + (np.arange(width) + 0.5) * (t1 - t0) / width) * sr).astype(int) - start
        valid = (centres - n_fft // 2 >= 0) & (centres + n_fft // 2 <= segment.size)
        idx = centres[valid, None] - n_fft // 2 + np.arange(n_fft)[None, :]
        for chunk in range(0, len(idx), 512):  # bounded memory for wide images
            frames = segment[idx[chunk:chunk + 512]] * window
            columns[:, np.flatnonzero(valid)[chunk:chunk + 512]] = np.abs(
                np.fft.rfft(frames, axis=1)).T
    db = 20 * np.log10(columns + 1e-6)
    # Levels relative to this stretch: its quietest third is black, its loudest cells white, so
    # a dense mix does not saturate and a sparse one does not vanish.
    floor, top = np.percentile(db, [33, 99.8])
    level = (db - floor) / max(top - floor, 1.0)
    # Each image row shows its centre frequency (interpolated between bins, where rows are
    # narrower than a bin) or the loudest bin inside its band (where rows are wider).
    edges = _FMIN_HZ * (_FMAX_HZ / _FMIN_HZ) ** (np.arange(height + 1)[::-1] / height)
    centres = np.sqrt(edges[:-1] * edges[1:]) * n_fft / sr
    lo_bin = np.floor(centres).astype(int)
    frac = (centres - lo_bin)[:, None]
    rows = level[lo_bin] * (1 - frac) + level[lo_bin + 1] * frac
    first = np.ceil(edges[1:] * n_fft / sr).astype(int)
    last = np.floor(edges[:-1] * n_fft / sr).astype(int)
    for r in np.flatnonzero(last > first):
        rows[r] = np.maximum(rows[r], level[first[r]:last[r] + 1].max(axis=0))
    return _colour_map(rows)


def _envelope_strip(envelope, frame_rate, t0, t1, width, height) -> np.ndarray:
    """RGB (height, width) filled plot of an onset envelope between t0 and t1 seconds."""
    strip = np.zeros((height, width, 3), np.uint8)
    strip[:] = _MAP_ANCHORS[0]
    if envelope is None or not len(envelope):
        return strip
    scale = np.percentile(envelope, 99) or 1.0
    edges = np.round((t0 + np.arange(width + 1) * (t1 - t0) / width) * frame_rate).astype(int)
    edges = np.clip(edges, 0, len(envelope))
    for x in range(width):
        lo, hi = edges[x], max(edges[x + 1], edges[x] + 1)
        value = float(envelope[lo:hi].max()) if lo < len(envelope) else 0.0
        bar = int(min(value / scale, 1.0) * (height - 4))
        if bar:
            strip[height - bar:, x] = _colour_map(np.linspace(1, 0.3, bar))
    return strip


def render_preview(chart, *, difficulty: str | None = None, y: np.ndarray | None = None,
                   sr: int | None = None, start_s: float = 0.0, end_s: float | None = None,
                   row_s: float = ROW_S, width: int = 1800):
    """Draw ``chart``'s notes by lane over the audio's spectrogram, with the beat grid.

    Parameters
    ----------
    chart : Chart
    difficulty : str, optional
        Which difficulty (default: the hardest in the chart).
    y, sr : np.ndarray [shape=(n,) or (channels, n)], int, optional
        The recording, chart time 0 at sample 0; without it the chart's sync envelope is drawn.
    start_s, end_s : float
        The stretch of the chart to draw (default: all of it).
    row_s : float
        Seconds per row.
    width : int
        Image width in pixels.

    Returns
    -------
    PIL.Image.Image
        RGB.

    Raises
    ------
    ValueError
        ``row_s`` not above 0, ``width`` under :data:`MIN_WIDTH`, or ``end_s`` not after
        ``start_s``.

    Examples
    --------
    >>> image = render_preview(chart, y=y, sr=sr, end_s=30)  # doctest: +SKIP
    >>> image.save("chart.png")  # doctest: +SKIP
    """
    from PIL import Image, ImageDraw, ImageFont

    difficulty = difficulty or chart.hardest()
    track = chart.track(difficulty)
    if row_s <= 0 or width < MIN_WIDTH:
        raise ValueError(f"rows must be over 0 s and the image at least {MIN_WIDTH} px wide, "
                         f"got {row_s:g} s and {width} px")
    if end_s is not None and end_s <= start_s:
        raise ValueError(f"the end ({end_s:g} s) must be after the start ({start_s:g} s)")
    end_s = chart.meta.duration_s if end_s is None else end_s
    if end_s <= start_s:  # past the chart's end, or a chart of unknown length: one row
        end_s = start_s + row_s
    if y is not None:
        y = np.asarray(y, np.float32)
        y = y.mean(axis=0) if y.ndim == 2 else y
    n_rows = int(np.ceil((end_s - start_s) / row_s - 1e-9))
    plot_w = width - _LEFT
    lanes_h = chart.lanes * _LANE_H
    row_h = _SPEC_H + lanes_h + _LABEL_H + _GAP
    title_h = 30
    image = Image.new("RGB", (width, title_h + n_rows * row_h), (18, 18, 22))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    meta = chart.meta
    draw.text((8, 8), f"{song_name(meta.artist, meta.title) or 'Untitled'}   "
                      f"{difficulty}: {len(track)} notes, {track.density():.2f}/s, "
                      f"{chart.lanes} lanes   [{_clock(start_s)}-{_clock(end_s)}]",
              fill=(235, 235, 235), font=font)
    px_s = plot_w / row_s
    radius = max(3, _LANE_H // 2 - 2)
    for row in range(n_rows):
        # Every row has the same scale; the last one stops at end_s, part of the way across.
        t0 = start_s + row * row_s
        t1 = min(t0 + row_s, end_s)
        row_w = max(1, int(round((t1 - t0) * px_s)))
        right = _LEFT + row_w - 1
        top = title_h + row * row_h
        lanes_top = top + _SPEC_H
        if y is not None:
            strip = _spectrogram_strip(y, sr, t0, t1, row_w, _SPEC_H)
        else:
            env = chart.sync.envelope if chart.sync is not None else None
            rate = chart.sync.frame_rate if chart.sync is not None else 100.0
            strip = _envelope_strip(env, rate, t0, t1, row_w, _SPEC_H)
        image.paste(Image.fromarray(strip), (_LEFT, top))
        draw.rectangle([_LEFT, lanes_top, right, lanes_top + lanes_h - 1], fill=(32, 32, 38))
        for lane in range(chart.lanes):
            ly = lanes_top + lane * _LANE_H + _LANE_H // 2
            draw.line([_LEFT, ly, right, ly], fill=(60, 60, 70))
        # beat grid through spectrogram and lanes; every 4th beat brighter
        for i in np.flatnonzero((chart.beats >= t0) & (chart.beats < t1)):
            x = _LEFT + (chart.beats[i] - t0) * px_s
            colour = (200, 200, 210) if i % 4 == 0 else (95, 95, 110)
            draw.line([x, top, x, lanes_top + lanes_h - 1], fill=colour, width=1)
        if y is None:  # the envelope strip has no frequency axis
            draw.text((4, top + 2), "onsets", fill=(160, 160, 170), font=font)
        else:
            for hz in (100, 1000, 4000):
                draw.text((4, top + _hz_to_row(hz, _SPEC_H) - 5), f"{hz:>4} Hz" if hz < 1000
                          else f"{hz // 1000} kHz", fill=(160, 160, 170), font=font)
        for note in track.notes_between(t0 - 30.0, t1):
            if note.end < t0 or note.t >= t1 + (radius / px_s if t1 < end_s else 0.0):
                continue
            colour = LANE_COLOURS[note.lane % len(LANE_COLOURS)]
            x = _LEFT + (note.t - t0) * px_s
            ly = lanes_top + note.lane * _LANE_H + _LANE_H // 2
            # A sustain's tail within this row: none for a head drawn past the row's end.
            x_start, x_end = max(x, _LEFT), min(_LEFT + (note.end - t0) * px_s, right)
            if note.dur > 0 and x_end > x_start:
                draw.rectangle([x_start, ly - 2, x_end, ly + 2],
                               fill=tuple(c // 2 + 40 for c in colour))
            if note.t >= t0:
                draw.ellipse([x - radius, ly - radius, x + radius, ly + radius], fill=colour,
                             outline=(10, 10, 10))
                if y is not None and note.pitch is not None:
                    py = top + _hz_to_row(440.0 * 2 ** ((note.pitch - 69) / 12), _SPEC_H)
                    if top <= py < lanes_top:
                        draw.ellipse([x - 3, py - 3, x + 3, py + 3], outline=colour, width=2)
        label_y = lanes_top + lanes_h + 2
        draw.text((4, lanes_top + lanes_h // 2 - 5), _clock(t0), fill=(220, 220, 220), font=font)
        for tick in np.arange(np.ceil(t0), t1, 1.0):
            x = _LEFT + (tick - t0) * px_s
            draw.line([x, label_y - 2, x, label_y + (4 if tick % 5 else 8)], fill=(150, 150, 160))
            if tick % 5 == 0:
                draw.text((x + 3, label_y), _clock(tick), fill=(170, 170, 180), font=font)
    return image


def save_preview(chart, path, **options) -> None:
    """:func:`render_preview` written to ``path`` as PNG."""
    render_preview(chart, **options).save(path, format="PNG")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{secs:04.1f}"
