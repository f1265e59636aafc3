"""``loopjam chart``: look inside chart files and check them.

Subcommands register themselves through :data:`SUBCOMMANDS` (``show``, ``validate``; more
chart tools add their ``_register_*`` function there).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from companion.cli import CommandError, emit_json
from companion.cli._types import number

EPILOG = """\
examples:
  loopjam chart show song.chart               # title, artist, lanes, notes per difficulty
  loopjam chart show 3fa2c1d0e4b5a6978812ab34 --json   # a chart from the local store, as JSON
  loopjam chart validate charts/*.chart       # OK or what is wrong, one line per file
  loopjam chart validate song.chart --json

CHART is a chart file, or the id (or a unique start of it, such as the 12 digits
`loopjam play` prints) of a chart in the local store (LOOPJAM_HOME/store).
The file format is described in docs/chart-format.md.
"""


def load_chart(spec: str):
    """The chart named by ``spec``: a chart file path, else an id in the local store.

    Raises :class:`CommandError` (one line) when there is no such chart or it is invalid.
    """
    from chart_store.chartfile import ChartFormatError, read_chart

    if not spec.strip():  # Path("") is the current folder
        raise CommandError("no chart given: a chart id (or its start) or a chart file")
    path = Path(spec)
    try:
        if path.exists():
            return read_chart(path)
        if os.sep in spec or "/" in spec or path.suffix:
            raise CommandError(f"{spec}: no such file")
        from chart_store.local import LocalStore
        store = LocalStore()
        try:
            return store.get(store.resolve(spec))
        except KeyError as error:
            raise CommandError(f"{spec}: no such chart file, and {error.args[0]}") from None
        finally:
            store.close()
    except ChartFormatError as error:
        hint = _song_chart_hint(path)
        raise CommandError(f"{spec}: {hint}" if hint else str(error)) from None
    except OSError as error:
        raise CommandError(f"{spec}: {error.strerror or error}") from None


def _song_chart_hint(path: Path) -> str | None:
    """What to say when ``path`` is a Clone Hero / Frets on Fire song's chart (a notes.chart
    is also a ``.chart``), not a LoopJam chart file: that it is, and how to import it."""
    try:
        with open(path, "rb") as file:
            head = file.read(64).lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \r\n\t").replace(b"\x00", b"")
    except OSError:
        return None
    if not (head.startswith(b"[Song]") or head.startswith(b"MThd")):
        return None
    return (f"a Clone Hero / Frets on Fire song chart, not a LoopJam chart: import its song "
            f"folder with 'loopjam import \"{path.parent}\"' (it prints the chart's id)")


def run_show(args) -> int:
    from chart_store.chartfile import chart_to_json

    chart = load_chart(args.chart)
    if args.json:
        emit_json(chart_to_json(chart))
        return 0
    for line in summary(chart):
        print(line)
    return 0


def summary(chart) -> list[str]:
    """A human summary of ``chart``, one line per fact."""
    from chart_store.chart import song_name

    meta = chart.meta
    minutes, seconds = divmod(meta.duration_s, 60)
    lines = [
        (song_name(meta.artist, meta.title) or "Untitled")
        + (f" ({meta.album})" if meta.album else ""),
        f"id        {chart.id}",
        f"duration  {int(minutes)}:{seconds:04.1f} ({meta.duration_s:.1f} s)",
        f"source    {meta.source.value}" + (f", {meta.tool_version}" if meta.tool_version else ""),
    ]
    lines += [f"{key:<10}{getattr(meta, key)}" for key in meta.CREDITS if getattr(meta, key)]
    lines += [f"lanes     {chart.lanes}"]
    beats = f"beats     {len(chart.beats)}"
    if len(chart.beats) > 1:
        import numpy as np
        # The tempo of most beats, and how many stretches of one tempo (to the microsecond) the
        # tempo map has: what an export writes as tempo changes.
        lengths = np.diff(chart.beats)
        tempos = 1 + int(np.count_nonzero(np.abs(np.diff(lengths)) > 1e-6))
        beats += f", {60.0 / float(np.median(lengths)):.2f} BPM" + (
            f" ({tempos} tempos)" if tempos > 1 else "")
    lines += [beats]
    if chart.phrases:
        kinds = [p.kind for p in chart.phrases]
        lines.append("phrases   " + ", ".join(
            f"{kinds.count(kind)} {kind.replace('_', ' ')}" for kind in dict.fromkeys(kinds)))
    if chart.time_signatures:
        metres = [f"{m.numerator}/{m.denominator} from {m.t:.1f} s"
                  for m in chart.time_signatures]
        lines.append("metre     " + ", ".join(metres[:4])
                     + (f" (+{len(metres) - 4} more)" if len(metres) > 4 else ""))
    lines += ["notes" if chart.difficulties else "notes     none"]
    for name, track in chart.difficulties.items():
        stems = sorted({note.stem for note in track})
        lines.append(f"  {name:<8}{len(track):>6} notes {track.density():6.2f}/s"
                     + (f"  stems: {', '.join(stems)}" if stems else ""))
    extras = [f"{len(chart.masks)} masks x {chart.masks.n_bands} bands"]
    if chart.fingerprint is not None:
        extras.append(f"fingerprint {len(chart.fingerprint.items)} items")
    if chart.sync is not None:
        extras.append(f"sync {len(chart.sync.envelope)} frames at {chart.sync.frame_rate:g} Hz")
    lines.append(f"removal   {'; '.join(extras)}")
    return lines


def run_validate(args) -> int:
    from chart_store.chartfile import ChartFormatError, chart_id, read_chart

    bad = 0
    for file in args.files:
        try:
            chart = read_chart(file)
        except ChartFormatError as error:
            result = {"file": file, "ok": False,
                      "error": _song_chart_hint(Path(file)) or error.reason}
        except OSError as error:
            result = {"file": file, "ok": False, "error": error.strerror or str(error)}
        else:
            result = {"file": file, "ok": True, "id": chart_id(chart)}
        bad += not result["ok"]
        if args.json:
            emit_json(result)
        else:
            print(f"{file}: " + (f"OK ({result['id']})" if result["ok"] else result["error"]),
                  flush=True)
    return 1 if bad else 0


def _register_show(commands) -> None:
    p = commands.add_parser(
        "show", help="print a chart's metadata and notes",
        description="Print a chart: a summary for people, or every note as JSON (--json).",
        epilog="""examples:
  loopjam chart show song.chart
  loopjam chart show 3fa2c1d0e4b5a6978812ab34 --json

--json prints one object:
  {"format":"loopjam-chart","version":V,"id","title","artist","album","duration_s",
   "source","tool_version","charter","genre","year","lanes","beats":[s,...],
   "phrases":[{"kind":"star_power"|"solo","t":s,"dur":s},...],
   "time_signatures":[{"t":s,"numerator":n,"denominator":d},...],
   "difficulties":{"expert":[{"t":s,"dur":s,"lane":i,"pitch":midi_or_null,"stem":name},...]}}
V is the chart file's version: 1; 2 for a chart with sync bands; 3 for one with credits
(charter, genre, year); 4 for one with a human chart's star power and solo phrases or time
signatures (docs/chart-format.md).
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("chart", metavar="CHART",
                   help="chart file, or chart id (or unique prefix) in the local store")
    p.add_argument("--json", action="store_true", help="print one JSON object with every note")
    p.set_defaults(func=run_show)


def _register_validate(commands) -> None:
    p = commands.add_parser(
        "validate", help="check chart files; exit 1 if any is invalid",
        description="Read each chart file strictly; print OK (with its id) or the one-line "
                    "reason it is invalid. Exit status 1 if any file is invalid.",
        epilog="""examples:
  loopjam chart validate song.chart
  loopjam chart validate ~/charts/*.chart --json

--json prints one object per file: {"file","ok":true,"id"} or {"file","ok":false,"error"}.
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="chart files")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=run_validate)


def run_preview(args) -> int:
    from analyzer.batch import source_file
    from analyzer.decode import DecodeError, load
    from analyzer.preview import MIN_WIDTH, save_preview

    if args.row <= 0:
        raise CommandError("--row must be more than 0 seconds")
    if args.width < MIN_WIDTH:
        raise CommandError(f"--width must be at least {MIN_WIDTH} pixels")
    if args.end is not None and args.end <= args.start:
        raise CommandError("--end must be after --start")
    chart = load_chart(args.chart)
    duration = chart.meta.duration_s
    if args.start < 0 or (duration and args.start >= duration):
        raise CommandError(f"--start {args.start:g} s is outside the chart (0-{duration:.1f} s)")
    if args.difficulty is not None and args.difficulty not in chart.difficulties:
        raise CommandError(f"{args.chart}: no {args.difficulty} difficulty; it has "
                           f"{', '.join(chart.difficulties) or 'none'}")
    y = sr = None
    audio = args.audio if args.audio is not None else source_file(chart.id)
    if audio is not None:
        try:
            y, sr = load(audio, sr=22050)
        except DecodeError as error:
            raise CommandError(str(error)) from None
    try:
        save_preview(chart, args.output, difficulty=args.difficulty, y=y, sr=sr,
                     start_s=args.start, end_s=args.end, row_s=args.row, width=args.width)
    except OSError as error:
        raise CommandError(f"{args.output}: {error.strerror or error}") from None
    return 0


def _register_preview(commands) -> None:
    p = commands.add_parser(
        "preview", help="draw a chart's notes over its audio as a PNG",
        description="Draw the notes of one difficulty by lane under the song's spectrogram "
                    "(--audio, else the file 'loopjam analyze' charted, if it is still where it "
                    "was; else the chart's onset envelope), with the beat grid, in rows of "
                    "--row seconds: a chart judged at a glance.",
        epilog="""examples:
  loopjam chart preview song.chart -o song.png --audio song.mp3
  loopjam chart preview 3fa2c1d0e4b5a6978812ab34 -o hard.png --difficulty hard --start 30 --end 60
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("chart", metavar="CHART",
                   help="chart file, or chart id (or unique prefix) in the local store")
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="image file to write")
    p.add_argument("--audio", metavar="FILE",
                   help="the song's audio, drawn as a spectrogram (default: the file the chart "
                        "was analyzed from)")
    p.add_argument("--difficulty", choices=("easy", "medium", "hard", "expert"),
                   help="which notes (default: the hardest in the chart)")
    p.add_argument("--start", type=number(float), default=0.0, metavar="S", help="from S seconds")
    p.add_argument("--end", type=number(float), metavar="S", help="to S seconds (default: the end)")
    p.add_argument("--row", type=number(float), default=15.0, metavar="S", help="seconds per row")
    p.add_argument("--width", type=int, default=1800, metavar="PX", help="image width")
    p.set_defaults(func=run_preview)


#: The ``loopjam chart`` subcommands, in help order.
SUBCOMMANDS = (_register_show, _register_validate, _register_preview)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "chart", help="show and validate chart files",
        description="Inspect LoopJam chart files and charts in the local store.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="action", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(commands)
