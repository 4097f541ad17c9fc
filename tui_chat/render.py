"""How chat lines look: Rich `Text` built from untrusted strings, never from markup."""

from __future__ import annotations

import time
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from tui_chat.mentions import mentions
from tui_chat.nicknames import nick_key
from tui_chat.protocol import BAD_PASSWORD, NICK_REGISTERED, NICK_UNCHANGED, Message, now_ms
from tui_chat.updates import Joined, NickRefused, Refused

# Readable on dark and light backgrounds; a nickname keeps its colour everywhere, always.
NICK_COLOURS = (
    "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2",
    "#d19a66", "#ff79c6", "#8be9fd", "#50fa7b", "#bd93f9", "#f1fa8c",
)
SYSTEM_STYLE = "italic #9a9a9a"
ERROR_STYLE = "bold #ff6b6b"
TIME_STYLE = "#7a7a7a"
MENTION_STYLE = "bold #1e1e1e on #e5c07b"  # dark on amber: readable in any theme
# A tab is shown as spaces up to the next multiple of TAB_SIZE columns (from the start of its
# line), as a terminal would draw it: a raw tab measures 0 cells but is drawn wide.
TAB_SIZE = 8


def nick_colour(nick: str) -> str:
    """The stable colour of a nickname (the same for every case and width of it)."""
    return NICK_COLOURS[zlib.crc32(nick_key(nick).encode()) % len(NICK_COLOURS)]


