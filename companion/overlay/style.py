"""How the overlay looks, and where things go: pure geometry, no pyglet.

Coordinates are window pixels with the origin at the bottom left (OpenGL's convention). The
window is a HUD band of :attr:`OverlayStyle.hud_height` pixels at the top (title, score,
progress) over the highway: ``lanes`` columns of ``lane_width`` pixels, centred, with the hit
line ``hit_line`` pixels above the bottom. A note at chart time ``t`` is centred
``(t - now) * scroll_speed`` pixels above the hit line. Everything outside the highway, the text
and the progress bar is fully transparent.

Examples
--------
>>> style = OverlayStyle(width=400, height=600, lane_width=60, hit_line=100, scroll_speed=500)
>>> note_y(t=2.0, now=1.5, style=style)
350.0
>>> lane_x(lane=0, lanes=5, style=style)       # 5 lanes of 60 px, centred in 400
50.0
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "OverlayStyle", "StyleError", "DEFAULT_LANE_COLORS", "parse_color", "note_y", "lane_x",
    "highway_top", "image_row",
]

#: Lane colours left to right (the guitar-game convention for the first five).
DEFAULT_LANE_COLORS = ("#2ecc40", "#ff4136", "#ffdc00", "#0074d9", "#ff851b", "#b10dc9",
                       "#39cccc")

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


class StyleError(ValueError):
    """A style value out of range (names the field)."""


def parse_color(value: str) -> tuple[float, float, float, float]:
    """``"#rrggbb"`` or ``"#rrggbbaa"`` → RGBA floats in 0..1."""
    match = _HEX.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise StyleError(f"colour {value!r} is not #rrggbb or #rrggbbaa")
    hex_ = match.group(1) + (match.group(2) or "ff")
    return tuple(int(hex_[i:i + 2], 16) / 255.0 for i in range(0, 8, 2))


@dataclass(frozen=True)
class OverlayStyle:
    """Size, position, speed, opacity and colours of the overlay.

    ``x``/``y`` place the window's top-left corner on the screen (None: the window manager
    decides); ``scroll_speed`` is pixels per second of chart time; ``opacity`` scales everything
    drawn, ``backdrop_opacity`` the lanes' dark backing; ``click_through`` lets the mouse reach
    the window below ("auto": only when no one plays on the keyboard, since a click-through
    window cannot take the keyboard focus on most desktops).
    """

    width: int = 560
    height: int = 720
    x: int | None = None
    y: int | None = None
    lane_width: int = 72
    note_height: int = 18
    hit_line: int = 110
    hud_height: int = 84
    scroll_speed: float = 700.0
    opacity: float = 1.0
    backdrop_opacity: float = 0.45
    font_size: int = 15
    font_name: str = "DejaVu Sans"
    lane_colors: tuple[str, ...] = DEFAULT_LANE_COLORS
    text_color: str = "#ffffff"
    miss_color: str = "#6b6b6b"
    star_color: str = "#c8f4ff"   # the notes of a star power phrase (a human chart marks them)
    backdrop_color: str = "#101018"
    click_through: str = "auto"
    max_fps: int = 240

    def __post_init__(self):
        checks = {
            "width": self.width >= 200, "height": self.height >= 240,
            "lane_width": self.lane_width >= 8, "note_height": 2 <= self.note_height <= 200,
            "hit_line": 0 <= self.hit_line < self.height - self.hud_height,
            "hud_height": 0 <= self.hud_height < self.height,
            "scroll_speed": self.scroll_speed > 0, "opacity": 0 <= self.opacity <= 1,
            "backdrop_opacity": 0 <= self.backdrop_opacity <= 1,
            "font_size": 4 <= self.font_size <= 200, "max_fps": self.max_fps >= 1,
            "click_through": self.click_through in ("auto", "yes", "no"),
        }
        for name, ok in checks.items():
            if not ok:
                raise StyleError(f"overlay.{name} = {getattr(self, name)!r} is out of range")
        if len(self.lane_colors) < 7:
            raise StyleError("overlay.lane_colors needs 7 colours (one per possible lane)")
        for color in (*self.lane_colors, self.text_color, self.miss_color, self.star_color,
                      self.backdrop_color):
            parse_color(color)

    @property
    def highway_height(self) -> int:
        return self.height - self.hud_height

    def lookahead_s(self) -> float:
        """Seconds of chart visible above the hit line."""
        return (self.highway_height - self.hit_line) / self.scroll_speed


def highway_left(lanes: int, style: OverlayStyle) -> float:
    """x of the highway's left edge, pixels."""
    return (style.width - lanes * style.lane_width) / 2.0


def lane_x(*, lane: int, lanes: int, style: OverlayStyle) -> float:
    """x of lane ``lane``'s left edge, pixels."""
    return highway_left(lanes, style) + lane * style.lane_width


def note_y(*, t: float, now: float, style: OverlayStyle) -> float:
    """y of the centre of a note at chart time ``t`` when the game time is ``now``, pixels."""
    return style.hit_line + (t - now) * style.scroll_speed


def highway_top(style: OverlayStyle) -> int:
    """y of the highway's top edge (the bottom of the HUD band), pixels."""
    return style.highway_height


def image_row(y: float, style: OverlayStyle) -> float:
    """Row (from the top, as in a screenshot) of the pixel whose centre is at height ``y``."""
    return style.height - y - 0.5
