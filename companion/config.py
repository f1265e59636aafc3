"""The user's settings: a TOML file, ``loopjam_home()/config.toml``.

Sections and keys (every key has a default, so an empty or missing file is a valid config)::

    [audio]    source = "loopback"   sink = ""   backend = "auto"
    [game]     difficulty = "expert"  lanes = 5  player = "keyboard"  keys = []
    [offsets]  audio_ms = 0.0  video_ms = 0.0  input_ms = 0.0
    [store]    remote_url = ""  token = ""
    [removal]  mask_mode = "drop-missed"      # or "hit-only", "off"
    [overlay]  width, height, x, y, scroll_speed, opacity, lane_colors... (OverlayStyle's fields)

Values are checked on load and on ``set``; a bad one raises :class:`ConfigError` naming the key
and why (``game.lanes = 9: must be 4..7``). Keys are addressed as ``section.name``.

Examples
--------
>>> cfg = load_config()                      # defaults where the file is missing
>>> cfg = cfg.with_value("game.lanes", "6")  # parsed and checked
>>> cfg.game.lanes
6
>>> cfg.with_value("game.lanes", "9")
Traceback (most recent call last):
companion.config.ConfigError: game.lanes = 9: must be 4..7
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chart_store.chart import DIFFICULTIES, MAX_LANES, MIN_LANES
from companion.game.calibration import Offsets
from companion.game.players import KEY_NAMES
from companion.overlay.style import OverlayStyle, StyleError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Config", "AudioSettings", "GameSettings", "StoreSettings", "RemovalSettings",
    "ConfigError", "config_path", "load_config", "save_config", "MASK_MODES",
]

MASK_MODES = ("drop-missed", "hit-only", "off")


class ConfigError(ValueError):
    """A config value (or the file) that cannot be used; the message names the key."""


@dataclass(frozen=True)
class AudioSettings:
    source: str = "loopback"     # loopback[:DEVICE] or an audio file
    sink: str = ""               # output device ("" = the default output)
    backend: str = "auto"        # auto | soundcard | pyaudio | null (LOOPJAM_AUDIO wins)


@dataclass(frozen=True)
class GameSettings:
    difficulty: str = "expert"
    lanes: int = 5               # the most lanes played (a chart with more is folded onto
                                 # them), and the lanes of the charts made here
    player: str = "keyboard"
    keys: tuple[str, ...] = ()   # key name per lane; empty = the default layout for `lanes`


@dataclass(frozen=True)
class StoreSettings:
    remote_url: str = ""
    token: str = ""


@dataclass(frozen=True)
class RemovalSettings:
    mask_mode: str = "drop-missed"


@dataclass(frozen=True)
class Config:
    """All settings, one frozen dataclass per TOML section."""

    audio: AudioSettings = field(default_factory=AudioSettings)
    game: GameSettings = field(default_factory=GameSettings)
    offsets: Offsets = field(default_factory=Offsets)
    store: StoreSettings = field(default_factory=StoreSettings)
    removal: RemovalSettings = field(default_factory=RemovalSettings)
    overlay: OverlayStyle = field(default_factory=OverlayStyle)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain dict (TOML/JSON-ready; None values left out, tuples as lists)."""
        out = {}
        for section in dataclasses.fields(self):
            values = dataclasses.asdict(getattr(self, section.name))
            out[section.name] = {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in values.items() if v is not None}
        return out

    def get(self, key: str) -> Any:
        section, name = _split(key)
        return getattr(getattr(self, section), name)

    def with_value(self, key: str, value: Any) -> "Config":
        """A copy with ``key`` set; strings are parsed to the key's type. Checked."""
        section, name = _split(key)
        current = getattr(self, section)
        parsed = _parse(key, _field_type(type(current), name), value)
        return _checked(dataclasses.replace(self, **{
            section: _build(section, type(current), {**dataclasses.asdict(current),
                                                    name: parsed})}))


_SECTIONS = tuple(f.name for f in dataclasses.fields(Config))


def _section_class(name: str):
    return {"audio": AudioSettings, "game": GameSettings, "offsets": Offsets,
            "store": StoreSettings, "removal": RemovalSettings, "overlay": OverlayStyle}[name]


