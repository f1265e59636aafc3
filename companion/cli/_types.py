"""argparse value types the commands share: a number out of its range is a usage error naming
the flag (exit 2), not a failure deep inside a run (``serve --port 99999`` hung, ``play --block
0`` ran on empty blocks)."""
from __future__ import annotations

import argparse
import math


def number(kind: type, low: float = -math.inf, high: float | None = None):
    """A ``type=`` for argparse: a finite ``kind`` (int or float) within ``low..high``
    (inclusive; no upper bound when ``high`` is None). "nan" and "inf" are refused: they pass
    every comparison a range check makes.

    Examples
    --------
    >>> number(int, 1, 65535)("8750")
    8750
    >>> number(int, 1, 65535)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be 1..65535, got 0
    >>> number(float)("nan")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: not a finite number: 'nan'
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
        if value < low or (high is not None and value > high):
            bounds = f"at least {low:g}" if high is None else f"{low:g}..{high:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    parse.__name__ = kind.__name__   # argparse names the type in its "invalid int value"
    return parse


def server_url(text: str) -> str:
    """A ``type=`` for argparse: a chart server's address, http:// or https://.

    Examples
    --------
    >>> server_url("http://charts.example:8750")
    'http://charts.example:8750'
    >>> server_url("charts.example:8750")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must start with http:// or https://, got 'charts.example:8750'
    """
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"must start with http:// or https://, got {text!r}")
    return text
