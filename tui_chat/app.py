"""The full-screen chat app: a thin Textual layer over `ChatClient`, on one asyncio loop."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.driver import Driver
from textual.logging import TextualHandler
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from tui_chat_server import ChatServer
from tui_chat.client import ChatClient
from tui_chat.hosting import CannotServe, Hosted, host
from tui_chat import collector
from tui_chat.cleaning import is_blank
from tui_chat.reasons import TOKEN_HINT
from tui_chat.updates import (
    Backoff,
    Joined,
    NickRefused,
    OutboxChanged,
    OutboxSaving,
    PresenceChanged,
    Received,
    Refused,
    State,
    StateChanged,
    Update,
    UsersListed,
    state_text,
)
from tui_chat.commands import HELP, UnknownCommand, parse_input
from tui_chat.nicknames import nick_refusal
from tui_chat.leaving import Leaving, on_stop_signals
from tui_chat.outbox import cannot_keep
from tui_chat.terminal import lasting
from tui_chat.protocol import presence_sentence, room_from_path
from tui_chat.render import (
    MessageLine,
    cells,
    error_line,
    joined_lines,
    nick_refused_lines,
    refused_lines,
    system_line,
)
from tui_chat.chat_input import ChatInput
from tui_chat.chat_log import ChatLog
from tui_chat.widgets import Outbox, UserList

FLUSH_INTERVAL = 1 / 60  # incoming lines reach the log at most once per frame
NEWS_DELAY = 0.5  # seconds: a connection failure retried sooner is not worth a log line
NARROW_BELOW = 60  # columns: narrower, the user list and the header's icon and clock go
HEADER_SIDES = 20  # columns of the header its icon and clock take (both sides: it is centred)
HEADER_PADDING = 2  # columns of the header's title its padding takes
MIN_ROOM_SHOWN = 4  # cells of the room's name kept in the header, however narrow
BELL_GAP = 3.0  # seconds: lines that name you ring the bell at most this often
@dataclass
class NetworkUpdates(Message):
    """Everything the client reported since the last frame, in order."""

    updates: list[Update]


class ChatApp(Leaving, App[None]):
    """tui-chat: message log, user list and input for one room."""

    CSS_PATH = "chat.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-wide")]  # no user list when narrow
    TITLE = "tui-chat"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+l", "clear", "Clear log"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+r", "reconnect", "Reconnect now"),  # shown while waiting to reconnect
        Binding("pageup", "scroll_log(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_log(1)", "Scroll down", show=False),
        Binding("ctrl+end", "scroll_log_end", "Newest", show=False),
    ]

    state: reactive[State] = reactive(State.CONNECTING)

    def __init__(
        self,
        url: str | None = None,
        nick: str = "guest",
        *,
        serve: tuple[str, int] | None = None,
        serve_db: str | None = None,
        scrollback: int = 10_000,
        backoff: Backoff | None = None,
        address: str | None = None,
        token: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        keep_outbox: bool = True,
    ) -> None:
        """`serve=(host, port)` hosts the bundled server in this process and joins its lobby
        (`serve_db`: its history database, else the server's default); `address` overrides
        how the server is named in the header; `keep_outbox` keeps unsent messages on disk
        until they are delivered, across restarts of the app."""
        super().__init__()
        self.url = url or "ws://127.0.0.1:8765/lobby"
        self.serve = serve
        self.serve_db = serve_db
        self.hosted: Hosted | None = None  # with --serve, once its server has started
        self.scrollback = scrollback
        self.address = address
        self.retry_at: float | None = None
        self._failure = ""  # the last reason shown for failing to connect
        self._quit_told_until = 0.0  # time.monotonic() until which quitting goes ahead
        self.exit_text: str | None = None  # what to print once the app is gone (quit_saying)
        self.keep_outbox = keep_outbox
        self.client = ChatClient(self.url, nick, self._client_update, backoff=backoff,
                                 token=token, password=password, ssl_context=ssl_context)
        self._inbox: list[Update] = []
        self._flush_scheduled = False
        self._bell_silent_until = 0.0  # (monotonic) the bell does not ring again before
        self._collector_quietened = False  # (collector.py) while mounted

    def get_driver_class(self) -> type[Driver]:
        return lasting(super().get_driver_class())  # quits even once its terminal is gone

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield ChatLog(id="log", max_lines=self.scrollback)
            yield UserList(id="users")
        yield Outbox(id="outbox")
        yield ChatInput(id="input", placeholder="Type a message, /help for commands")
        yield Footer()

    async def on_load(self) -> None:
        """With --serve, start the server before the screen is taken over: if it cannot
        start, the app exits with the reason and the terminal never flickers."""
        if self.serve is not None:
            await self._start_server(*self.serve)

    async def on_mount(self) -> None:
        collector.quieten()  # the screen is built: what exists now is never garbage
        self._collector_quietened = True
        self.query_one(ChatInput).focus()
        if self.serve is not None:
            if self.hosted is None:
                return  # it could not start: the app is exiting
            self._log([system_line(self.hosted.serving_line())])
        self._show_title()
        self.set_interval(1, self._show_title)  # the reconnect countdown
        if self.keep_outbox:
            self._log(self._keep_outbox())
        self.run_client()
        on_stop_signals(self._stop_signal)  # Textual leaves them to Python: no clean-up at all

    async def _start_server(self, address: str, port: int) -> None:
        logging.basicConfig(level=logging.INFO, handlers=[TextualHandler()], force=True)
        try:
            hosted = await host(address, port, self.serve_db, self.client.token)
        except CannotServe as error:
            self.quit_saying(str(error), return_code=1)
            return
        self.hosted = hosted
        self.url = self.client.url = hosted.url

    @property
    def server(self) -> ChatServer | None:
        """The server this app hosts (--serve), once started."""
        return self.hosted.server if self.hosted is not None else None

    async def on_unmount(self) -> None:
        on_stop_signals(None)
        if self._collector_quietened:
            collector.restore()
            self._collector_quietened = False
        await self.client.stop()
        if self.client.store is not None:
            self.client.store.release()
        if self.server is not None:
            await self.server.stop()

    @work(exclusive=True, group="net")
    async def run_client(self) -> None:
        """The one long-lived worker that owns the connection."""
        await self.client.run()

    # -- from the network to the screen, batched per frame ---------------------------------

    def _client_update(self, update: Update) -> None:
        self._inbox.append(update)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.set_timer(FLUSH_INTERVAL, self._flush_inbox)

    def _flush_inbox(self) -> None:
        updates, self._inbox = self._inbox, []
        self._flush_scheduled = False
        self.post_message(NetworkUpdates(updates))

    def on_network_updates(self, message: NetworkUpdates) -> None:
        if not self.is_running:  # shutting down: the screens that would show them are going
            return
        lines: list[Text | MessageLine] = []
        named = False  # a line that names you arrived live
        users_changed = False  # who is here, or who you are
        for update in message.updates:
            if isinstance(update, Received):
                line = self._received(update)
                named = named or (line.mentioned and not update.backlog)
                lines.append(line)
            else:
                lines.extend(self._apply(update))
                users_changed = users_changed or isinstance(
                    update, (PresenceChanged, Joined, StateChanged))
        self._log(lines)
        if users_changed:
            self._show_users()  # once for the lot: they show the client's list as it is now
        if named and time.monotonic() >= self._bell_silent_until:
            self.bell()  # once for the lot, and not again for a few seconds (a flood)
            self._bell_silent_until = time.monotonic() + BELL_GAP

    def _received(self, update: Received) -> MessageLine:
        """A message as a log line, judged by who we were when it came (a rename may follow
        it in the same batch): it names us unless it is our own."""
        me = update.me or self.client.nick
        return MessageLine.seen_by(update.message, me, update.mine)

    def _apply(self, update: Update) -> list[Text | MessageLine]:
        """Bring the screen up to date with one update other than a message (`_received`);
        returns the log lines it adds."""
        if isinstance(update, PresenceChanged):
            if update.you:
                return [system_line(f"You are now known as {update.presence.nick}."),
                        *self._keep_outbox_again()]
            if update.presence.quiet:  # a script posting: the user list says it is here
                return []
            return [system_line(presence_sentence(update.presence))]
        if isinstance(update, OutboxChanged):
            self.query_one(Outbox).pending = update.pending
            return []
        if isinstance(update, OutboxSaving):
            if update.failure is None:
                return [system_line("Pending messages are saved on disk again.")]
            return [error_line(cannot_keep(update.failure))]
        if isinstance(update, StateChanged):
            return self._state_changed(update)
        if isinstance(update, Joined):
            history, lines = joined_lines(update)
            if update.rejoined:  # what was missed: said after what the log already shows
                return [*history, *lines, *self._keep_outbox_again()]
            # The room's history goes above what this app has said since it started (that
            # it serves, that messages cannot be kept...), which would otherwise be lost
            # far above, behind the backlog, and out of time order.
            self.query_one(ChatLog).write_above(history)
            return [*lines, *self._keep_outbox_again()]
        if isinstance(update, UsersListed):
            users = update.users.users
            return [system_line(f"In {update.users.room} ({len(users)}): {', '.join(users)}")]
        if isinstance(update, NickRefused):
            return nick_refused_lines(update)
        if isinstance(update, Refused):
            return refused_lines(update)
        return []

    def _state_changed(self, update: StateChanged) -> list[Text]:
        self.retry_at = update.retry_at  # before the state: its watcher redraws the header
        previous, self.state = self.state, update.state
        self.refresh_bindings()  # Ctrl+R is offered only while an attempt is waiting
        self.query_one(Outbox).state = self.query_one(UserList).state = update.state
        if update.state is State.OFFLINE and update.reason:
            hint = f" {TOKEN_HINT}" if self.client.auth_failed else ""
            return [error_line(f"Offline: {update.reason.rstrip('.')}.{hint}")]
        if update.state is not State.RECONNECTING or update.retry_at is None:
            return []
        reason = update.reason.rstrip(".")
        if previous is State.ONLINE:
            self._failure = reason
            return [error_line(f"Disconnected: {reason}. Reconnecting…")]
        if reason != self._failure and update.retry_at - time.monotonic() >= NEWS_DELAY:
            self._failure = reason  # a new reason is news (the same one again is not, nor
                                    # a failure retried at once, as while a server starts)
            return [error_line(f"Cannot connect: {reason}. Trying again…")]
        return []

    def _show_users(self) -> None:
        # While your nickname is refused you are no one in the room: its holder is another.
        me = "" if self.state is State.NICKNAME else self.client.nick
        users = self.query_one(UserList)
        users.users, users.me = self.client.users, me
        chat_input = self.query_one(ChatInput)
        chat_input.users, chat_input.me = self.client.users, me

    def _log(self, lines: list[Text | MessageLine]) -> None:
        self.query_one(ChatLog).write_lines(lines)

    # -- the header ------------------------------------------------------------------------

    def watch_state(self) -> None:
        self._show_title()

    def on_resize(self) -> None:
        self._show_title()
        for outbox in self.query(Outbox):  # (none before the screen is composed)
            outbox.fit_screen()

    def _show_title(self) -> None:
        parts = urlsplit(self.url)
        try:
            room = room_from_path(parts.path)
        except ValueError:
            room = parts.path
        state = state_text(self.state, self.retry_at, self.client.joined_once)
        # The room gives way to the state where the header is too narrow for both (the
        # header reads "#room — state · address"; wide, its icon and clock take HEADER_SIDES).
        width = self.size.width - (HEADER_SIDES if self.size.width >= NARROW_BELOW else 0)
        room_width = max(width - len(" — ") - cells(state) - 1 - HEADER_PADDING, MIN_ROOM_SHOWN)
        self.title = "#" + (room if cells(room) <= room_width else room[:room_width - 1] + "…")
        # The state first: on a narrow terminal the end of the header is what gets cut off.
        self.sub_title = f"{state} · {self.address or parts.netloc}"

    # -- from the keyboard to the network ------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        chat_input = self.query_one(ChatInput)
        line = event.value
        if is_blank(line):  # (only spaces, or invisible characters)
            return
        self.query_one(ChatLog).follow()  # what you send, and what it answers, is at the end
        try:
            command = parse_input(ChatInput.message_text(line))
        except UnknownCommand as error:
            self._log([error_line(str(error))])
            chat_input.give_back(line)  # to fix
            return
        if command.name is None and not self._fits(command.argument):
            chat_input.give_back(line)
            return
        if not (command.name == "/nick" and " " in command.argument):  # no passwords in history
            chat_input.remember(line)
        self._run_command(command.name, command.argument)

    def _fits(self, text: str) -> bool:
        reason = self.client.refusal(text)
        if reason is not None:
            self._log([error_line(f"{reason} Nothing was sent; shorten it and press Enter.")])
            return False
        return True

    def _run_command(self, name: str | None, argument: str) -> None:
        if name is None:
            self.client.say(argument)
        elif name == "/me":
            if not argument:
                self._log([error_line("Usage: /me ACTION")])
            elif self._fits(argument):
                self.client.me(argument)
        elif name == "/nick":
            nick, _, password = argument.partition(" ")
            if not nick:
                self._log([error_line("Usage: /nick NAME [PASSWORD]")])
            elif refusal := nick_refusal(nick):  # said at once, online or not
                self._log([error_line(f"{refusal} You are still {self.client.will_be}.")])
            else:  # sent, it is answered by the server (nick_unchanged too)
                unchanged = not password.strip() and nick == self.client.will_be == self.client.nick
                if not self.client.rename(nick, password.strip() or None):
                    self._log([system_line(f"You are already called {nick!r}." if unchanged else
                                           f"You will be {nick} when the connection is back.")])
        else:  # /who, /reconnect, /help, /clear, /quit: the actions of the same name
            getattr(self, f"action_{name.removeprefix('/')}")()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) offers the chat's commands before Textual's own."""
        yield SystemCommand("Who is here", "List who is in the room (/who)", self.action_who)
        yield SystemCommand("Help", "Commands and keys (/help, F1)", self.action_help)
        yield SystemCommand("Clear log", "Clear the log on your screen (/clear, Ctrl+L)",
                            self.action_clear)
        if self.check_action("reconnect", ()):
            yield SystemCommand("Reconnect now", "Try to connect at once instead of waiting"
                                " (/reconnect, Ctrl+R)", self.action_reconnect)
        yield from super().get_system_commands(screen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reconnect":
            return self.state is State.RECONNECTING and self.retry_at is not None
        return True

    def action_reconnect(self) -> None:
        """Try to connect now rather than at the end of the wait."""
        if self.client.reconnect_now():
            return
        if self.state is State.ONLINE:
            self._log([system_line("Already online.")])
        elif self.state is State.NICKNAME:
            self._log([system_line("Connected: the server waits for a free nickname;"
                                   " choose one with /nick NAME.")])
        elif self.state is State.OFFLINE:
            self._log([system_line("Not reconnecting: the connection was refused for good"
                                   " (see above); start tui-chat again to retry.")])
        else:
            self._log([system_line("Already trying to connect.")])

    def action_who(self) -> None:
        """List who is in the room (offline: who was, when last known)."""
        if not self.client.who():
            users = self.client.users
            self._log([system_line(f"Last known ({len(users)}): {', '.join(users)}" if users else
                                   "Not in the room yet: nobody known.")])

    def action_help(self) -> None:
        self._log([system_line(line) for line in HELP])

    def action_clear(self) -> None:
        self.query_one(ChatLog).clear()

    def action_scroll_log_end(self) -> None:
        self.query_one(ChatLog).follow()

    def action_scroll_log(self, pages: int) -> None:
        log = self.query_one(ChatLog)
        if pages < 0:
            log.scroll_page_up(animate=False)
        else:
            log.scroll_page_down(animate=False)
