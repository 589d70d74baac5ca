"""A stacked-bar chart as a PNG, in pure Python (``zlib`` and ``struct``).

The weekly cost report embeds one chart. E-mail clients show a PNG (attached inline, by
Content-ID) but not SVG, and a plotting library would be the only reason to add a stack of
native packages to every MWAA worker; bars, grid lines and a 5x7 pixel font are all this
chart needs. Output is deterministic: the same data gives the same bytes.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

Color = tuple[int, int, int]

# Okabe-Ito: distinguishable with the common forms of colour blindness; grey for "other".
PALETTE: tuple[Color, ...] = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (213, 94, 0), (204, 121, 167),
                              (86, 180, 233), (240, 228, 66))  # fmt: skip
OTHER: Color = (170, 170, 170)
INK: Color = (40, 40, 40)
GRID: Color = (225, 225, 225)
WHITE: Color = (255, 255, 255)

_GLYPHS: dict[str, tuple[str, ...]] = {  # 5x7, one string per row, '#' = ink
    '0': ('.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'),
    '1': ('..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'),
    '2': ('.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'),
    '3': ('#####', '...#.', '..#..', '...#.', '....#', '#...#', '.###.'),
    '4': ('...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'),
    '5': ('#####', '#....', '####.', '....#', '....#', '#...#', '.###.'),
    '6': ('..##.', '.#...', '#....', '####.', '#...#', '#...#', '.###.'),
    '7': ('#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'),
    '8': ('.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'),
    '9': ('.###.', '#...#', '#...#', '.####', '....#', '...#.', '.##..'),
    'a': ('.....', '.....', '.###.', '....#', '.####', '#...#', '.####'),
    'b': ('#....', '#....', '#.##.', '##..#', '#...#', '#...#', '####.'),
    'c': ('.....', '.....', '.###.', '#....', '#....', '#...#', '.###.'),
    'd': ('....#', '....#', '.##.#', '#..##', '#...#', '#...#', '.####'),
    'e': ('.....', '.....', '.###.', '#...#', '#####', '#....', '.###.'),
    'f': ('..##.', '.#..#', '.#...', '###..', '.#...', '.#...', '.#...'),
    'g': ('.....', '.####', '#...#', '#...#', '.####', '....#', '.###.'),
    'h': ('#....', '#....', '#.##.', '##..#', '#...#', '#...#', '#...#'),
    'i': ('..#..', '.....', '.##..', '..#..', '..#..', '..#..', '.###.'),
    'j': ('...#.', '.....', '..##.', '...#.', '...#.', '#..#.', '.##..'),
    'k': ('#....', '#....', '#..#.', '#.#..', '##...', '#.#..', '#..#.'),
    'l': ('.##..', '..#..', '..#..', '..#..', '..#..', '..#..', '.###.'),
    'm': ('.....', '.....', '##.#.', '#.#.#', '#.#.#', '#...#', '#...#'),
    'n': ('.....', '.....', '#.##.', '##..#', '#...#', '#...#', '#...#'),
    'o': ('.....', '.....', '.###.', '#...#', '#...#', '#...#', '.###.'),
    'p': ('.....', '.....', '####.', '#...#', '####.', '#....', '#....'),
    'q': ('.....', '.....', '.##.#', '#..##', '.####', '....#', '....#'),
    'r': ('.....', '.....', '#.##.', '##..#', '#....', '#....', '#....'),
    's': ('.....', '.....', '.###.', '#....', '.###.', '....#', '####.'),
    't': ('.#...', '.#...', '###..', '.#...', '.#...', '.#..#', '..##.'),
    'u': ('.....', '.....', '#...#', '#...#', '#...#', '#..##', '.##.#'),
    'v': ('.....', '.....', '#...#', '#...#', '#...#', '.#.#.', '..#..'),
    'w': ('.....', '.....', '#...#', '#...#', '#.#.#', '#.#.#', '.#.#.'),
    'x': ('.....', '.....', '#...#', '.#.#.', '..#..', '.#.#.', '#...#'),
    'y': ('.....', '.....', '#...#', '#...#', '.####', '....#', '.###.'),
    'z': ('.....', '.....', '#####', '...#.', '..#..', '.#...', '#####'),
    '-': ('.....', '.....', '.....', '#####', '.....', '.....', '.....'),
    '.': ('.....', '.....', '.....', '.....', '.....', '.##..', '.##..'),
    '$': ('..#..', '.####', '#.#..', '.###.', '..#.#', '####.', '..#..'),
    ':': ('.....', '.##..', '.##..', '.....', '.##..', '.##..', '.....'),
    '/': ('....#', '...#.', '...#.', '..#..', '.#...', '.#...', '#....'),
    '(': ('...#.', '..#..', '.#...', '.#...', '.#...', '..#..', '...#.'),
    ')': ('.#...', '..#..', '...#.', '...#.', '...#.', '..#..', '.#...'),
    ',': ('.....', '.....', '.....', '.....', '.##..', '..#..', '.#...'),
    '%': ('##..#', '##.#.', '...#.', '..#..', '.#...', '.#.##', '#..##'),
    '+': ('.....', '..#..', '..#..', '#####', '..#..', '..#..', '.....'),
    '=': ('.....', '.....', '#####', '.....', '#####', '.....', '.....'),
    '_': ('.....', '.....', '.....', '.....', '.....', '.....', '#####'),
    '?': ('.###.', '#...#', '....#', '...#.', '..#..', '.....', '..#..'),
    "'": ('..#..', '..#..', '.#...', '.....', '.....', '.....', '.....'),
    " ": (".....",) * 7,
}  # fmt: skip
GLYPH_W, GLYPH_H = 5, 7


def _glyph(char: str) -> str:
    """The glyph's rows joined; capitals use the small letters, unknown characters ``?``."""
    return "".join(_GLYPHS.get(char.lower()) or _GLYPHS["?"])


