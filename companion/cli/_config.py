"""The user's config as a command reads it: a bad file is a one-line error, not a traceback."""
from __future__ import annotations

from companion.cli import CommandError


def user_config():
    """:func:`companion.config.load_config`, with :class:`ConfigError` as a CommandError."""
    from companion.config import ConfigError, load_config

    try:
        return load_config()
    except ConfigError as error:
        raise CommandError(str(error)) from None
