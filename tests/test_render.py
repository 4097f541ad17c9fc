"""How chat lines look: timestamps, word wrap, and rows drawn straight from a message."""

from __future__ import annotations

import os
import time

import pytest
from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from tui_chat.protocol import Message
from tui_chat.render import CONTINUATION, MessageLine, clock, row_plain, wrap_ranges

TS = 1_763_717_400_000  # 09:30 UTC
BASE = Style.parse("#e0e0e0 on #1e1e1e")
LINES = [
    MessageLine(Message(number, TS, nick, text, kind), "bob")
    for number, (nick, text, kind) in enumerate([
        ("alice", "hello there, this is a line long enough to wrap", "chat"),
        ("bob", "my own words in bold, long enough to wrap twice", "chat"),
        ("carol", "waves at everyone in the room, at length", "action"),
        ("x", "the server restarts in five minutes\nsave your work", "system"),
        ("dave", "col\tumns\tafter tabs, and then some more", "chat"),
        ("名前", "日本語のテキストはセルを二つずつ使います。折り返し", "chat"),
    ], 1)
]


def test_wrap_ranges_break_at_spaces_and_fold_long_words() -> None:
    """Rows break at the last space that fits (dropping it), long words are cut, and
    line breaks always start a new row; rows a paragraph wraps onto are indented (and
    have that much less room)."""
    text = "aaa bbb ccc dddddddddd e\nf"
    rows = [" " * indent + text[start:end] for start, end, indent in wrap_ranges(text, 7)]
    assert rows == ["aaa bbb", "ccc", "ddddddd", "ddd e", "f"]
    rows = [" " * indent + text[start:end] for start, end, indent in wrap_ranges(text, 7, 2)]
    assert rows == ["aaa bbb", "  ccc", "  ddddd", "  ddddd", "  e", "f"]


def test_wrap_ranges_measure_wide_characters_in_cells() -> None:
    """A wide character takes two cells; one wider than the row still gets a row."""
    text = "名前テスト abc"  # 10 cells, a space, 3
    rows = [text[start:end] for start, end, _ in wrap_ranges(text, 8)]
    assert rows == ["名前テス", "ト abc"]
    assert [text[s:e] for s, e, _ in wrap_ranges("名前", 1)] == ["名", "前"]


@pytest.mark.parametrize("line", LINES, ids=lambda line: line.message.kind + str(line.message.id))
def test_the_plain_text_a_line_is_wrapped_by_is_the_text_it_shows(line: MessageLine) -> None:
    """`plain()` is exactly what `to_text()` shows, for every kind of message (a system
    message is laid out without a nickname)."""
    assert line.plain() == line.to_text().plain


@pytest.mark.parametrize("width", [12, 25, 40, 200])
@pytest.mark.parametrize("line", LINES, ids=lambda line: line.message.kind + str(line.message.id))
def test_a_row_drawn_from_its_message_looks_like_the_row_cut_from_rich_text(
        line: MessageLine, width: int) -> None:
    """Every wrapped row drawn straight from the message has the same text and styles, cell
    for cell, as that row cut from the line's Rich Text and rendered by Rich."""
    console = Console(width=300, color_system="truecolor")
    for start, end, indent in wrap_ranges(line.plain(), width, len(CONTINUATION)):
        cut = line.to_text()[start:end]
        text = Text.assemble(" " * indent, cut) if indent else cut
        rich = Strip(text.render(console), text.cell_len).apply_style(BASE)
        drawn = Strip(line.segments(start, end, indent, BASE))
        assert list(drawn) == list(rich)
        assert drawn.cell_length == rich.cell_length
        assert row_plain((line, (start, end, indent))) == text.plain  # what text() gives


@pytest.mark.parametrize("line", [line for line in LINES if "\n" not in line.plain()],
                         ids=lambda line: line.message.kind + str(line.message.id))
def test_a_line_on_one_row_is_drawn_whole(line: MessageLine) -> None:
    """`segments` with no end draws the whole line, as Rich renders its Text."""
    console = Console(width=300, color_system="truecolor")
    text = line.to_text()
    rich = Strip(text.render(console), text.cell_len).apply_style(BASE)
    assert list(Strip(line.segments(0, None, 0, BASE))) == list(rich)


def test_timestamps_follow_a_change_of_time_zone() -> None:
    """The time shown is local, and a change of zone in the process shows at once."""
    zone = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "UTC"
        time.tzset()
        assert clock(TS) == "09:30"
        os.environ["TZ"] = "Asia/Kolkata"  # UTC+05:30
        time.tzset()
        assert clock(TS) == "15:00"
        assert clock(TS + 59_999) == "15:00" and clock(TS + 60_000) == "15:01"
        for zone, shown in (("Asia/Shanghai", "17:30"), ("America/Regina", "03:30")):
            os.environ["TZ"] = zone  # both are called CST
            time.tzset()
            assert clock(TS) == shown
    finally:
        if zone is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = zone
        time.tzset()