class Canvas:
    """An RGB pixel grid with the few drawing operations a bar chart needs."""

    def __init__(self, width: int, height: int, background: Color = WHITE):
        self.width, self.height = width, height
        self.rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x0 >= x1 or y0 >= y1:
            return
        span = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            self.rows[y][x0 * 3 : x1 * 3] = span

    def text(self, x: int, y: int, text: str, color: Color = INK, scale: int = 2, align: str = "left") -> int:
        """Draw ``text`` with its top at ``y``; return its width in pixels."""
        width = self.text_width(text, scale)
        if align == "right":
            x -= width
        elif align == "center":
            x -= width // 2
        for i, char in enumerate(text):
            bits = _glyph(char)
            left = x + i * (GLYPH_W + 1) * scale
            for row in range(GLYPH_H):
                for col in range(GLYPH_W):
                    if bits[row * GLYPH_W + col] == "#":
                        self.rect(
                            left + col * scale, y + row * scale, left + (col + 1) * scale, y + (row + 1) * scale, color
                        )
        return width

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        return max(len(text) * (GLYPH_W + 1) * scale - scale, 0)

    def png(self) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)  # filter type 0 on every row
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
        )


def nice_step(top: float, ticks: int = 5) -> float:
    """A round grid step (1, 2 or 5 x 10^n) giving about ``ticks`` lines up to ``top``."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def money(value: float) -> str:
    if value >= 1000:
        return f"${value / 1000:.1f}k".replace(".0k", "k")
    return f"${value:.0f}" if value >= 10 or value == 0 else f"${value:.2f}".rstrip("0").rstrip(".")


def stacked_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], title: str,
                 width: int = 820, height: int = 420) -> bytes:  # fmt: skip
    """PNG of one bar per label, stacked by series (name, one value per label), with a legend."""
    canvas = Canvas(width, height)
    legend_rows = math.ceil(len(series) / 3)
    left, right, top, bottom = 70, 16, 40, 44 + legend_rows * 22
    plot_h, plot_w = height - top - bottom, width - left - right
    canvas.text(left, 12, title, scale=2)
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    step = nice_step(max(totals, default=0))
    ceiling = step * max(1, math.ceil(max(totals, default=0) / step))
    for k in range(int(round(ceiling / step)) + 1):
        y = top + plot_h - round(k * step / ceiling * plot_h)
        canvas.rect(left, y, left + plot_w, y + 1, GRID)
        canvas.text(left - 8, y - 7, money(k * step), align="right")
    slot = plot_w / max(len(labels), 1)
    bar = max(2, int(slot * 0.7))
    label_every = max(1, math.ceil(len(labels) * Canvas.text_width("00-00") / (plot_w * 0.8)))
    for i, label in enumerate(labels):
        x = left + int(i * slot + (slot - bar) / 2)
        base = top + plot_h
        for s, (_, values) in enumerate(series):
            h = round(values[i] / ceiling * plot_h) if ceiling else 0
            color = OTHER if s >= len(PALETTE) or series[s][0] == "other" else PALETTE[s]
            canvas.rect(x, base - h, x + bar, base, color)
            base -= h
        if i % label_every == 0 or i == len(labels) - 1:
            canvas.text(x + bar // 2, top + plot_h + 8, label, align="center")
    canvas.rect(left, top + plot_h, left + plot_w, top + plot_h + 1, INK)
    for s, (name, _) in enumerate(series):
        col, row = s % 3, s // 3
        x, y = left + col * (plot_w // 3), height - bottom + 32 + row * 22
        color = OTHER if s >= len(PALETTE) or name == "other" else PALETTE[s]
        canvas.rect(x, y, x + 14, y + 14, color)
        canvas.text(x + 20, y, name[:30])
    return canvas.png()
