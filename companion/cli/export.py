"""``loopjam export CHART --format fof|clonehero|stepmania|osu --out DIR``: a chart as game
files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from companion.cli import CommandError

FORMATS = ("fof", "clonehero", "stepmania", "osu")

EPILOG = """\
formats:
  fof        Frets on Fire song folder: notes.mid (PART GUITAR, every difficulty) + song.ini,
             stems as song.ogg/guitar.ogg/rhythm.ogg (other stems mixed into song.ogg)
  clonehero  the same for Clone Hero / YARG, every stem as its own .ogg
  stepmania  a .sm file (dance-single, lanes folded to 4) + song.ogg
  osu        one osu!mania .osu per difficulty (keys = lanes) + song.ogg

Audio: --audio FILE writes the song's audio as song.ogg. Without it, an imported song's
real stems are written (this machine's stem store keeps them), and an analyzed chart's
song.ogg is the file 'loopjam analyze' made it from, when that file is still where the
analysis (or a later one) found it, unchanged. Without a song.ogg the command says so: the
game has nothing (or only the separated stem the notes come from) to play until one is
added. The chart files are written in any case. The song folder is created inside DIR.

examples:
  loopjam export 3f9a0c1d2e --format clonehero --out ~/clonehero/songs
  loopjam export 8f13172d47 --format clonehero --audio ~/Music/song.mp3 --out ~/clonehero/songs
  loopjam export my-song.chart --format osu --out ./osu-export   (a LoopJam chart file)
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="write a chart as a Frets on Fire / Clone Hero / StepMania / osu! song",
        description="Export a chart from the store (or a chart file) to another game's format.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chart", metavar="CHART", help="a chart id from the store, or a chart file")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                        help="what to write")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder to write the song folder into (created if missing)")
    parser.add_argument("--force", action="store_true",
                        help="replace the song files of a song folder already there (an earlier "
                             "export, or another chart of the same artist and title)")
    parser.add_argument("--audio", type=Path, metavar="FILE",
                        help="the song's audio, written as song.ogg (in place of stored stems)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from analyzer.batch import source_file
    from analyzer.decode import DecodeError, load
    from analyzer.formats import FormatError, export_chart
    from chart_store.stems import StemStore
    from companion.cli.chart import load_chart

    chart = load_chart(args.chart)
    audio = args.audio
    stems = {}
    if audio is None:
        store = StemStore()  # an imported song's stems, kept under the chart's id
        stems = {name: store.get(chart.id, name) for name in store.names(chart.id)}
        if "song" not in stems:  # none stored, or only a separated stem (Demucs)
            audio = source_file(chart.id)
            if audio is not None:
                print(f"loopjam: export: song.ogg from {audio} (the file the chart was "
                      "analyzed from)", file=sys.stderr)
    if audio is not None:
        try:
            stems = {"song": load(audio, mono=False)}
        except DecodeError as error:
            raise CommandError(f"export: {error}") from None
    try:
        folder = export_chart(chart, args.fmt, args.out, stems=stems, replace=args.force)
    except FormatError as error:
        raise CommandError(f"export {args.chart}: {error}") from None
    _say_folded(chart, args.fmt)
    if "song" not in stems:  # none stored, or only a separated stem (Demucs): not the song
        kept = f"only {', '.join(sorted(stems))}" if stems else "no audio"
        print(f"loopjam: export: {kept} written, no song.ogg: add the song's audio with "
              f"--audio FILE", file=sys.stderr)
    print(folder)
    return 0


def _say_folded(chart, fmt: str) -> None:
    """Say on stderr when the format has fewer lanes than the chart (Clone Hero's 5 frets,
    StepMania's 4 arrows), and how many chord notes met on one lane and became one."""
    from analyzer.formats.midi import frets_for
    from analyzer.formats.stepmania import SM_LANES
    from chart_store.chart import fold_lanes

    lanes = {"stepmania": SM_LANES, "osu": chart.lanes}.get(fmt) or frets_for(chart.lanes)
    if lanes >= chart.lanes:
        return
    merged = sum(len(track) - len(fold_lanes(track.notes, lanes=chart.lanes, to_lanes=lanes))
                 for track in chart.difficulties.values())
    print(f"loopjam: export: {fmt} has {lanes} lanes: the chart's {chart.lanes} were folded "
          f"onto them" + (f" ({merged} chord notes met on one lane and merged)" if merged
                           else ""), file=sys.stderr)
