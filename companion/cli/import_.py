"""``loopjam import PATH... [--json]``: Frets on Fire / Clone Hero / YARG song folders → the store.

(The module is ``import_`` because ``import`` is a Python keyword; the command is ``import``.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from companion.cli import emit_json

EPILOG = """\
A song folder holds notes.mid or notes.chart, song.ini and the song's audio split into stems
(song.ogg, guitar.ogg, rhythm.ogg, bass.ogg, drums.ogg, vocals.ogg, keys.ogg; .ogg/.opus/.mp3/
.wav). The human chart (guitar first, else co-op, rhythm, bass, keys) becomes the chart; its
fingerprint is of the whole mix, so LoopJam finds it when you play the song anywhere, and a
human chart wins over one LoopJam generated for the same song. The stems stay on this machine.
Songs whose files have not changed since they were imported are not imported again (--force).

examples:
  loopjam import ~/games/clonehero/songs              every song folder under it
  loopjam import "Songs/Muldjord - Chaos God" --json  one JSON line per song
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import", help="import Frets on Fire / Clone Hero / YARG song folders",
        description="Import human-made charts (song folders) into the local chart store.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a song folder, or a folder of song folders (searched recursively)")
    parser.add_argument("--force", action="store_true",
                        help="import again songs whose files have not changed since their import")
    parser.add_argument("--json", action="store_true",
                        help='one JSON line per song: {"input","chart_id","title","artist",'
                             '"notes":{"expert":N,...}}, or {"input","error"} for a failure')
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from analyzer.formats import FormatError, find_song_folders, import_song, read_song_folder
    from chart_store.chart import song_name
    from chart_store.local import LocalStore
    from chart_store.stems import StemStore

    failures = 0

    def fail(path, error, *, named: bool = False) -> None:
        """One line for a failed input; ``named``: the error's text already names ``path``."""
        nonlocal failures
        failures += 1
        if args.json:
            emit_json({"input": str(path), "error": str(error)})
        else:
            where = "" if named else f" {path}"
            tqdm.write(f"loopjam: import{where}: {error}", file=sys.stderr)

    def report(folder, chart_id, chart) -> None:
        notes = {name: len(track) for name, track in chart.difficulties.items()}
        if args.json:
            emit_json({"input": str(folder), "chart_id": chart_id, "title": chart.meta.title,
                       "artist": chart.meta.artist, "notes": notes})
        else:
            counts = ", ".join(f"{n} {d}" for d, n in notes.items())
            print(f"{chart_id}  {song_name(chart.meta.artist, chart.meta.title)}  ({counts})")

    songs = []
    for path in args.paths:
        packed = _packed_songs(path)
        for file in packed:
            fail(file, "a packed .sng song: LoopJam reads song folders (unpack it first)")
        try:
            songs += find_song_folders(path)
        except FormatError as error:  # names the path: no such folder, no song in it
            if not packed:
                fail(path, error, named=True)
    if not songs:
        return 1
    store, stems = LocalStore(), StemStore()
    try:
        for folder in tqdm(songs, desc="import", unit="song", file=sys.stderr,
                           disable=len(songs) < 2 or not sys.stderr.isatty()):
            try:
                parsed = read_song_folder(folder)
                digest = parsed.source_hash()
                known = None if args.force else store.chart_for_source(digest)
                if (known is not None and store.path(known).is_file()
                        and set(stems.names(known)) >= set(parsed.stems)):
                    report(folder, known, store.get(known))  # unchanged since its import
                    continue
                song = import_song(parsed)
                # Stems first: a chart in the store (with its source hash) means a whole import.
                for name, y in song.audio.items():
                    stems.put(song.chart.id, name, y, song.sr)
                chart_id = store.put(song.chart, source_hash=digest)
            except (ValueError, OSError) as error:  # FormatError, DecodeError, bad audio...
                fail(folder, error)
                continue
            report(folder, chart_id, song.chart)
    finally:
        store.close()
    return 1 if failures else 0  # each failure has had its own line


def _packed_songs(path) -> list[Path]:
    """The ``.sng`` files at or under ``path``: Clone Hero's one-file song packages."""
    from analyzer.formats.folder import walk

    path = Path(path)
    if path.suffix.lower() == ".sng":
        return [path]
    return sorted(Path(root) / name for root, _, files in walk(path)
                  for name in files if name.lower().endswith(".sng"))
