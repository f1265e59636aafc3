"""Speed of the Demucs stage of ``loopjam analyze --stems demucs``, on a GPU when there is one.

The pretrained weights cannot be fetched on the machines this runs on, so the model is htdemucs's
own architecture (the constructor arguments its checkpoint 955717e8 stores) with random weights:
the same layers, shapes and arithmetic, so the same time. ``--model htdemucs_6s`` (the
analyzer's default) is the same network with six sources, as its checkpoint 5c90dfd2 has. The
stems it returns are noise; only their time is measured. The stage is timed through
:func:`analyzer.stems.demucs.separate_demucs`, the function the analyzer calls (normalisation,
``demucs.apply.apply_model`` with its 7.8 s segments and 25 % overlap, copies to and from the
device).

The mixes are written first on a machine that has the songs, then carried to the GPU machine::

    python -m benchmarks.analyze.demucs_speed --write-mixes .bench/mixes [--set bench|dev]
    python -m benchmarks.analyze.demucs_speed --mixes .bench/mixes [--device cuda] [--seconds S]

Prints one JSON line per song (``realtime_x``: seconds of audio per second of wall time) and a
summary line.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from fractions import Fraction
from pathlib import Path

#: htdemucs's constructor arguments besides its sources (read from its checkpoint's kwargs).
HTDEMUCS_ARCH = dict(
    audio_channels=2, samplerate=44100, segment=Fraction(39, 5), channels=48, channels_time=None,
    growth=2, nfft=4096, wiener_iters=0, end_iters=0, wiener_residual=False, cac=True, depth=4,
    rewrite=True, multi_freqs=[], multi_freqs_depth=3, freq_emb=0.2, emb_scale=10,
    emb_smooth=True, kernel_size=8, stride=4, time_stride=2, context=1, context_enc=0,
    norm_starts=4, norm_groups=4, dconv_mode=3, dconv_depth=2, dconv_comp=8, dconv_init=1e-3,
    bottom_channels=512, t_layers=5, t_hidden_scale=4.0, t_heads=8, t_dropout=0.02,
    t_layer_scale=True, t_gelu=True, t_emb="sin", t_max_positions=10000, t_max_period=10000.0,
    t_weight_pos_embed=1.0, t_sparse_self_attn=False, t_sparse_cross_attn=False,
    t_cross_first=False, rescale=0.1)
#: Each model's sources, in its checkpoint's order.
SOURCES = {"htdemucs": ["drums", "bass", "other", "vocals"],
           "htdemucs_6s": ["drums", "bass", "other", "vocals", "guitar", "piano"]}


def write_mixes(out: Path, song_set: str) -> None:
    """Write each song folder's mix as ``out/<song>.ogg`` (what ``benchmarks.analyze.speed``
    runs)."""
    from benchmarks.analyze.speed import write_mix
    from benchmarks.data import dev_songs_dir, song_folders, songs_dir

    root = songs_dir() if song_set == "bench" else dev_songs_dir()
    out.mkdir(parents=True, exist_ok=True)
    for folder in song_folders(root):
        seconds = write_mix(folder, out / f"{folder.name}.ogg")
        print(f"{folder.name}: {seconds:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixes", type=Path, help="folder of mixes to separate")
    parser.add_argument("--write-mixes", type=Path, metavar="DIR",
                        help="write the song set's mixes into DIR and stop")
    parser.add_argument("--set", dest="song_set", choices=("bench", "dev"), default="bench")
    parser.add_argument("--model", choices=sorted(SOURCES), default="htdemucs_6s",
                        help="whose architecture to time (default: the analyzer's, htdemucs_6s)")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="separate only the first S seconds of each mix (0: all)")
    args = parser.parse_args()
    if args.write_mixes:
        return write_mixes(args.write_mixes, args.song_set)
    if not args.mixes:
        parser.error("give --mixes DIR (or --write-mixes DIR)")

    import torch
    from demucs.htdemucs import HTDemucs

    from analyzer.decode import load
    from analyzer.stems.demucs import separate_demucs

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    model = HTDemucs(sources=SOURCES[args.model], **HTDEMUCS_ARCH).eval()
    build_s = time.perf_counter() - start
    # First call pays CUDA context, cuDNN/cuBLAS plans and kernel loading: timed on its own.
    y, sr = load(sorted(args.mixes.glob("*.ogg"))[0], mono=False, duration_s=10.0)
    start = time.perf_counter()
    separate_demucs(y, sr, model=model, device=device)
    warm_up_s = time.perf_counter() - start
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    rows = []
    for path in sorted(args.mixes.glob("*.ogg")):
        start = time.perf_counter()
        y, sr = load(path, mono=False, duration_s=args.seconds or None)
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        stems = separate_demucs(y, sr, model=model, device=device)
        wall = time.perf_counter() - start
        duration = y.shape[-1] / sr
        row = {"song": path.stem, "duration_s": round(duration, 2), "decode_s": round(decode_s, 2),
               "separate_s": round(wall, 2), "realtime_x": round(duration / wall, 1),
               "stems": sorted(stems)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"songs": len(rows), "model": args.model, "device": device,
               "device_name": (torch.cuda.get_device_name(device) if device.startswith("cuda")
                               else f"{os.cpu_count()} CPU cores"),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
               "build_s": round(build_s, 2), "warm_up_10s_s": round(warm_up_s, 2),
               "mean_realtime_x": round(sum(r["realtime_x"] for r in rows) / len(rows), 1),
               "min_realtime_x": min(r["realtime_x"] for r in rows),
               "mean_separate_s": round(sum(r["separate_s"] for r in rows) / len(rows), 2)}
    if device.startswith("cuda"):
        summary["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
