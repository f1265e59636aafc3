"""The overlay's OpenGL renderer (pyglet), and offscreen rendering to an image.

Notes are instanced draws: the whole track is uploaded once as instances (chart time, length,
lane, kind, colour), with the chart's beats as thin lines across the highway under them, and the
vertex shader places each at ``hit_line + (t - now) * scroll_speed``, so a frame costs one
uniform update and a draw per kind (beats, sustain tails, gems) however many notes are on
screen; per-note states (hit, missed, holding) are re-uploaded only when a new snapshot brings
them. Lanes, pads, the hit line, the title and status text are pyglet shapes and labels in
batches (re-laid out only when they change). The text that changes with every hit (score, combo,
accuracy, judgement) is drawn straight from the font's glyph atlas by :class:`_HudText`: a
pyglet label re-lays itself out in Python at about half a millisecond a change.

The framebuffer keeps premultiplied alpha (blend ``SRC_ALPHA, ONE_MINUS_SRC_ALPHA`` for colour,
``ONE, ONE_MINUS_SRC_ALPHA`` for alpha) and is cleared to transparent black, which is what
compositors expect from a transparent window.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from companion.overlay._pyglet import pyglet
from pyglet import gl  # noqa: E402  (after _pyglet, which sets pyglet's GL options)
from pyglet.graphics.shader import Shader, ShaderProgram

from chart_store.chart import Track
from companion.overlay.state import DrawState, GameSnapshot
from companion.overlay.style import (
    OverlayStyle, highway_left, highway_top, lane_x, parse_color,
)

__all__ = ["OverlayRenderer", "OffscreenRenderer", "JUDGEMENT_COLORS",
           "JUDGEMENT_SHOW_S"]

#: Colour of each judgement's text.
JUDGEMENT_COLORS = {"perfect": "#7fdbff", "great": "#2ecc40", "good": "#ffdc00",
                    "miss": "#ff4136"}
#: How long (game seconds) a judgement's text stays up.
JUDGEMENT_SHOW_S = 0.6

_STATUS_TEXT = {
    "waiting": "Waiting for music...",
    "identifying": "Listening... identifying the song",
    "recording": "No chart yet: recording this song to build one",
    "paused": "Paused",
}

_VERTEX = """#version 330 core
in vec4 a_note;    // chart time (s), length (s), lane, kind (0 gem, 1 sustain tail, 2 beat)
in vec4 a_color;
in float a_state;  // DrawState code
uniform float u_now;
uniform float u_speed;
uniform float u_hit_y;
uniform float u_left;
uniform float u_lane_w;
uniform float u_lanes;
uniform float u_note_h;
uniform vec2 u_size;
uniform vec4 u_miss_color;
uniform float u_opacity;
out vec4 v_color;

const vec2 CORNERS[6] = vec2[6](vec2(0, 0), vec2(1, 0), vec2(1, 1),
                                vec2(0, 0), vec2(1, 1), vec2(0, 1));

