"""The chat log: messages stored cheaply, wrapped to the width, rendered only on screen."""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from itertools import islice, repeat

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Offset, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip

from tui_chat.render import (
    CONTINUATION,
    TAB_SIZE,
    DayLine,
    DayMarks,
    MessageLine,
    Row,
    cells,
    line_plain,
    other_day_name,
    row_plain,
    wrap_ranges,
)


def _starts_line(row: Text | MessageLine | Row) -> bool:
    """Whether `row` is the first (or only) row of its line."""
    return not isinstance(row, tuple) or row[1][0] == 0


class ChatLog(ScrollView):
    """The message log. Lines are stored cheaply and rendered only when they are on screen, so
    a burst of thousands of messages a second costs little more than storing them. Keeps the
    last `max_lines` rows; follows new lines while the view is at the end, stays put once the
    user scrolls up (its border then counts the lines that arrived below), and follows again
    when they scroll back down. Lines are wrapped to the log's width and wrapped again when
    that width changes. While the top row on screen is from another day than today, and
    the line naming that day is not in view, the border names it."""

    following = True
    unseen: reactive[int] = reactive(0)  # lines written below the view since it stopped following
    unseen_mentions = 0  # of those, lines that name you (counted before `unseen` changes)

    def __init__(self, max_lines: int = 10_000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        # The lines as written (enough of them to fill max_lines rows at any width), and the
        # rows they were wrapped into at `_width` (0: not laid out yet, nothing wrapped).
        self._lines: deque[Text | MessageLine] = deque(maxlen=max_lines)
        self._rows: deque[Text | MessageLine | Row] = deque()
        self._width = 0
        self._last_rows = 0  # rows of the newest line (kept whole, however long)
        self._removed = 0  # rows dropped from the top so far (cache keys are absolute)
        self._cache: LRUCache[int, Strip] = LRUCache(1024)
        self._style: Style | None = None  # self.rich_style, while the styles stay the same
        self._selection_style: Style | None = None  # the screen's, looked up once
        self._days = DayMarks()
        # The day lines among the rows, by row number (as `_removed` counts), in order.
        self._day_rows: list[int] = []
        self._day_lines: list[DayLine] = []

    def on_mount(self) -> None:
        self.set_interval(60, self._name_day)  # midnight can pass with nothing written

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self.following = True  # at the end (also after a resize or a clear)
            self.unseen = 0
        elif new_value < old_value:
            self.following = False  # the user scrolled up
        self._name_day()

    def _name_day(self) -> None:
        """Name the top row's day in the border, unless it is today or its day line shows."""
        index = int(self.scroll_y)
        title = ""
        if index < len(self._rows):
            row = self._rows[index]
            if not isinstance(row[0] if isinstance(row, tuple) else row, DayLine):
                day = self._day_of(self._removed + index)
                if day is not None:
                    title = other_day_name(day)
        if title != self.border_title:  # (asked on every write and scroll; a set redraws)
            self.border_title = title

    def _day_of(self, number: int) -> int | None:
        """When the day of row `number` started (None: the log is empty)."""
        before = bisect_right(self._day_rows, number)
        if before:
            return self._day_lines[before - 1].start
        if self._day_lines:  # above the first day line still known
            return self._day_lines[0].previous
        return self._days.start  # no day line: every row is from the day the log started

    def watch_unseen(self, unseen: int) -> None:
        if not unseen:
            self.unseen_mentions = 0
            self.border_subtitle = ""
            return
        named = self.unseen_mentions
        self.border_subtitle = (f"↓ {unseen:,} new {'line' if unseen == 1 else 'lines'}"
                                + (f", {named:,} with your name" if named else "") + " · Ctrl+End")

    def follow(self) -> None:
        """Show the end of the log and follow new lines again."""
        self.following = True
        self.unseen = 0
        self._follow()

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        if shown:  # it can appear after the view scrolled (the first write that overflows)
            self.vertical_scrollbar.position = self.scroll_y

    def _wrap_width(self) -> int:
        """The width rows are wrapped to (0 before layout). The scrollbar's column is always
        reserved (`scrollbar-gutter: stable`), so it does not change when the bar appears."""
        width = self.scrollable_content_region.width
        return max(width, 10) if width else 0

    def on_resize(self) -> None:
        width = self._wrap_width()
        if width and width != self._width:
            self._rewrap(width)
        elif self.following or self.scroll_y >= self.max_scroll_y:
            self.follow()  # shorter (the outbox opened below it): keep the end in view;
            # taller, so that the end shows (where the view need not move): follow it again

    def write_lines(self, lines: Iterable[Text | MessageLine]) -> None:
        """Append lines (one refresh for the lot); a line wider than the log is wrapped, and
        a line from another day than the one before it comes after a line naming its day."""
        if not isinstance(lines, list):
            lines = list(lines)
        if not lines:
            return
        if not self.following:
            self.unseen_mentions += sum(
                1 for line in lines if isinstance(line, MessageLine) and line.mentioned)
            self.unseen += len(lines)
        lines = self._days.mark(lines)
        self._lines.extend(lines)
        width = self._wrap_width()
        if not width:  # not laid out yet: wrapped once the log has a size
            return
        if width != self._width:
            self._rewrap(width, added=len(lines))
            return
        before = len(self._rows)
        self._wrap(lines, width)
        if len(self._rows) == before:
            return
        excess = self._trim()
        self.virtual_size = Size(width, len(self._rows))
        if self.following:
            self._follow()
        elif excess > 0:  # keep what the user is reading in place
            self.scroll_to(y=max(0, self.scroll_y - excess), animate=False, immediate=True)
        self._name_day()  # (the view may not have moved while its rows did)
        self.refresh()

    def write_above(self, lines: list[Text | MessageLine]) -> None:
        """Put `lines` above every line written so far (a room's history, which arrives
        after the app's first notices), and show the end of the log."""
        later = [line for line in self._lines if not isinstance(line, DayLine)]
        if later:
            self.clear()
        self.write_lines([*lines, *later])

    def _wrap(self, lines: Iterable[Text | MessageLine], width: int) -> None:
        """Append the rows of `lines` wrapped to `width` (tabs expanded)."""
        rows = self._rows
        indent = len(CONTINUATION)
        last = len(rows)
        for line in lines:
            last = len(rows)
            if isinstance(line, DayLine):
                self._day_rows.append(self._removed + last)
                self._day_lines.append(line)
            if isinstance(line, MessageLine):
                plain = line.plain()
                if plain.isascii() or "\t" not in line.message.text:  # plain is exact
                    if "\n" not in plain and cells(plain) <= width:
                        rows.append(line)
                    else:
                        rows.extend(zip(repeat(line), wrap_ranges(plain, width, indent)))
                    continue
                line = line.to_text()  # tabs among wide characters: Rich expands them
            elif "\t" in line.plain:
                line = line.copy()
                line.expand_tabs(TAB_SIZE)
            if "\n" not in line.plain and line.cell_len <= width:
                rows.append(line)
            else:  # cut like a message's rows: those after the first indented
                rows.extend(zip(repeat(line), wrap_ranges(line.plain, width, indent)))
        self._last_rows = len(rows) - last

    def _trim(self) -> int:
        """Drop rows over `max_lines` from the top, whole lines at a time (a row a line
        wrapped onto never stays without the row naming its sender), but never the newest
        line: a message longer than the scrollback is kept whole. Returns how many rows were
        dropped."""
        rows = self._rows
        excess = min(len(rows) - self.max_lines, len(rows) - self._last_rows)
        if excess <= 0:
            return 0
        for _ in range(excess - 1):
            rows.popleft()
        cut = rows.popleft()
        if isinstance(cut, tuple):  # the rest of a wrapped line goes with it
            while rows and isinstance(rows[0], tuple) and rows[0][0] is cut[0]:
                rows.popleft()
                excess += 1
        self._removed += excess
        day_rows = self._day_rows
        while len(day_rows) > 1 and day_rows[1] <= self._removed:  # the next one is the top's
            del day_rows[0], self._day_lines[0]
        return excess

    def _rewrap(self, width: int, added: int = 0) -> None:
        """Wrap every line again for a new width, keeping the view at the end if it was
        following, else where it was (`added`: lines appended since the rows were wrapped,
        which come after the top row too)."""
        self._forget_selection()
        after, offset = self._top_anchor()
        anchor = after + added, offset
        self._clear_rows()
        self._width = width
        self._wrap(self._lines, width)
        self._trim()
        self.virtual_size = Size(width, len(self._rows))
        y = self._row_of(anchor)
        if self.following or y >= self.max_scroll_y:
            self.follow()
        else:
            self.scroll_to(y=y, animate=False, force=True, immediate=True)
        self._name_day()
        self.refresh()

    def _top_anchor(self) -> tuple[int, int]:
        """Where the top row in view is, in terms a rewrap keeps: how many lines come after
        its line, and where in its line's text the row starts."""
        rows, top = self._rows, int(self.scroll_y)
        if top >= len(rows):
            return 0, 0
        row = rows[top]
        offset = row[1][0] if isinstance(row, tuple) else 0
        after = sum(1 for row in islice(rows, top + 1, None) if _starts_line(row))
        return after, offset

    def _row_of(self, anchor: tuple[int, int]) -> int:
        """The row that now shows the place `_top_anchor` named (0 if its line is gone)."""
        after, offset = anchor
        rows = list(self._rows)
        for start in range(len(rows) - 1, -1, -1):
            if _starts_line(rows[start]):
                if after == 0:
                    break
                after -= 1
        else:
            return 0
        index = start  # then down its rows to the one holding `offset`
        while (index + 1 < len(rows) and not _starts_line(rows[index + 1])
               and rows[index + 1][1][0] <= offset):
            index += 1
        return index

    def _clear_rows(self) -> None:
        self._rows.clear()
        self._day_rows.clear()
        self._day_lines.clear()
        self._cache.clear()
        self._removed = 0

    def _follow(self) -> None:
        """Show the last row now: forced, as the scrollbar may not be laid out yet."""
        self.scroll_to(y=self.max_scroll_y, animate=False, force=True, immediate=True)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._style = self._selection_style = None

    def clear(self) -> None:
        self._forget_selection()
        self._days.reset()
        self._lines.clear()
        self._clear_rows()
        self.virtual_size = Size(0, 0)
        self.following = True
        self.unseen = 0
        self._name_day()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if index >= len(self._rows):
            return Strip.blank(width, self._base_style())
        strip = self._strip(index)
        number = self._removed + index  # selections hold row numbers that trimming keeps
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(number)) is not None:
            strip = self._selected(strip, row_plain(self._rows[index]), *span)
        return strip.crop_extend(scroll_x, scroll_x + width, self._base_style()).apply_offsets(
            scroll_x, number)

    def _selected(self, strip: Strip, plain: str, start: int, end: int) -> Strip:
        """`strip` with the characters from `start` to `end` (-1: the end) drawn selected."""
        first = cells(plain[:start])
        last = strip.cell_length if end < 0 else cells(plain[:end])
        if last <= first:
            return strip
        before, middle, after = strip.divide([first, last, strip.cell_length])
        if self._selection_style is None:
            self._selection_style = self.screen.get_component_rich_style("screen--selection")
        middle = Strip(Segment.apply_style(middle, post_style=self._selection_style),
                       middle.cell_length)
        return Strip.join([before, middle, after])

    def _forget_selection(self) -> None:
        """Drop a selection whose row numbers no longer mean the same rows."""
        if self.is_attached and self.text_selection is not None:
            self.screen.clear_selection()

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The text selected with the mouse, for copying (Ctrl+C), as drawn, except what the
        log itself added: a line wrapped onto several rows comes back as one (a link or a
        command is copied whole), and a multi-line message without the indent of its lines."""
        rows, removed = self._rows, self._removed
        if not rows:
            return None
        first = selection.start
        if first is None or first.y < removed:  # (or in rows the scrollback has dropped)
            first = Offset(0, removed)
        last = selection.end
        if last is None:
            last = Offset(len(row_plain(rows[-1])), removed + len(rows) - 1)
        pieces: list[str] = []
        for number in range(first.y, min(last.y, removed + len(rows) - 1) + 1):
            index = number - removed
            plain = row_plain(rows[index])
            joint, added = self._joint(index)
            begin = max(first.x if number == first.y else 0, added)
            if number > first.y:
                pieces.append(joint)
            pieces.append(plain[begin:last.x if number == last.y else len(plain)])
        return "".join(pieces), "\n"

    def _joint(self, index: int) -> tuple[str, int]:
        """What joins row `index` to the row above when copied, and how many characters at
        its start the log added: a wrapped line's rows are joined by the space it was broken
        at (or nothing, in a word too long for a row) and lose their indent; the lines of a
        multi-line message are joined by a line break and lose theirs (CONTINUATION)."""
        row, above = self._rows[index], self._rows[index - 1] if index else None
        if not (isinstance(row, tuple) and isinstance(above, tuple) and row[0] is above[0]):
            return "\n", 0
        line, (start, _, indent) = row
        plain = line_plain(line)
        gap = plain[above[1][1]:start]
        if "\n" not in gap:
            return gap, indent
        return "\n", len(CONTINUATION) if plain.startswith(CONTINUATION, start) else 0

    def _strip(self, index: int) -> Strip:
        key = self._removed + index
        strip = self._cache.get(key)
        if strip is None:
            strip = self._cache[key] = self._render_row(self._rows[index])
        return strip

    def _render_row(self, row: Text | MessageLine | Row) -> Strip:
        base = self._base_style()
        if isinstance(row, Text):
            return Strip(row.render(self.app.console), row.cell_len).apply_style(base)
        if isinstance(row, MessageLine):
            line, start, end, indent = row, 0, None, 0
        else:
            line, (start, end, indent) = row
            if isinstance(line, Text):
                part = Text.assemble(" " * indent, line[start:end]) if indent else line[start:end]
                return self._render_row(part)
        return Strip(line.segments(start, end, indent, base))

    def _base_style(self) -> Style:
        """The log's own style, under every row (looked up once per change of styles)."""
        if self._style is None:
            self._style = self.rich_style
        return self._style

    @property
    def lines(self) -> list[Strip]:
        """Every row, rendered (what tests inspect; the screen renders only what shows)."""
        return [self._strip(index) for index in range(len(self._rows))]

    def text(self) -> str:
        """Everything in the log as plain text, one row per line."""
        return "\n".join(row_plain(row) for row in self._rows)