def clock(ts_ms: int | None) -> str:
    """`HH:MM` in local time for a server timestamp (now when None)."""
    zone = (time.tzname, time.timezone, time.altzone)  # names alone are ambiguous (CST)
    return _minute((now_ms() if ts_ms is None else ts_ms) // 60_000, zone)


@lru_cache(maxsize=1024)
def _minute(minute: int, zone: tuple) -> str:
    """`HH:MM` of a minute since the epoch in the local time `zone` (every zone's offset is
    whole minutes, so any moment of that minute reads the same)."""
    return time.strftime("%H:%M", time.localtime(minute * 60))


CONTINUATION = " " * 6  # lines after a message's first start under its nickname


def body(text: str) -> str:
    """A message's text as the log shows it: the lines after the first indented, so none
    of them can pass for a log line of its own (a time, a nickname, a '—' notice)."""
    return text.replace("\n", "\n" + CONTINUATION) if "\n" in text else text


def cells(text: str) -> int:
    """Terminal cells `text` takes on one row (ASCII without controls: one per character)."""
    return len(text) if text.isascii() else cell_len(text)


@dataclass(frozen=True, slots=True)
class MessageLine:
    """A chat, action or system message in the log. Kept as the message itself: its rows
    are laid out from `plain()` and drawn from `pieces()` only when they are on screen.
    `mentioned`: it names `me` (see `mentions`), and its text stands out."""

    message: Message
    me: str
    mentioned: bool = False

    @classmethod
    def seen_by(cls, message: Message, me: str, mine: bool = False) -> MessageLine:
        """`message` as shown to `me`: it names `me` unless it is `mine` (our own echo)."""
        return cls(message, me, not mine and mentions(message, me))

    def pieces(self) -> list[tuple[str, str]]:
        """The line as (text, style) pieces, the message's own text last (unexpanded tabs)."""
        message = self.message
        stamp = (clock(message.ts), TIME_STYLE)
        text = body(message.text)
        if message.kind == "system":
            return [stamp, (" ", ""), ("— ", SYSTEM_STYLE), (text, SYSTEM_STYLE)]
        own = nick_key(message.nick) == nick_key(self.me)
        colour = nick_colour(message.nick)
        nick = (message.nick, f"bold {colour} reverse" if own else f"bold {colour}")
        if message.kind == "action":
            style = f"italic {MENTION_STYLE}" if self.mentioned else f"italic {colour}"
            return [stamp, (" ", ""), ("* ", colour), nick, (" ", ""), (text, style)]
        style = MENTION_STYLE if self.mentioned else "bold" if own else ""
        return [stamp, (" ", ""), nick, (" ", ""), (text, style)]

    def to_text(self) -> Text:
        line = Text.assemble(*self.pieces(), no_wrap=False)
        if "\t" in self.message.text:
            line.expand_tabs(TAB_SIZE)
        return line

    def plain(self) -> str:
        """The line's text exactly as `to_text()` lays it out, without styles (tabs are
        expanded by character count, which is exact for the ASCII text it is wrapped for).
        The pieces' texts joined, without working out their styles: every message is laid
        out from this as it arrives."""
        message = self.message
        if message.kind == "system":
            plain = f"{clock(message.ts)} — {body(message.text)}"
        elif message.kind == "action":
            plain = f"{clock(message.ts)} * {message.nick} {body(message.text)}"
        else:
            plain = f"{clock(message.ts)} {message.nick} {body(message.text)}"
        return plain.expandtabs(TAB_SIZE) if "\t" in message.text else plain

    def segments(self, start: int, end: int | None, indent: int, base: Style) -> list[Segment]:
        """Characters `start` to `end` (None: the end) of `plain()` as one screen row, after
        `indent` spaces, with the styles `to_text()` gives them over `base` (the log's own
        style). Exact where `plain()` is: what `wrap_ranges` lays out."""
        pieces = self.pieces()
        plain = "".join(piece for piece, _ in pieces)  # `plain()`, from the pieces at hand
        if "\t" in plain:
            plain = plain.expandtabs(TAB_SIZE)  # only the last piece (the text) grows
        end = len(plain) if end is None else end
        row = [Segment(" " * indent, base)] if indent else []
        position, last, unstyled = 0, len(pieces) - 1, bool(indent)
        for index, (piece, style) in enumerate(pieces):
            stop = len(plain) if index == last else position + len(piece)
            shown = plain[max(start, position):min(end, stop)]
            if shown:
                if unstyled and not style:  # unstyled pieces in a row are one, as in Rich
                    shown = row.pop().text + shown
                row.append(Segment(shown, base + Style.parse(style) if style else base))
                unstyled = not style
            position = stop
        return row


# One screen row of a wrapped line: the line, and (start, end, indent) from `wrap_ranges`.
Row = tuple[MessageLine | Text, tuple[int, int, int]]


def line_plain(line: MessageLine | Text) -> str:
    """The text of a whole log line, as it is wrapped."""
    return line.plain if isinstance(line, Text) else line.plain()


def row_plain(row: Text | MessageLine | Row) -> str:
    """The text of one log row, as drawn."""
    if isinstance(row, tuple):
        line, (start, end, indent) = row
        return " " * indent + line_plain(line)[start:end]
    return line_plain(row)


# Kinsoku: what a row may not start with (closing marks, small kana) or end with (opening ones).
NO_ROW_START = frozenset("、。，．・：；？！ー〜…‥）〕］｝〉》」』】〙〗’”ゝゞ々ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ"
                         ")]}.,;:!?%｡｣､")
NO_ROW_END = frozenset("（〔［｛〈《「『【〘〖‘“([{｢")


def wide_break(plain: str, cells: list[int], after: int, end: int) -> int:
    """The last place in (`after`, `end`] where a row may break without a space: next to a
    wide character (ideographs, kana, hangul, emoji: text that is not split into words by
    spaces), and not before a closing mark or after an opening one; 0 if there is none."""
    for place in range(end, after, -1):
        before, next_one = plain[place - 1], plain[place]
        width_next = cells[place + 1] - cells[place]  # 0: a mark that goes with the one before
        wide = cells[place] - cells[place - 1] == 2 or width_next == 2
        if (wide and width_next and next_one not in NO_ROW_START and before not in NO_ROW_END
                and next_one != " "):
            return place
    return 0


def wrap_ranges(plain: str, width: int, indent: int = 0) -> list[tuple[int, int, int]]:
    """Greedy word wrap: (start, end, indent) of each row, breaking at spaces (a space at a
    break is dropped) or next to wide characters (as CJK text breaks, without spaces), and
    folding words longer than a row. A row that a paragraph wraps
    onto is indented by `indent` cells, so it cannot pass for a line of its own. Widths are
    terminal cells (a wide character takes two)."""
    # Cells before each character (ASCII: one each, so the offsets themselves).
    cells = None if plain.isascii() else [0, *accumulate(map(cell_len, plain))]
    ranges: list[tuple[int, int, int]] = []
    position = 0
    for paragraph in plain.split("\n"):
        start, stop = position, position + len(paragraph)
        lead = stop - len(paragraph.lstrip(" "))  # no break among the spaces it starts with
        first = len(ranges)
        room, shift = width, 0  # the first row of a paragraph has the full width
        while (stop - start if cells is None else cells[stop] - cells[start]) > room:
            if cells is None:
                end = start + room
            else:  # the longest run that fits, and at least one character
                end = max(bisect_right(cells, cells[start] + room, start, stop + 1) - 1,
                          start + 1)
            cut = plain.rfind(" ", max(start + 1, lead), end + 1)
            after = max(cut, start, lead)  # a row never ends among leading spaces
            if cells is not None and (wide := wide_break(plain, cells, after, min(end, stop - 1))):
                ranges.append((start, wide, shift))  # nothing to drop between ideographs
                start = wide
            elif cut <= start:
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


def names(nicks: tuple[str, ...], shown: int = 8) -> str:
    """`a`, `a and b`, `a, b and c`; past `shown` names, `a, b, … and 5 others`."""
    if len(nicks) > shown + 1:  # never "and 1 others"
        return f"{', '.join(nicks[:shown])} and {len(nicks) - shown} others"
    if len(nicks) > 1:
        return f"{', '.join(nicks[:-1])} and {nicks[-1]}"
    return nicks[0] if nicks else ""


def system_line(text: str, ts_ms: int | None = None, style: str = SYSTEM_STYLE) -> Text:
    """A line from the server or this app: joins, leaves, renames, errors, hints (its lines
    after the first indented, as a message's are)."""
    return Text.assemble((clock(ts_ms), TIME_STYLE), " ", ("— ", style), (body(text), style))


def error_line(text: str) -> Text:
    return system_line(text, style=ERROR_STYLE)


class DayLine(Text):
    """The line that starts a new day in the log, naming it (`── Friday 20 November 2026 ──`):
    `start` is when that day starts, `previous` when the day of the lines above it started
    (None at the top of the log), so the day of any row can be told after the rows and day
    lines above it are gone."""

    def __init__(self, start: int, previous: int | None) -> None:
        super().__init__(f"── {day_name(start)} ──", f"bold {TIME_STYLE}")
        self.start = start
        self.previous = previous


def other_day_name(start: int) -> str:
    """The name of the day that starts at `start` (a day's start, as `day_bounds` gives),
    or "" if that day is today. Cheap: the log asks on every write and scroll."""
    name, end = _named_day(start, (time.tzname, time.timezone, time.altzone))
    return "" if start <= now_ms() < end else name


@lru_cache(maxsize=64)
def _named_day(start: int, zone: tuple) -> tuple[str, int]:
    """The name and the end of the local day starting at `start` in the time `zone`."""
    return day_name(start), day_bounds(start)[1]


def day_name(ts_ms: int) -> str:
    """The local day of `ts_ms` in words: `Friday 20 November 2026`."""
    day = time.localtime(ts_ms // 1000)
    return f"{time.strftime('%A', day)} {day.tm_mday} {time.strftime('%B %Y', day)}"


def day_bounds(ts_ms: int) -> tuple[int, int]:
    """The local day `ts_ms` falls in, as [start, end) in milliseconds (23 or 25 hours long
    when the clocks change that day)."""
    day = time.localtime(ts_ms // 1000)
    start = _midnight(day.tm_year, day.tm_mon, day.tm_mday)
    return int(start * 1000), int(_midnight(day.tm_year, day.tm_mon, day.tm_mday + 1) * 1000)


def _midnight(year: int, month: int, day: int) -> float:
    """When the local day starts (`day` may run past the month's end). Where the clocks go
    back at 01:00 it starts twice, and `mktime` may give either: the first counts. Where
    they go forward at midnight there is none, and the day starts at 01:00."""
    date = time.localtime(time.mktime((year, month, day, 12, 0, 0, 0, 0, -1)))[:3]
    starts = [start for dst in (0, 1, -1)
              if time.localtime(start := time.mktime((*date, 0, 0, 0, 0, 0, dst)))[:3] == date]
    return min(starts) if starts else time.mktime((*date, 1, 0, 0, 0, 0, -1))


CLOCK_SKEW_MS = 5 * 60_000  # how far this computer's clock may be from the server's


class DayMarks:
    """Puts a day line before each message of the log that falls on another local day than
    the line before it, and before the first line if that is not from today: the times in
    the log are `HH:MM`, and a backlog can reach back days."""

    def __init__(self) -> None:
        self._day: tuple[int, int] | None = None  # the day of the last message written

    @property
    def start(self) -> int | None:
        """When the day of the last line marked started (None before the first line)."""
        return self._day[0] if self._day else None

    def reset(self) -> None:
        """The log was cleared: its next line is the first again."""
        self._day = None

    def mark(self, lines: list[Text | MessageLine]) -> list[Text | MessageLine]:
        """`lines` with the day lines they need (the same list when they need none). A
        message's day is read from its timestamp, the server's clock; the app's own lines
        (`Text`) are from now by this computer's clock, which may be a little apart from the
        server's, so they keep the day of the line before them unless they are more than
        `CLOCK_SKEW_MS` outside it (else the day could flip back and forth at midnight)."""
        start, end = self._day or (0, 0)
        marked: list[Text | MessageLine] = []
        rest = 0  # lines before this are in `marked`
        for index, line in enumerate(lines):
            if isinstance(line, MessageLine):
                ts = line.message.ts
                if start <= ts < end:
                    continue
            else:
                ts = now_ms()
                if start - CLOCK_SKEW_MS <= ts < end + CLOCK_SKEW_MS:
                    continue
            previous = self.start
            self._day = start, end = day_bounds(ts)
            if previous is None and start <= now_ms() < end:
                continue  # the log starts today: nothing to say
            marked.extend(lines[rest:index])
            marked.append(DayLine(start, previous))
            rest = index
        if not marked:
            return lines
        marked.extend(lines[rest:])
        return marked


def nick_refused_lines(update: NickRefused) -> list[Text]:
    """What the log says when a nickname was refused: why, and what to do."""
    if update.error.code == NICK_UNCHANGED:  # nothing went wrong, and nothing to do
        return [system_line(update.error.message)]
    if update.kept:  # one line, as a name refused before it was sent is told
        return [error_line(f"{update.error.message} You are still {update.kept}.")]
    if update.error.code in (NICK_REGISTERED, BAD_PASSWORD):
        hint = ("Use /nick NAME PASSWORD (or --password-file), or choose another nickname"
                " with /nick NAME.")
    else:
        hint = "Choose another nickname with /nick NAME."
    return [error_line(update.error.message), system_line(hint)]


def refused_lines(update: Refused) -> list[Text]:
    """What the log says when the server refused a message: which one, and why."""
    if update.retrying:
        return [error_line(f"{update.error.message} It will be sent again shortly.")]
    if update.outgoing is not None:
        return [error_line(f"Not sent ({update.outgoing.preview!r}): {update.error.message}")]
    return [error_line(update.error.message)]


def joined_lines(update: Joined) -> tuple[list[Text | MessageLine], list[Text]]:
    """What the log shows on joining: the history (or that some is missing); then who is
    here, and after a reconnect who came and went meanwhile."""
    welcome = update.welcome
    history: list[Text | MessageLine] = []
    if update.gap:
        history.append(error_line("Earlier messages are not available."))
    history.extend(MessageLine.seen_by(m, welcome.nick) for m in welcome.history)
    lines: list[Text] = []
    verb = "Reconnected to" if update.rejoined else "You joined"
    count = len(welcome.users)
    lines.append(system_line(f"{verb} {welcome.room} as {welcome.nick}."
                             f" {count} {'person' if count == 1 else 'people'} here."))
    changes = [f"{names(nicks)} {verb}" for nicks, verb in
               ((update.arrived, "joined"), (update.departed, "left")) if nicks]
    if changes:
        lines.append(system_line(f"While you were away: {'; '.join(changes)}."))
    return history, lines
