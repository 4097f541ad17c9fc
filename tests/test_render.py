"""How chat lines look: timestamps, word wrap, and rows drawn straight from a message."""

from __future__ import annotations

import time

import pytest
from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

import tui_chat.render
from tui_chat.protocol import NICK_TAKEN, NICK_UNCHANGED, Error, Message, now_ms
from tui_chat.render import (
    CONTINUATION,
    DayMarks,
    MessageLine,
    clock,
    day_bounds,
    names,
    nick_refused_lines,
    row_plain,
    wrap_ranges,
)
from tui_chat.updates import NickRefused

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
LINES += [  # lines that name bob stand out, a long one across its rows too
    MessageLine(Message(7, TS, "erin", "bob: a question for you, long enough to wrap", "chat"),
                "bob", True),
    MessageLine(Message(8, TS, "erin", "pokes bob until he answers, at length", "action"),
                "bob", True),
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


def test_wrap_ranges_never_break_among_the_spaces_a_paragraph_starts_with() -> None:
    """A paragraph that starts with spaces (a message's indented lines) and then a word too
    long for the row folds the word; it is not broken off into a row of spaces."""
    text = "look:\n      https://example.org/long"
    rows = [" " * indent + text[start:end] for start, end, indent in wrap_ranges(text, 12)]
    assert rows == ["look:", "      https:", "//example.or", "g/long"]


def test_wrap_ranges_measure_wide_characters_in_cells() -> None:
    """A wide character takes two cells; one wider than the row still gets a row."""
    text = "名前テスト abc"  # 10 cells, a space, 3
    rows = [text[start:end] for start, end, _ in wrap_ranges(text, 8)]
    assert rows == ["名前テス", "ト abc"]
    assert [text[s:e] for s, e, _ in wrap_ranges("名前", 1)] == ["名", "前"]


def test_wrap_ranges_break_text_without_spaces_between_wide_characters() -> None:
    """Japanese after a nickname fills the nickname's row instead of starting on the next
    one; no row starts with a closing mark or ends with an opening one; a space still wins
    when it comes later."""
    text = "alice: 日本語の文章は空白なしで続きます。二行目「引用」です"
    rows = [text[start:end] for start, end, _ in wrap_ranges(text, 20)]
    # "す" fits the second row but would leave "。" to start the third: it moves down too.
    assert rows == ["alice: 日本語の文章", "は空白なしで続きま", "す。二行目「引用」で", "す"]
    quote = "ab 日本語「引用」"
    opening = [quote[s:e] for s, e, _ in wrap_ranges(quote, 10)]
    assert opening == ["ab 日本語", "「引用」"], "not ab 日本語「 with the mark left behind"
    voiced = "あいうえ\u3099。かきく"  # え with a combining mark, then a closing one
    assert [voiced[s:e] for s, e, _ in wrap_ranges(voiced, 8)] == ["あいう", "え\u3099。かき", "く"]
    ascii_mark = "bob: 我们明天见吧!好的"
    assert [ascii_mark[s:e] for s, e, _ in wrap_ranges(ascii_mark, 17)] == [
        "bob: 我们明天见", "吧!好的"], "'!' does not start a row either"
    spaced = "名前 abc defgh"
    mixed = [spaced[s:e] for s, e, _ in wrap_ranges(spaced, 9)]
    assert mixed == ["名前 abc", "defgh"]


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


DAY_MS = 86_400_000


def said(ts: int, text: str = "hi") -> MessageLine:
    return MessageLine(Message(1, ts, "alice", text, "chat"), "bob")


def plain_of(lines: list) -> list[str]:
    return [line.message.text if isinstance(line, MessageLine) else line.plain for line in lines]


def test_a_backlog_from_other_days_is_marked_where_each_day_starts(zone) -> None:
    """Lines from days before today are headed by their day, and today's by today's."""
    zone("UTC")
    today = now_ms() // DAY_MS * DAY_MS + 1_000  # just after midnight, so it is today
    lines = [said(today - 2 * DAY_MS, "two days ago"), said(today - 2 * DAY_MS + 60_000, "same"),
             said(today - DAY_MS, "yesterday"), said(today, "today")]
    marked = plain_of(DayMarks().mark(lines))
    heads = [time.strftime("── %A %-d %B %Y ──", time.gmtime((today - n * DAY_MS) // 1000))
             for n in (2, 1, 0)]
    assert marked == [heads[0], "two days ago", "same", heads[1], "yesterday", heads[2], "today"]


def test_a_log_that_starts_today_has_no_day_line_until_the_day_changes(zone) -> None:
    """Today's lines need no day line (the same list comes back); the next day's first does,
    also when it comes in a later write, and the app's own lines count as now."""
    zone("UTC")
    marks = DayMarks()
    lines = [said(now_ms()), Text("— You joined")]
    assert marks.mark(lines) is lines
    tomorrow = (now_ms() // DAY_MS + 1) * DAY_MS
    assert len(marks.mark([said(tomorrow)])) == 2
    assert len(marks.mark([said(tomorrow + 5)])) == 1


def test_the_apps_own_lines_do_not_change_the_day_by_a_clock_apart(zone, monkeypatch) -> None:
    """This computer's clock may be ahead of the server's: just after its midnight the
    app's own lines (stamped now) do not turn the day back and forth between the server's
    messages; hours later they do start a new day."""
    zone("UTC")
    today = now_ms() // DAY_MS * DAY_MS
    monkeypatch.setattr(tui_chat.render, "now_ms", lambda: today + 10_000)  # 00:00:10
    marks = DayMarks()
    first = marks.mark([said(today - 30_000, "last minute of yesterday")])
    assert len(first) == 2  # yesterday's day line: the log starts on another day
    for second in range(3):
        notice = [Text("— carol has joined the chat.")]
        assert marks.mark(notice) is notice
        assert len(marks.mark([said(today - 20_000 + second)])) == 1
    assert len(marks.mark([said(today + 1_000, "after midnight")])) == 2
    monkeypatch.setattr(tui_chat.render, "now_ms", lambda: today + DAY_MS + 3_600_000)
    assert len(marks.mark([Text("— the next day, 01:00")])) == 2


def test_a_day_that_starts_twice_is_one_day(zone) -> None:
    """Where the clocks go back from 01:00 to midnight, the day starts at its first
    midnight and lasts 25 hours: a backlog from its first hour gets one day line."""
    zone("Atlantic/Azores")
    first_hour = 1_667_088_000_000  # 2022-10-30 00:00 UTC, 00:00 local (+00, summer time)
    start, end = day_bounds(first_hour + 1_800_000)
    assert (start, end - start) == (first_hour, 25 * 3_600_000)
    marks = DayMarks()
    marks.mark([said(first_hour + 4 * DAY_MS, "a later day")])
    backlog = marks.mark([said(first_hour + minutes * 60_000, f"backlog {minutes}")
                          for minutes in range(10, 60, 10)])
    assert len(backlog) == 6 and plain_of(backlog)[0] == "── Sunday 30 October 2022 ──"
    zone("America/Havana")  # forward at midnight: the day starts at 01:00
    start, end = day_bounds(1_678_640_400_000)  # 2023-03-12 17:00 UTC, 13:00 local (CDT)
    assert end - start == 23 * 3_600_000
    assert time.strftime("%H:%M", time.localtime(start // 1000)) == "01:00"


def test_a_cleared_log_starts_again(zone) -> None:
    """After a clear the first line is the first again: no day line if it is from today."""
    zone("UTC")
    marks = DayMarks()
    assert len(marks.mark([said(now_ms() - 3 * DAY_MS)])) == 2
    marks.reset()
    assert len(marks.mark([said(now_ms())])) == 1


def test_a_day_is_local_and_lasts_from_midnight_to_midnight_across_a_change_of_clocks(
        zone) -> None:
    """Days run from local midnight, 23 or 25 hours long on the days the clocks change."""
    zone("Europe/Berlin")
    spring = day_bounds(1_774_774_800_000)  # 2026-03-29, 11:00 CEST: clocks went forward
    autumn = day_bounds(1_792_918_800_000)  # 2026-10-25, 10:00 CET: clocks went back
    assert spring[1] - spring[0] == 23 * 3_600_000
    assert autumn[1] - autumn[0] == 25 * 3_600_000
    assert time.strftime("%H:%M", time.localtime(spring[0] // 1000)) == "00:00"
    zone("Asia/Kolkata")
    start, end = day_bounds(TS)
    assert (start, end) == (TS - 15 * 3_600_000, TS + 9 * 3_600_000)  # 15:00 local


def test_names_are_listed_as_a_sentence_and_a_long_list_is_cut() -> None:
    """One, two and three names read as English; past nine the rest after eight are counted."""
    assert names(("a",)) == "a"
    assert names(("a", "b")) == "a and b"
    assert names(("a", "b", "c")) == "a, b and c"
    assert names(tuple("abcdefghi")) == "a, b, c, d, e, f, g, h and i"
    assert names(tuple("abcdefghij")) == "a, b, c, d, e, f, g, h and 2 others"


def test_timestamps_follow_a_change_of_time_zone(zone) -> None:
    """The time shown is local, and a change of zone in the process shows at once."""
    zone("UTC")
    assert clock(TS) == "09:30"
    zone("Asia/Kolkata")  # UTC+05:30
    assert clock(TS) == "15:00"
    assert clock(TS + 59_999) == "15:00" and clock(TS + 60_000) == "15:01"
    for name, shown in (("Asia/Shanghai", "17:30"), ("America/Regina", "03:30")):
        zone(name)  # both are called CST
        assert clock(TS) == shown


def test_a_rename_to_the_name_you_have_is_one_plain_line() -> None:
    """Asking for the name you already have is answered by one notice, not an error and a
    hint to keep the name you kept anyway; a name refused is one error line that says the
    name you kept, as one refused before it is sent is."""
    same = nick_refused_lines(NickRefused(Error(NICK_UNCHANGED, "You are already called 'alice'."),
                                          kept="alice"))
    assert [notice_text(line) for line in same] == ["You are already called 'alice'."]
    taken = nick_refused_lines(NickRefused(Error(NICK_TAKEN, "The nickname 'bob' is taken."),
                                           kept="alice"))
    assert [notice_text(line) for line in taken] == [
        "The nickname 'bob' is taken. You are still alice."]


def notice_text(line: Text) -> str:
    """What a notice says, without its time."""
    return line.plain.partition(" — ")[2]
