"""``loopjam identify AUDIO``: which stored chart is this audio, and where in it does it start."""
from __future__ import annotations

import argparse
import os
import sys

from companion.cli import CommandError, emit_json
from companion.cli._types import server_url

EPILOG = """\
examples:
  loopjam identify clip.wav
  loopjam identify recording.mp3 --json
  loopjam identify clip.ogg --remote http://charts.example:8750 --json

The audio can be a few seconds from anywhere in a song (5 s or more is reliable). Matching
uses the local store first, then the server given with --remote (fingerprints are sent,
never audio). --json prints one line:
  {"match": null | {"chart_id","title","artist","offset_s","confidence"}}
where offset_s is the chart time (seconds) of the audio's first sample.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "identify", help="recognise a song from a few seconds of audio",
        description="Fingerprint AUDIO and find the stored chart it comes from.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", metavar="AUDIO", help="audio file (wav, ogg, flac, mp3, ...)")
    parser.add_argument("--remote", metavar="URL", type=server_url,
                        default=os.environ.get("LOOPJAM_REMOTE"),
                        help="also ask this chart server (default: $LOOPJAM_REMOTE)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


#: Seconds of audio that identify a song reliably (benchmarks/identify: top-1 from 5 s of
#: degraded playback; 3 s ranks the right song first but cannot tell an unknown one).
RELIABLE_S = 5.0


def run(args) -> int:
    from analyzer.decode import DecodeError, load
    from chart_store.chart import song_name
    from chart_store.fingerprint import fingerprint
    from chart_store.resolver import ChartResolver

    try:
        y, sr = load(args.audio, mono=True)
    except DecodeError as error:
        raise CommandError(str(error)) from None
    resolver = ChartResolver(remote_url=args.remote)
    match = resolver.identify(fingerprint(y, sr))
    if args.json:
        emit_json({"match": match.to_json() if match else None})
    elif match is None:
        print("no match")
    else:
        print(f"{song_name(match.artist, match.title)}  [{match.chart_id}]  "
              f"at {match.offset_s:.2f} s  (confidence {match.confidence:.2f})")
    if match is None and resolver.remote_error is not None:
        print(f"loopjam: identify: the chart server {args.remote} failed "
              f"({resolver.remote_error}): only the local store was asked", file=sys.stderr)
    seconds = y.shape[-1] / sr
    if match is None and seconds < RELIABLE_S:  # too little to tell, not an unknown song
        print(f"loopjam: identify: {args.audio} is only {seconds:.1f} s of audio: "
              f"{RELIABLE_S:g} s or more identifies reliably", file=sys.stderr)
    return 0
