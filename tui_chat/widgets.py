"""The chat screen's widgets: the batched message log, the user list, the outbox, the input."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Input, RichLog, Static

from tui_chat.client import Outgoing
from tui_chat.commands import complete
from tui_chat.protocol import nick_key
from tui_chat.render import nick_colour


class ChatLog(RichLog):
    """The message log: bounded scrollback; follows new lines while the view is at the end,
    stays put once the user scrolls up, and follows again when they scroll back down."""

    following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self.following = True  # at the end (also after a resize or a clear)
        elif new_value < old_value:
            self.following = False  # the user scrolled up

    def write_lines(self, lines: Iterable[Text]) -> None:
        """Append many lines with one write (one render, one refresh)."""
        batch = list(lines)
        if batch:
            self.write(Text("\n").join(batch), scroll_end=self.following)


class UserList(Static):
    """Everyone in the room, sorted, with a count; you are marked."""

    users: reactive[tuple[str, ...]] = reactive(())
    me: reactive[str] = reactive("")

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for nick in sorted(self.users, key=nick_key):
            if text:
                text.append("\n")
            own = nick_key(nick) == nick_key(self.me)
            text.append("● " if own else "  ", nick_colour(nick))
            text.append(nick, f"bold {nick_colour(nick)}" if own else nick_colour(nick))
            if own:
                text.append(" (you)", "dim")
        return text

    def watch_users(self, users: tuple[str, ...]) -> None:
        self.border_title = f"Users · {len(users)}"


class Outbox(Static):
    """Messages typed but not yet acknowledged by the server."""

    pending: reactive[tuple[Outgoing, ...]] = reactive(())
    online: reactive[bool] = reactive(False)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        status = "sending" if self.online else "waiting for the connection"
        for outgoing in self.pending:
            if text:
                text.append("\n")
            first_line = outgoing.text.splitlines()[0] if outgoing.text.strip() else ""
            shown = f"* {first_line}" if outgoing.kind == "action" else first_line
            text.append(f"⧗ {status}: ", "italic #9a9a9a")
            text.append(shown, "#9a9a9a")
        return text

    def watch_pending(self, pending: tuple[Outgoing, ...]) -> None:
        self.display = bool(pending)


class ChatInput(Input):
    """The input line, with Up/Down history and Tab completion of nicknames and commands."""

    BINDINGS = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.history: list[str] = []
        self._history_index = 0
        self._draft = ""
        self.users: tuple[str, ...] = ()
        self._cycle: tuple[str, int, int, str] | None = None  # original, cursor, turn, result

    def remember(self, line: str) -> None:
        """Add a sent line to the history (without repeating the last one)."""
        if not self.history or self.history[-1] != line:
            self.history.append(line)
        self._history_index = len(self.history)
        self._draft = ""

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._history_index == len(self.history):
            self._draft = self.value
        index = max(0, min(len(self.history), self._history_index + step))
        if index == self._history_index:
            return
        self._history_index = index
        self.value = self._draft if index == len(self.history) else self.history[index]
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        cycle = self._cycle
        if cycle is not None and self.value == cycle[3]:  # Tab again: the next candidate
            original, cursor, turn = cycle[0], cycle[1], cycle[2] + 1
        else:
            original, cursor, turn = self.value, self.cursor_position, 0
        result = complete(original, cursor, self.users, turn)
        if result is None:
            self.app.bell()
            return
        self._cycle = (original, cursor, turn, result.text)
        self.value = result.text
        self.cursor_position = result.cursor