def _split(key: str) -> tuple[str, str]:
    section, _, name = key.partition(".")
    if section not in _SECTIONS:
        raise ConfigError(f"{key}: unknown section {section!r}; sections: "
                          f"{', '.join(_SECTIONS)}")
    names = [f.name for f in dataclasses.fields(_section_class(section))]
    if name not in names:
        raise ConfigError(f"{key}: unknown key; {section} has {', '.join(names)}")
    return section, name


def _field_type(cls, name: str) -> str:
    return next(f.type for f in dataclasses.fields(cls) if f.name == name)


def _parse(key: str, type_: str, value: Any) -> Any:
    """Coerce ``value`` (from TOML, or a command-line string) to a field's annotated type."""
    type_ = str(type_)
    try:
        if type_.startswith("tuple"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError("must be a list of strings")
            return tuple(value)
        if "None" in type_ and (value is None or str(value).lower() in ("", "none")):
            return None
        if type_.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("must be a whole number")
            return int(value)
        if type_.startswith("float"):
            if isinstance(value, bool):
                raise ValueError("must be a number")
            return float(value)
        if type_.startswith("bool"):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError("must be true or false")
                return value.lower() in ("true", "yes", "1")
            return bool(value)
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key} = {value!r}: {error}") from None


def _build(section: str, cls, values: dict) -> Any:
    try:
        return cls(**values)
    except StyleError as error:
        raise ConfigError(str(error)) from None


def _checked(cfg: Config) -> Config:
    g = cfg.game
    unknown = [k for k in g.keys if k not in KEY_NAMES]
    problems = [
        ("game.difficulty", g.difficulty in DIFFICULTIES,
         f"must be one of {', '.join(DIFFICULTIES)}"),
        ("game.lanes", MIN_LANES <= g.lanes <= MAX_LANES, f"must be {MIN_LANES}..{MAX_LANES}"),
        ("game.player", g.player in ("keyboard", "autoplay", "miss-all")
         or g.player.startswith("replay:"), "must be keyboard, autoplay, miss-all or replay:FILE"),
        ("game.keys", not g.keys or len(g.keys) >= g.lanes,
         f"needs one key per lane ({g.lanes}) or none for the defaults"),
        ("game.keys", not unknown,
         f"unknown key {unknown[0]!r}; keys are letters, digits, num_0..num_9, f1..f12, space, "
         "semicolon, comma, period, slash, left, right, up, down..." if unknown else ""),
        ("game.keys", len(set(g.keys)) == len(g.keys), "a key can play one lane only"),
        ("audio.backend", cfg.audio.backend in ("auto", "soundcard", "pyaudio", "null"),
         "must be auto, soundcard, pyaudio or null"),
        ("removal.mask_mode", cfg.removal.mask_mode in MASK_MODES,
         f"must be one of {', '.join(MASK_MODES)}"),
        ("store.remote_url", not cfg.store.remote_url
         or cfg.store.remote_url.startswith(("http://", "https://")),
         "must start with http:// or https://"),
    ]
    problems += [(f"offsets.{name}", -1000 <= ms <= 1000, "must be within -1000..1000 ms")
                 for name, ms in (("audio_ms", cfg.offsets.audio_ms),
                                  ("video_ms", cfg.offsets.video_ms),
                                  ("input_ms", cfg.offsets.input_ms))]
    for key, ok, why in problems:
        if not ok:
            raise ConfigError(f"{key} = {cfg.get(key)!r}: {why}")
    return cfg


def config_path() -> Path:
    """Where the config lives: ``loopjam_home()/config.toml``."""
    from chart_store.home import loopjam_home
    return loopjam_home() / "config.toml"


def load_config(path: str | Path | None = None) -> Config:
    """Read and check the config (defaults for everything missing; no file = all defaults)."""
    path = Path(path) if path is not None else config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    sections = {}
    for section, values in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}]; sections: "
                              f"{', '.join(_SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section} must be a [section]")
        cls = _section_class(section)
        parsed = {}
        for name, value in values.items():
            _split(f"{section}.{name}")
            parsed[name] = _parse(f"{section}.{name}", _field_type(cls, name), value)
        sections[section] = _build(section, cls, parsed)
    return _checked(Config(**sections))


def save_config(cfg: Config, path: str | Path | None = None) -> Path:
    """Write ``cfg`` as TOML (atomically); returns the path."""
    import os

    import tomli_w
    path = Path(path) if path is not None else config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(cfg.to_dict()), encoding="utf-8")
    os.replace(tmp, path)
    return path