void main() {
    vec2 corner = CORNERS[gl_VertexID];
    int state = int(a_state + 0.5);
    bool tail = a_note.w > 0.5;
    float lx = u_left + a_note.z * u_lane_w;
    float y_head = u_hit_y + (a_note.x - u_now) * u_speed;
    vec4 color = a_color;
    float w, y0, y1;
    bool hidden = state == 3;                        // skipped
    if (a_note.w > 1.5) {                            // a beat: a line across every lane
        w = u_lanes * u_lane_w;
        lx = u_left + (w - u_lane_w) * 0.5;          // centred on the highway below
        y0 = y_head - 1.0;
        y1 = y_head + 1.0;
    } else if (tail) {
        w = u_lane_w * 0.24;
        y0 = y_head;
        y1 = u_hit_y + (a_note.x + a_note.y - u_now) * u_speed;
        color.a *= 0.7;
        if (state == 4) {                            // being held: eaten at the hit line
            y0 = max(y0, u_hit_y);
            color = vec4(mix(a_color.rgb, vec3(1.0), 0.35), 1.0);
        } else if (state == 2 || state == 5) {       // missed or dropped
            color = vec4(u_miss_color.rgb, 0.6);
        } else if (state == 1) {                     // held to its end
            hidden = true;
        }
    } else {
        w = u_lane_w * 0.8;
        y0 = y_head - u_note_h * 0.5;
        y1 = y_head + u_note_h * 0.5;
        if (state == 1 || state == 4 || state == 5) hidden = true;
        if (state == 2) color = u_miss_color;
    }
    if (hidden) {
        gl_Position = vec4(2.0, 2.0, 2.0, 1.0);      // outside the clip volume
    } else {
        float x = lx + (u_lane_w - w) * 0.5 + corner.x * w;
        float y = mix(y0, y1, corner.y);
        gl_Position = vec4(vec2(x, y) / u_size * 2.0 - 1.0, 0.0, 1.0);
    }
    // Gems shade from their colour at the bottom to lighter at the top (a per-vertex
    // gradient: per-fragment shading costs a software rasterizer several times more).
    float light = a_note.w > 0.5 ? 0.0 : corner.y * 0.4;
    v_color = vec4(mix(color.rgb, vec3(1.0), light), color.a * u_opacity);
}
"""

_FRAGMENT = """#version 330 core
in vec4 v_color;
out vec4 frag;
void main() {
    frag = v_color;
}
"""


_TEXT_VERTEX = """#version 330 core
in vec4 a_glyph;   // x, y (window pixels), u, v
uniform vec2 u_size;
out vec2 v_uv;
void main() {
    v_uv = a_glyph.zw;
    gl_Position = vec4(a_glyph.xy / u_size * 2.0 - 1.0, 0.0, 1.0);
}
"""

_TEXT_FRAGMENT = """#version 330 core
in vec2 v_uv;
uniform sampler2D u_glyphs;
uniform vec4 u_color;
out vec4 frag;
void main() {
    frag = vec4(u_color.rgb, u_color.a * texture(u_glyphs, v_uv).a);
}
"""

#: Corners of a glyph quad as two triangles: indices into (left, bottom, right, top).
_QUAD_X, _QUAD_Y = np.array([0, 2, 2, 0, 2, 0]), np.array([1, 1, 3, 1, 3, 3])


class _GlyphTable:
    """A font's glyphs as quads at the pen position, one row per character met so far."""

    def __init__(self, font):
        self.font = font
        self.index: dict[str, int] = {}
        self.quads = np.zeros((0, 6, 4), np.float32)   # per glyph: 6 vertices (x, y, u, v)
        self.advance = np.zeros(0, np.float32)
        self.owners: list = []                           # the atlas texture of each

    def rows(self, text: str) -> list[int]:
        """Row of each character of ``text`` (glyphs rendered on first use)."""
        index = self.index
        missing = [c for c in set(text) if c not in index]
        if missing:
            glyphs = [self.font.get_glyphs(c)[0][0] for c in missing]
            quads = np.empty((len(glyphs), 6, 4), np.float32)
            for quad, glyph in zip(quads, glyphs):
                t = glyph.tex_coords    # (u, v, r) per corner: bottom-left, -right, top-right
                box = np.array([*glyph.vertices, t[0], t[1], t[6], t[7]], np.float32)
                quad[:, 0], quad[:, 1] = box[_QUAD_X], box[_QUAD_Y]
                quad[:, 2], quad[:, 3] = box[4 + _QUAD_X], box[4 + _QUAD_Y]
            for c in missing:
                index[c] = len(index)
            self.quads = np.concatenate([self.quads, quads])
            self.advance = np.concatenate([self.advance,
                                           np.array([g.advance for g in glyphs], np.float32)])
            self.owners += [g.owner for g in glyphs]
        return [index[c] for c in text]


@dataclass
class _TextField:
    """One line of :class:`_HudText`: where it goes and what its quads show now."""

    font: object
    x: float
    y: float
    anchor_x: str
    anchor_y: str
    capacity: int                     # glyph quads it owns in the buffer
    first: int                        # the first of them
    text: str | None = None           # None: the quads need (re)writing
    color: tuple = (1.0, 1.0, 1.0, 1.0)
    runs: tuple = ()                  # (atlas texture, first quad, quads) to draw


