"""``loopjam analyze PATH... [--out DIR] [--no-store] [--stems M] [--jobs N] [--json]``:
audio files or folders → charts in the local store."""
from __future__ import annotations

import argparse
import os
import signal
import sys

from companion.cli import CommandError, emit_json
from companion.cli._types import number

EPILOG = """\
Folders are searched recursively for audio (wav flac ogg opus mp3 m4a aac wma...). Each file
becomes a chart in the local store; a file whose content was analyzed before is skipped (its
stored chart is reported), so an interrupted run picks up where it stopped (--force charts it
again, for other --lanes or --stems, and the new chart replaces the old). A file that cannot
be analyzed (unreadable, not audio, silent, shorter than 10 s) is reported and the rest go on;
the exit status is then 1. Song folders of Frets on Fire / Clone Hero (a notes.mid or
notes.chart beside the audio) are left out: their files are one song's stems, and
"loopjam import" takes their human charts.

--stems auto uses Demucs (pip install 'loopjam[separation]') when its weights are already
downloaded, else a fast harmonic/percussive split that needs no download. --stems demucs fetches
its 6-source model (htdemucs_6s) if no Demucs model is on disk: the notes are charted with its
guitar stem (else the 4-source model's "other"), which tells the guitar's notes from the drums.
With Demucs, the stem the notes come from is kept on this machine beside the store (Ogg Vorbis,
never uploaded), so that "loopjam play" can cancel a missed note's sound outright instead of
masking it.

examples:
  loopjam analyze ~/Music --jobs 2            a whole library, two files at a time
  loopjam analyze song.mp3 --out charts/      also write charts/song.chart
  loopjam analyze a.flac b.opus --json        one JSON line per file:
      {"input","chart_id","chart_path","duration_s","notes":{"expert":N,...},"elapsed_s",
       "skipped"} or {"input","error"}
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze", help="turn audio files or folders into charts",
        description="Analyze audio files into charts (notes, beats, difficulties, per-note "
                    "masks) and save them to the local chart store.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio file or folder")
    parser.add_argument("--out", metavar="DIR", help="also write each chart file into DIR")
    parser.add_argument("--no-store", dest="store", action="store_false",
                        help="do not read or write the local store")
    parser.add_argument("--stems", choices=("auto", "demucs", "hpss", "none"), default="auto",
                        help="source separation before transcription (default: auto)")
    parser.add_argument("--lanes", type=number(int, 4, 7), metavar="4..7",
                        help="lanes per chart (default: config game.lanes, 5)")
    parser.add_argument("--force", action="store_true",
                        help="analyze files charted before again (with other --lanes or "
                             "--stems): the new chart replaces the old one")
    parser.add_argument("--jobs", "-j", type=number(int, 1), default=1, metavar="N",
                        help="files analyzed at once, one process each (default: 1)")
    parser.add_argument("--json", action="store_true", help="one JSON line per input")
    parser.set_defaults(func=run)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    from tqdm import tqdm

    from analyzer.batch import find_audio, run_batch
    from companion.cli._config import user_config

    found = find_audio(args.paths)
    songs, missing = found.song_folders, found.missing
    hint = (f"{len(songs)} song folder{'s' * (len(songs) > 1)} with a human chart left out (their "
            f"files are one song's stems): 'loopjam import {' '.join(args.paths)}' imports them")
    if not found.audio:
        if missing and not songs:
            raise CommandError(f"{', '.join(map(str, missing))}: no such file or folder")
        raise CommandError(f"no audio to analyze: {hint}" if songs
                           else f"no audio files found in {', '.join(args.paths)}")
    inputs = [*found.audio, *missing]  # a path that is not there is one failure of the batch
    if songs:  # on stderr: --json's lines stay one per analyzed file
        print(f"loopjam: {hint}", file=sys.stderr)
    if args.stems == "demucs":  # fail (or download the weights) once, not once per file
        from analyzer.stems import StemsError, demucs
        try:
            if demucs.cached_model() is None:
                demucs.load_model()
        except StemsError as error:
            raise CommandError(str(error)) from None
    if args.out is not None:
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise CommandError(f"--out {args.out}: not a folder")
        os.makedirs(args.out, exist_ok=True)

    results = []
    bar = tqdm(total=len(inputs), desc="analyze", unit="file", file=sys.stderr,
               disable=not sys.stderr.isatty())

    def report(result) -> None:
        bar.update(1)
        results.append(result)
        if args.json:
            emit_json(result.to_json())
        elif result.error is None:
            counts = ", ".join(f"{n} {d}" for d, n in result.notes.items())
            done = "already analyzed" if result.skipped else f"{result.elapsed_s:.1f} s"
            tqdm.write(f"{result.chart_id or '-':.16}  {result.input}  ({counts}; {done})",
                       file=sys.stdout)

    def stage(path, name) -> None:
        bar.set_postfix_str(f"{path.name}: {name}")

    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the workers too
    try:
        with bar:
            run_batch(inputs, jobs=args.jobs, stems=args.stems, store=args.store,
                      skip_done=not args.force,
                      lanes=args.lanes or user_config().game.lanes,
                      out_dir=args.out, on_result=report, on_stage=stage)
    except KeyboardInterrupt:
        print(f"loopjam: analyze: interrupted, {len(results)} of {len(inputs)} files done (run "
              "it again to go on: what is done is skipped)", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    failures = [result for result in results if result.error is not None]
    if failures:
        print(f"loopjam: {len(failures)} of {len(inputs)} files failed:", file=sys.stderr)
        for result in failures:
            print(f"  {result.error}", file=sys.stderr)
        return 1
    return 0
