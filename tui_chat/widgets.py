"""The chat screen's side widgets: the user list and the outbox."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from tui_chat.nicknames import nick_key
from tui_chat.render import TAB_SIZE, nick_colour
from tui_chat.updates import Outgoing, State


class UserList(ScrollView, can_focus=False):
    """Everyone in the room, sorted, with a count; you (`me`) are marked. A list longer than
    the screen scrolls (with the mouse wheel; the input keeps the focus). Only the rows in
    view are drawn, so a change in a room of thousands costs a sort, not a relayout."""

    users: reactive[tuple[str, ...]] = reactive(())
    me: reactive[str] = reactive("")
    state: reactive[State] = reactive(State.ONLINE)  # else it shows who was here, dimmed

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._sorted: list[str] = []

    def row(self, nick: str) -> Text:
        """One person's row: you are marked."""
        own = bool(self.me) and nick_key(nick) == nick_key(self.me)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("● " if own else "  ", nick_colour(nick))
        text.append(nick, f"bold {nick_colour(nick)}" if own else nick_colour(nick))
        if own:
            text.append(" (you)", "dim")
        return text

    def names(self) -> Text:
        """Every row, one per line."""
        return Text("\n").join(self.row(nick) for nick in self._sorted)

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width, base = self.size.width, self.rich_style
        if index >= len(self._sorted):
            return Strip.blank(width, base)
        text = self.row(self._sorted[index])
        text.truncate(width, overflow="ellipsis")  # a long name is cut, never continued
        return Strip(text.render(self.app.console), text.cell_len).crop_extend(
            0, width, base).apply_style(base)

    def watch_users(self, users: tuple[str, ...]) -> None:
        self._sorted = sorted(users, key=nick_key)
        self.virtual_size = Size(0, len(self._sorted))
        self._title()
        self.refresh()

    def watch_me(self, me: str) -> None:
        self.refresh()

    def watch_state(self, state: State) -> None:
        self.set_class(state is not State.ONLINE, "-offline")
        self._title()

    def _title(self) -> None:
        if self.state is State.ONLINE:
            self.border_title = f"Users · {len(self.users)}"
        elif self.state is State.NICKNAME:  # connected, but no name: not in the room either
            self.border_title = "Users (not joined)"
        else:
            self.border_title = "Users (offline)"


class Outbox(Static):
    """Messages typed but not yet acknowledged by the server."""

    # Its height is its number of rows: a change of what is pending lays the screen out again.
    pending: reactive[tuple[Outgoing, ...]] = reactive((), layout=True)
    state: reactive[State] = reactive(State.CONNECTING)

    def render(self) -> Text:
        status = {State.ONLINE: "sending", State.NICKNAME: "waiting for a /nick"}.get(
            self.state, "waiting for the connection")
        # A short terminal keeps rows for the log and the input: a row per SCREEN_ROWS_PER.
        shown = max(1, min(SHOWN_PENDING, self.app.size.height // SCREEN_ROWS_PER))
        if len(self.pending) > 1 and shown == 1:
            return Text(f"⧗ {len(self.pending)} messages {status}", "italic #9a9a9a")
        listed = self.pending if len(self.pending) <= shown else self.pending[:shown - 1]
        rows = []
        for outgoing in listed:
            first_line = outgoing.text.splitlines()[0] if outgoing.text.strip() else ""
            row = Text.assemble((f"⧗ {status}: ", "italic #9a9a9a"),
                                (f"* {first_line}" if outgoing.kind == "action" else first_line,
                                 "#9a9a9a"), tab_size=TAB_SIZE)
            rows.append(row)
        if len(listed) < len(self.pending):
            rows.append(Text(f"⧗ and {len(self.pending) - len(listed)} more",
                             "italic #9a9a9a"))
        width = max(self.size.width, 1)
        for row in rows:
            row.expand_tabs()  # a raw tab measures 0 cells but is drawn wide
            row.truncate(width, overflow="ellipsis")  # one row each, however long
        return Text("\n").join(rows)

    def watch_pending(self, pending: tuple[Outgoing, ...]) -> None:
        self.display = bool(pending)

    def fit_screen(self) -> None:
        """Lay out again for a new screen height (Textual keeps its height while its width
        is unchanged)."""
        self.clear_cached_dimensions()
        self.refresh(layout=True)


SHOWN_PENDING = 5  # rows of the pending area (chat.tcss: max-height); the last may count
SCREEN_ROWS_PER = 6  # the pending area has no more rows than a sixth of the screen's, nor fewer than 1
