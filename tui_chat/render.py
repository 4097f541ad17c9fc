"""How chat lines look: Rich `Text` built from untrusted strings, never from markup."""

from __future__ import annotations

import time
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from rich.cells import cell_len
from rich.text import Text

from tui_chat.protocol import Message, nick_key, now_ms

# Readable on dark and light backgrounds; a nickname keeps its colour everywhere, always.
NICK_COLOURS = (
    "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2",
    "#d19a66", "#ff79c6", "#8be9fd", "#50fa7b", "#bd93f9", "#f1fa8c",
)
SYSTEM_STYLE = "italic #9a9a9a"
ERROR_STYLE = "bold #ff6b6b"
TIME_STYLE = "#7a7a7a"
# A tab is shown as spaces up to the next multiple of TAB_SIZE columns (from the start of its
# line), as a terminal would draw it: a raw tab measures 0 cells but is drawn wide.
TAB_SIZE = 8


def nick_colour(nick: str) -> str:
    """The stable colour of a nickname (the same for every case and width of it)."""
    return NICK_COLOURS[zlib.crc32(nick_key(nick).encode()) % len(NICK_COLOURS)]


def clock(ts_ms: int | None) -> str:
    """`HH:MM` in local time for a server timestamp (now when None)."""
    return time.strftime("%H:%M", time.localtime((now_ms() if ts_ms is None else ts_ms) / 1000))


CONTINUATION = " " * 6  # lines after a message's first start under its nickname


def body(text: str) -> str:
    """A message's text as the log shows it: the lines after the first indented, so none
    of them can pass for a log line of its own (a time, a nickname, a '—' notice)."""
    return text.replace("\n", "\n" + CONTINUATION) if "\n" in text else text


def message_line(message: Message, me: str) -> Text:
    """A chat, action or system message as one log line."""
    if message.kind == "system":
        return system_line(message.text, message.ts)
    own = nick_key(message.nick) == nick_key(me)
    colour = nick_colour(message.nick)
    nick_style = f"bold {colour} reverse" if own else f"bold {colour}"
    line = Text.assemble((clock(message.ts), TIME_STYLE), " ", no_wrap=False)
    if message.kind == "action":
        line.append("* ", colour)
        line.append(message.nick, nick_style)
        line.append(" ")
        line.append(body(message.text), f"italic {colour}")
    else:
        line.append(message.nick, nick_style)
        line.append(" ")
        line.append(body(message.text), "bold" if own else "")
    if "\t" in message.text:
        line.expand_tabs(TAB_SIZE)
    return line


@dataclass(frozen=True, slots=True)
class MessageLine:
    """A chat message waiting to be shown: its Rich Text is built only when it is on screen."""

    message: Message
    me: str

    def to_text(self) -> Text:
        return message_line(self.message, self.me)

    def width(self) -> int:
        """Cells the line takes on one row (exact when the text has no line break)."""
        message = self.message
        return 7 + cell_len(message.nick) + cell_len(message.text) + (
            2 if message.kind == "action" else 0)

    def single_row(self) -> bool:
        """True when `width()` is exact: no line break and no tab to expand."""
        text = self.message.text
        return "\n" not in text and "\t" not in text

    def plain(self) -> str:
        """The line's text exactly as `to_text()` lays it out, without styles (tabs are
        expanded by character count, which is exact for the ASCII text it is wrapped for)."""
        message = self.message
        action = "* " if message.kind == "action" else ""
        plain = f"{clock(message.ts)} {action}{message.nick} {body(message.text)}"
        return plain.expandtabs(TAB_SIZE) if "\t" in message.text else plain


@dataclass(frozen=True, slots=True)
class Row:
    """One screen row of a wrapped line: characters `start` to `end` of it, after `indent`
    spaces (a row a long line wraps onto starts under the nickname, like a line break's)."""

    line: MessageLine
    start: int
    end: int
    indent: int = 0

    def to_text(self) -> Text:
        row = self.line.to_text()[self.start:self.end]
        return Text.assemble(" " * self.indent, row) if self.indent else row


def wrap_ranges(plain: str, width: int, indent: int = 0) -> list[tuple[int, int, int]]:
    """Greedy word wrap: (start, end, indent) of each row, breaking at spaces (a space at a
    break is dropped) and folding words longer than a row. A row that a paragraph wraps
    onto is indented by `indent` cells, so it cannot pass for a line of its own. Widths are
    terminal cells (a wide character takes two)."""
    # Cells before each character (ASCII: one each, so the offsets themselves).
    cells = None if plain.isascii() else [0, *accumulate(map(cell_len, plain))]
    ranges: list[tuple[int, int, int]] = []
    position = 0
    for paragraph in plain.split("\n"):
        start, stop = position, position + len(paragraph)
        first = len(ranges)
        room, shift = width, 0  # the first row of a paragraph has the full width
        while (stop - start if cells is None else cells[stop] - cells[start]) > room:
            if cells is None:
                end = start + room
            else:  # the longest run that fits, and at least one character
                end = max(bisect_right(cells, cells[start] + room, start, stop + 1) - 1,
                          start + 1)
            cut = plain.rfind(" ", start + 1, end + 1)
            if cut <= start:
                ranges.append((start, end, shift))
                start = end
            else:
                ranges.append((start, cut, shift))
                start = cut + 1
            room, shift = max(1, width - indent), min(indent, width - 1)
        if start < stop or len(ranges) == first:  # an empty paragraph still takes a row
            ranges.append((start, stop, shift))
        position = stop + 1
    return ranges


def system_line(text: str, ts_ms: int | None = None, style: str = SYSTEM_STYLE) -> Text:
    """A line from the server or this app: joins, leaves, renames, errors, hints."""
    return Text.assemble((clock(ts_ms), TIME_STYLE), " ", ("— ", style), (text, style))


def error_line(text: str) -> Text:
    return system_line(text, style=ERROR_STYLE)