class _HudText:
    """Single-line texts drawn from their fonts' glyph atlases, all from one vertex buffer.

    Each field owns ``capacity`` glyph quads of the buffer; setting its text looks the
    glyphs' boxes up (cached per character), places them with NumPy and rewrites only that
    field's quads. Anchors follow pyglet's labels (``anchor_x`` left/center/right,
    ``anchor_y`` top/center/baseline), so the text sits where a label would put it.
    """

    _QUAD_BYTES = 6 * 4 * 4   # per glyph: 6 vertices of float32 (x, y, u, v)

    def __init__(self):
        self.program = ShaderProgram(Shader(_TEXT_VERTEX, "vertex"),
                                     Shader(_TEXT_FRAGMENT, "fragment"))
        self.vao, self.vbo = gl.GLuint(), gl.GLuint()
        gl.glGenVertexArrays(1, ctypes.byref(self.vao))
        gl.glGenBuffers(1, ctypes.byref(self.vbo))
        self.fields: list[_TextField] = []
        self.quads = 0   # glyph quads the buffer holds
        self._glyphs: dict[object, _GlyphTable] = {}   # per font
        self._size: tuple[float, float] | None = None

    def add(self, *, font, x: float, y: float, anchor_x: str = "left", anchor_y: str = "baseline",
            capacity: int = 32) -> int:
        """A new field (set up time: the buffer is re-made); returns its handle."""
        first, self.quads = self.quads, self.quads + capacity
        self.fields.append(_TextField(font, x, y, anchor_x, anchor_y, capacity, first))
        gl.glBindVertexArray(self.vao)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.vbo)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, self.quads * self._QUAD_BYTES, None,
                        gl.GL_DYNAMIC_DRAW)
        loc = self.program.attributes["a_glyph"]["location"]
        gl.glEnableVertexAttribArray(loc)
        gl.glVertexAttribPointer(loc, 4, gl.GL_FLOAT, gl.GL_FALSE, 16, 0)
        gl.glBindVertexArray(0)
        for f in self.fields:
            f.text = None
        return len(self.fields) - 1

    def set(self, field: int, text: str, color: tuple[float, float, float, float]) -> None:
        """Show ``text`` (RGBA floats ``color``) in ``field``; cheap when nothing changed."""
        f = self.fields[field]
        f.color = color
        if text == f.text:
            return
        f.text = text
        glyphs = self._glyphs.get(f.font)
        if glyphs is None:
            glyphs = self._glyphs[f.font] = _GlyphTable(f.font)
        rows = glyphs.rows(text[:f.capacity])
        n = len(rows)
        f.runs = ()
        if not n:
            return
        index = np.array(rows)
        advance = glyphs.advance[index]
        width = int(advance.sum())
        font = f.font
        left = {"left": 0, "center": -(width // 2), "right": -width}[f.anchor_x]
        top = {"top": 0, "baseline": font.ascent,
               "center": font.ascent // 2 - font.descent // 4}[f.anchor_y]
        quads = glyphs.quads[index]                      # (n, 6, 4): x, y at the pen, u, v
        quads[..., 0] += (round(f.x) + left + np.cumsum(advance) - advance)[:, None]
        quads[..., 1] += round(f.y) + top - font.ascent
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.vbo)
        gl.glBufferSubData(gl.GL_ARRAY_BUFFER, f.first * self._QUAD_BYTES, quads.nbytes,
                           quads.ctypes.data)
        # A font's glyphs share one atlas texture until it fills up: a draw per texture.
        owners = [glyphs.owners[r] for r in rows]
        cuts = [0] + [i for i in range(1, n) if owners[i] is not owners[i - 1]] + [n]
        f.runs = tuple((owners[a], f.first + a, b - a) for a, b in zip(cuts, cuts[1:]))

    def draw(self, size: tuple[float, float]) -> None:
        """Draw every field (blending set up by the caller)."""
        if not any(f.runs for f in self.fields):
            return
        p = self.program
        p.use()
        if size != self._size:
            p["u_size"] = self._size = size
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindVertexArray(self.vao)
        bound = None
        for f in self.fields:
            if f.runs:
                p["u_color"] = f.color
            for texture, first, count in f.runs:
                if texture is not bound:
                    gl.glBindTexture(texture.target, texture.id)
                    bound = texture
                gl.glDrawArrays(gl.GL_TRIANGLES, first * 6, count * 6)
        gl.glBindVertexArray(0)
        p.stop()

    def delete(self) -> None:
        gl.glDeleteBuffers(1, ctypes.byref(self.vbo))
        gl.glDeleteVertexArrays(1, ctypes.byref(self.vao))
        self.program.delete()


def _blend_premultiplied() -> None:
    """The frame's blending: colours come straight, the framebuffer keeps premultiplied alpha."""
    gl.glEnable(gl.GL_BLEND)
    gl.glBlendFuncSeparate(gl.GL_SRC_ALPHA, gl.GL_ONE_MINUS_SRC_ALPHA,
                           gl.GL_ONE, gl.GL_ONE_MINUS_SRC_ALPHA)


class _PremultipliedTextGroup(pyglet.text.layout.TextLayoutGroup):
    def set_state(self) -> None:
        super().set_state()
        _blend_premultiplied()   # pyglet's blend writes alpha squared into the framebuffer


class _Label(pyglet.text.Label):
    """A pyglet label that keeps the frame's alpha premultiplied."""

    group_class = _PremultipliedTextGroup


class _PremultipliedShapeGroup(pyglet.shapes.Rectangle.group_class):
    def set_state(self) -> None:
        super().set_state()
        _blend_premultiplied()


class _Rectangle(pyglet.shapes.Rectangle):
    """A pyglet rectangle that keeps the frame's alpha premultiplied."""

    group_class = _PremultipliedShapeGroup


def _rgba(color: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    r, g, b, a = parse_color(color)
    return r, g, b, a * alpha


def _rgba255(color: str, alpha: float = 1.0) -> tuple[int, int, int, int]:
    r, g, b, a = _rgba(color, alpha)
    return int(r * 255), int(g * 255), int(b * 255), int(round(a * 255))


def _set_text(label, text: str) -> None:
    if label.text != text:
        label.text = text


def _in_star_power(times: np.ndarray, phrases: tuple) -> np.ndarray:
    """Which of the note start ``times`` (seconds) lie in a star power phrase of ``phrases``
    (its ends included, to a millisecond: a phrase ends on its last note's tick)."""
    inside = np.zeros(times.shape, bool)
    for phrase in phrases:
        if phrase.kind == "star_power":
            inside |= (times >= phrase.t - 1e-3) & (times <= phrase.end + 1e-3)
    return inside


class _NoteLayer:
    """The track's notes and the chart's beats as GPU instances, a draw call per kind."""

    def __init__(self):
        self.program = ShaderProgram(Shader(_VERTEX, "vertex"), Shader(_FRAGMENT, "fragment"))
        self.vao = gl.GLuint()
        gl.glGenVertexArrays(1, ctypes.byref(self.vao))
        buffers = (gl.GLuint * 2)()
        gl.glGenBuffers(2, buffers)
        self.static_vbo, self.state_vbo = buffers[0], buffers[1]
        attrs = self.program.attributes
        gl.glBindVertexArray(self.vao)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.static_vbo)
        for name, offset in (("a_note", 0), ("a_color", 16)):
            loc = attrs[name]["location"]
            gl.glEnableVertexAttribArray(loc)
            gl.glVertexAttribPointer(loc, 4, gl.GL_FLOAT, gl.GL_FALSE, 32, offset)
            gl.glVertexAttribDivisor(loc, 1)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.state_vbo)
        loc = attrs["a_state"]["location"]
        gl.glEnableVertexAttribArray(loc)
        gl.glVertexAttribPointer(loc, 1, gl.GL_FLOAT, gl.GL_FALSE, 4, 0)
        gl.glVertexAttribDivisor(loc, 1)
        gl.glBindVertexArray(0)
        self.track: Track | None = None
        self.colors: tuple | None = None
        self.beats: np.ndarray | None = None
        self.phrases: tuple = ()
        self.star_color = ""
        self.count = self.n_beats = self.n_tails = 0
        self.opaque_gems = False
        self.starts = np.zeros(0)
        self.max_dur = 0.0
        self.note_of = np.zeros(0, np.int64)   # instance -> note index
        self.states_src = None
        self.states = np.zeros(0, np.float32)
        self._uniforms_style: OverlayStyle | None = None   # what the uniforms were set for
        self._uniforms_lanes = 0
        self._opaque = False

    def set_track(self, track: Track | None, colors: tuple, beats: np.ndarray | None,
                  beat_color: tuple, phrases: tuple = (), star_color: str = "#ffffff") -> None:
        """Upload ``track``'s notes and the ``beats`` (chart seconds) drawn under them in
        ``beat_color`` (RGBA); the notes of a star power phrase of ``phrases`` in
        ``star_color``."""
        if (track is self.track and colors == self.colors and beats is self.beats
                and phrases is self.phrases and star_color == self.star_color):
            return
        self.track, self.colors, self.beats, self.states_src = track, colors, beats, None
        self.phrases, self.star_color = phrases, star_color
        self.opaque_gems = all(parse_color(c)[3] == 1.0 for c in colors)
        self._uniforms_style = None
        notes = track.notes if track is not None else ()
        beat_times = np.asarray(beats if track is not None and beats is not None else (),
                                np.float32)
        tails = [i for i, n in enumerate(notes) if n.dur > 0]
        self.note_of = np.array(tails + list(range(len(notes))), dtype=np.int64)  # tails below
        palette = np.array([parse_color(c) for c in colors], np.float32)
        lane = np.array([notes[i].lane for i in self.note_of], np.int64)
        b = beat_times.size
        data = np.zeros((b + self.note_of.size, 8), np.float32)   # beats, tails, gems
        data[:b, 0] = beat_times
        data[:b, 3] = 2.0                           # kind: beat line
        data[:b, 4:] = beat_color
        data[b:, 0] = [notes[i].t for i in self.note_of]
        data[b:, 1] = [notes[i].dur for i in self.note_of]
        data[b:, 2] = lane
        data[b:b + len(tails), 3] = 1.0             # kind: sustain tail
        data[b:, 4:] = palette[lane]
        starred = _in_star_power(data[b:, 0], phrases)
        data[b:][starred, 4:] = parse_color(star_color)
        self.count = data.shape[0]
        self.n_beats, self.n_tails = b, len(tails)
        self.starts = data[:, 0].astype(np.float64)   # ascending within each kind
        self.max_dur = float(data[:, 1].max()) if self.count else 0.0
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.static_vbo)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, max(data.nbytes, 4), data.ctypes.data,
                        gl.GL_STATIC_DRAW)
        self.states = np.zeros(self.count, np.float32)
        self._upload_states()

    def set_states(self, draw_states: np.ndarray | None) -> None:
        if draw_states is self.states_src:
            return
        self.states_src = draw_states
        if draw_states is None:
            self.states[:] = DrawState.PENDING
        else:
            self.states[self.n_beats:] = np.asarray(draw_states, np.float32)[self.note_of]
        self._upload_states()

    def _upload_states(self) -> None:
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.state_vbo)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, max(self.states.nbytes, 4), self.states.ctypes.data,
                        gl.GL_DYNAMIC_DRAW)

    def draw(self, *, now: float, style: OverlayStyle, lanes: int) -> None:
        if not self.count:
            return
        p = self.program
        p.use()
        if style is not self._uniforms_style or lanes != self._uniforms_lanes:
            # Uniforms keep their values: only the clock changes from frame to frame.
            self._uniforms_style, self._uniforms_lanes = style, lanes
            self._opaque = (self.opaque_gems and style.opacity == 1.0
                            and parse_color(style.miss_color)[3] == 1.0)
            p["u_speed"] = float(style.scroll_speed)
            p["u_hit_y"] = float(style.hit_line)
            p["u_left"] = float(highway_left(lanes, style))
            p["u_lane_w"] = float(style.lane_width)
            p["u_lanes"] = float(lanes)
            p["u_note_h"] = float(style.note_height)
            p["u_size"] = (float(style.width), float(style.height))
            p["u_miss_color"] = parse_color(style.miss_color)
            p["u_opacity"] = float(style.opacity)
        p["u_now"] = float(now)
        gl.glEnable(gl.GL_SCISSOR_TEST)       # notes never spill into the HUD band
        gl.glScissor(0, 0, style.width, highway_top(style))
        gl.glBindVertexArray(self.vao)
        # Only the instances that can be on screen: a start offset into the buffers per draw
        # (portable to GL 3.3, unlike glDrawArraysInstancedBaseInstance).
        late = now - style.hit_line / style.scroll_speed - 0.05
        early = now + style.lookahead_s() + 0.05
        b, t = self.n_beats, self.n_beats + self.n_tails
        for base, times, lo, blend in ((0, self.starts[:b], late, True),
                                       (b, self.starts[b:t], late - self.max_dur, True),
                                       (t, self.starts[t:], late, not self._opaque)):
            first, last = np.searchsorted(times, lo), np.searchsorted(times, early)
            if last > first:
                # Opaque gems skip blending: most of a dense frame's pixels are gems, and
                # blending is what a software rasterizer pays most for.
                (gl.glEnable if blend else gl.glDisable)(gl.GL_BLEND)
                self._point_at(base + first)
                gl.glDrawArraysInstanced(gl.GL_TRIANGLES, 0, 6, int(last - first))
        gl.glEnable(gl.GL_BLEND)
        gl.glBindVertexArray(0)
        gl.glDisable(gl.GL_SCISSOR_TEST)
        p.stop()

    def _point_at(self, first: int) -> None:
        """Make instance ``first`` the first one the next draw reads (VAO bound)."""
        attrs = self.program.attributes
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.static_vbo)
        for name, offset in (("a_note", 0), ("a_color", 16)):
            gl.glVertexAttribPointer(attrs[name]["location"], 4, gl.GL_FLOAT, gl.GL_FALSE, 32,
                                     int(first * 32 + offset))
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self.state_vbo)
        gl.glVertexAttribPointer(attrs["a_state"]["location"], 1, gl.GL_FLOAT, gl.GL_FALSE, 4,
                                 int(first * 4))

    def delete(self) -> None:
        buffers = (gl.GLuint * 2)(self.static_vbo, self.state_vbo)
        gl.glDeleteBuffers(2, buffers)
        gl.glDeleteVertexArrays(1, ctypes.byref(self.vao))
        self.program.delete()


