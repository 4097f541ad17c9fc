"""The chat input: one line, with input history, Tab completion and cleaned pastes."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input

from tui_chat.cleaning import clean_text
from tui_chat.commands import complete
from tui_chat.nicknames import nick_key

NEWLINE_MARK = "\u2424"  # ␤ SYMBOL FOR NEWLINE: a pasted line break, in the one-line input


class ChatInput(Input):
    """The input line, with Up/Down history and Tab completion of nicknames and commands."""

    # The input's size never depends on its text: a key press repaints the input alone,
    # where Input would lay out the whole screen again for every character typed.
    virtual_size = Reactive(Size(0, 0), layout=False)

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
        self.users: tuple[str, ...] = ()  # who is in the room
        self.me = ""  # your nickname: Tab completes the others' names, not your own
        self._cycle: tuple[str, int, int, str] | None = None  # original, cursor, turn, result

    async def _on_key(self, event: events.Key) -> None:
        # The input's own keys are acted on here, in key order, not by its bindings, which
        # the app runs only once a key has bubbled up to it: by then the characters typed
        # after it (a fast typist, a burst over ssh) are already in the value, so a
        # Backspace or Left would land in the wrong place and Enter would send them too.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            line, self.value = self.value, ""  # cleared at once, for the same reason
            self.post_message(self.Submitted(self, line))
            return
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return

    def _on_paste(self, event: events.Paste) -> None:
        """Pasted text is cleaned of escape sequences and control codes (a terminal paste can
        carry them), and its line breaks are kept, shown as ␤: the lines go as one message."""
        event.stop()
        event.prevent_default()  # not Input's own paste (first line only, uncleaned)
        text = clean_text(event.text).strip("\n").replace("\n", NEWLINE_MARK)
        if text:
            if self.selection.is_empty:
                self.insert_text_at_cursor(text)
            else:
                self.replace(text, *self.selection)

    @staticmethod
    def message_text(value: str) -> str:
        """The text a submitted value sends: pasted line breaks (␤) are line breaks again."""
        return value.replace(NEWLINE_MARK, "\n")

    def give_back(self, line: str) -> None:
        """A submitted line that was not sent returns to the input to be fixed (or, if
        something new was typed meanwhile, to the history, one Up away)."""
        if not self.value:
            self.value = line
            self.cursor_position = len(line)
        else:
            self.remember(line)

    def remember(self, line: str) -> None:
        """Add a sent line to the history (without repeating the last one)."""
        if not self.history or self.history[-1] != line:
            self.history.append(line)
        self._history_index = len(self.history)
        self._draft = ""

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._history_index < len(self.history) and (
                self.value != self.history[self._history_index]):
            self._history_index = len(self.history)  # edited since: start again from the end
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
        me = nick_key(self.me)  # looked at here, on Tab, not at every join and leave
        others = tuple(nick for nick in self.users if nick_key(nick) != me)
        result = complete(original, cursor, others, turn)
        if result is None:
            self.app.bell()
            return
        self._cycle = (original, cursor, turn, result.text)
        self.value = result.text
        self.cursor_position = result.cursor