class OverlayRenderer:
    """Draws snapshots into the current GL framebuffer (``style.width`` × ``style.height``).

    Needs a current OpenGL 3.3 context (a pyglet window's). Call :meth:`draw` every frame.
    """

    def __init__(self, style: OverlayStyle):
        self.style = style
        self.notes = _NoteLayer()
        self.under = pyglet.graphics.Batch()     # lane backdrops
        self.over = pyglet.graphics.Batch()      # hit line, pads, HUD, text
        self._lanes = 0
        self._lane_shapes: list = []
        self._pads: list = []
        self._pad_state: frozenset | None = None   # None: every pad needs its colour
        self._pad_colors: list = []
        s = style
        text = _rgba255(s.text_color, s.opacity)
        top = s.height
        font = dict(font_name=s.font_name, batch=self.over, color=text)
        self.title = _Label("", x=12, y=top - 14, anchor_y="top",
                                       font_size=s.font_size, weight="bold", **font)
        self.hud = _HudText()
        regular = pyglet.font.load(s.font_name, s.font_size)
        self.score = self.hud.add(font=regular, x=12, y=top - 46, anchor_y="top")
        self.combo = self.hud.add(font=regular, x=s.width // 2, y=top - 46, anchor_x="center",
                                  anchor_y="top")
        self.accuracy = self.hud.add(font=regular, x=s.width - 12, y=top - 46,
                                     anchor_x="right", anchor_y="top")
        self.judgement = self.hud.add(font=pyglet.font.load(s.font_name,
                                                            int(s.font_size * 1.8),
                                                            weight="bold"),
                                      x=s.width // 2, y=s.hit_line + 90, anchor_x="center",
                                      anchor_y="center", capacity=8)
        self._text_rgba = _rgba(s.text_color, s.opacity)
        self._beat_rgba = _rgba(s.text_color, 0.22 * s.opacity)
        self.message = _Label("", x=s.width // 2, y=int(s.highway_height * 0.6),
                                         anchor_x="center", anchor_y="center", multiline=True,
                                         width=s.width - 40, align="center",
                                         font_size=s.font_size, **font)
        self.progress_back = _Rectangle(0, top - 4, s.width, 4,
                                                     color=_rgba255(s.text_color, 0.25 * s.opacity),
                                                     batch=self.over)
        self.progress = _Rectangle(0, top - 4, 0, 4, color=text, batch=self.over)
        self._judgement_rgba = {result: _rgba(color, s.opacity)
                                for result, color in JUDGEMENT_COLORS.items()}

    def _build_lanes(self, lanes: int) -> None:
        s = self.style
        for shape in self._lane_shapes + self._pads:
            shape.delete()
        backdrop = _rgba255(s.backdrop_color, s.backdrop_opacity * s.opacity)
        edge = _rgba255(s.text_color, 0.18 * s.opacity)
        left, top = highway_left(lanes, s), highway_top(s)
        # The backdrop is a scissored clear (premultiplied), far cheaper than a blended quad.
        r, g, b, a = (c / 255 for c in backdrop)
        self._backdrop = ((r * a, g * a, b * a, a),
                          (int(left), 0, lanes * s.lane_width, top))
        self._lane_shapes = [_Rectangle(lane_x(lane=i, lanes=lanes, style=s), 0,
                                                      1, top, color=edge, batch=self.under)
                              for i in range(lanes + 1)]
        self._lane_shapes.append(_Rectangle(
            left, s.hit_line - 2, lanes * s.lane_width, 4,
            color=_rgba255(s.text_color, 0.9 * s.opacity), batch=self.over))
        pad_h = max(min(s.hit_line - 16, 34), 2)
        self._pads = [_Rectangle(lane_x(lane=i, lanes=lanes, style=s) + 6,
                                              s.hit_line - 10 - pad_h, s.lane_width - 12, pad_h,
                                              batch=self.over)
                      for i in range(lanes)]
        self._pad_colors = [(_rgba255(c, 0.25 * s.opacity), _rgba255(c, 0.95 * s.opacity))
                            for c in s.lane_colors[:lanes]]   # (released, pressed)
        self._lanes, self._pad_state = lanes, None

    def _update_pads(self, pressed: frozenset) -> None:
        if pressed == self._pad_state:
            return
        changed = range(self._lanes) if self._pad_state is None else pressed ^ self._pad_state
        for i in changed:
            if i < self._lanes:
                self._pads[i].color = self._pad_colors[i][i in pressed]
        self._pad_state = pressed

    def _update_hud(self, snap: GameSnapshot, now: float) -> None:
        s = self.style
        title = snap.title or ("" if snap.status in ("waiting", "identifying") else "Unknown song")
        _set_text(self.title, f"{title} - {snap.artist}" if snap.artist and title else title)
        playing = snap.status in ("synced", "paused", "ended") and snap.track is not None
        hud, text = self.hud, self._text_rgba
        hud.set(self.score, f"Score {snap.score:,}" if playing else "", text)
        hud.set(self.combo, f"Combo {snap.combo}  x{snap.multiplier}" if playing else "", text)
        hud.set(self.accuracy, f"Acc {snap.accuracy * 100:.1f}%" if playing else "", text)
        fraction = min(max(now / snap.duration_s, 0.0), 1.0) if snap.duration_s > 0 else 0.0
        width = round(s.width * fraction)   # whole pixels: a new width every few hundred ms
        if self.progress.width != width:
            self.progress.width = width
        j = snap.last_judgement
        show = (j is not None and snap.status in ("synced", "paused")
                and 0 <= now - j.time <= JUDGEMENT_SHOW_S)
        if show:
            hud.set(self.judgement, j.result.upper(), self._judgement_rgba[j.result])
        else:
            hud.set(self.judgement, "", text)
        _set_text(self.message, self._message(snap))

    @staticmethod
    def _message(snap: GameSnapshot) -> str:
        if snap.status == "ended":
            r = snap.results
            if r is None:
                return f"Song ended\nScore {snap.score:,}"
            return (f"Song ended\n\nScore {r.score:,}\nAccuracy {r.accuracy * 100:.1f}%\n"
                    f"Perfect {r.perfect}  Great {r.great}  Good {r.good}  Miss {r.misses}\n"
                    f"Max combo {r.max_combo}  Sustains {r.sustains_held}/{r.sustains}")
        text = _STATUS_TEXT.get(snap.status, "")
        return f"{text}\n{snap.message}" if snap.message and text else (text or snap.message)

    def draw(self, snap: GameSnapshot, now: float, *, pressed: frozenset = frozenset()) -> None:
        """Clear to transparent and draw ``snap`` at game time ``now`` (chart seconds)."""
        s = self.style
        lanes = snap.lanes
        if lanes != self._lanes:
            self._build_lanes(lanes)
        self._update_pads(frozenset(pressed) | snap.pressed)
        self._update_hud(snap, now)
        gl.glViewport(0, 0, s.width, s.height)
        gl.glClearColor(0.0, 0.0, 0.0, 0.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        color, box = self._backdrop
        gl.glEnable(gl.GL_SCISSOR_TEST)
        gl.glScissor(*box)
        gl.glClearColor(*color)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        gl.glDisable(gl.GL_SCISSOR_TEST)
        self.under.draw()
        self.notes.set_track(snap.track if snap.status != "ended" else None, s.lane_colors,
                             snap.beats, self._beat_rgba, snap.phrases, s.star_color)
        self.notes.set_states(snap.draw_states)
        _blend_premultiplied()
        self.notes.draw(now=now, style=s, lanes=lanes)
        self.over.draw()
        _blend_premultiplied()   # pyglet's groups leave blending off
        self.hud.draw((float(s.width), float(s.height)))

    def delete(self) -> None:
        self.notes.delete()
        self.hud.delete()


class OffscreenRenderer:
    """Renders snapshots to RGBA arrays through a framebuffer object (no visible window).

    Needs an X display (or any display pyglet can open a hidden window on).

    Examples
    --------
    >>> with OffscreenRenderer(OverlayStyle()) as r:          # doctest: +SKIP
    ...     rgba = r.render(snapshot, now=12.0)               # (height, width, 4) uint8
    """

    def __init__(self, style: OverlayStyle = OverlayStyle()):
        self.style = style
        config = gl.Config(major_version=3, minor_version=3, double_buffer=True)
        self.window = pyglet.window.Window(style.width, style.height, visible=False,
                                           caption="LoopJam (offscreen)", config=config)
        self.window.switch_to()
        self.texture = pyglet.image.Texture.create(style.width, style.height,
                                                   internalformat=gl.GL_RGBA8)
        self.fbo = pyglet.image.buffer.Framebuffer()
        self.fbo.attach_texture(self.texture, attachment=gl.GL_COLOR_ATTACHMENT0)
        self.renderer = OverlayRenderer(style)
        self._pixels = np.empty((style.height, style.width, 4), np.uint8)

    def render(self, snap: GameSnapshot, now: float, *,
               pressed: frozenset = frozenset()) -> np.ndarray:
        """``snap`` drawn at game time ``now``: (height, width, 4) uint8 RGBA, top row first."""
        self.window.switch_to()
        self.fbo.bind()
        self.renderer.draw(snap, now, pressed=pressed)
        gl.glFinish()
        gl.glReadPixels(0, 0, self.style.width, self.style.height, gl.GL_RGBA,
                        gl.GL_UNSIGNED_BYTE, self._pixels.ctypes.data)
        self.fbo.unbind()
        return self._pixels[::-1].copy()

    def close(self) -> None:
        self.window.switch_to()
        self.renderer.delete()
        self.fbo.delete()
        self.window.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
