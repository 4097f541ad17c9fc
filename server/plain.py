"""The plain-text dialect, for any raw WebSocket client.

The first line is the nickname, then every line is a message; what arrives is
`[alice]: hello` and `[Server]: ...` lines."""

from __future__ import annotations

import re

from tui_chat.protocol import (
    BINARY_FRAME,
    COMMAND,
    NICK_ERRORS,
    NICK_INVALID,
    SUBPROTOCOL,
    UNKNOWN_COMMAND,
    ProtocolError,
    plain_line,
    server_line,
)

from .hub import Greeting
from .rooms import Dialect
from .sessions import Session, not_registered

_JSON_HELLO = re.compile(r'\s*\{.*"type"\s*:\s*"hello"', re.DOTALL)
PLAIN_HELP = (
    "Commands: /me ACTION, /nick NAME [PASSWORD], /who, /help."
    " Start a line with // to send it with one '/' removed."
)

JOIN_FORM = "NAME, or NAME PASSWORD for a registered one"
PLAIN_RETRY = f"Send your nickname again ({JOIN_FORM})."


class PlainSession(Session):
    """The plain-text dialect: the first line is the nickname (and the password of a registered
    one, after a space), then every line is a message."""

    __slots__ = ()

    dialect = Dialect.PLAIN
    resent = False

    @staticmethod
    def render_error(error: ProtocolError) -> str:
        return server_line(error.message)

    def start(self) -> None:
        """Tell a raw client's user what to send first: a nickname. (One without a token a
        server needs was refused at the handshake: a raw client can give it only there.)"""
        super().start()
        self.send(server_line(f"This is tui-chat, room {self.room_name}. Send your nickname"
                              f" to join ({JOIN_FORM})."))

    async def on_frame(self, frame: str | bytes) -> None:
        try:
            if not await self.pace():
                return
            if not isinstance(frame, str):
                raise ProtocolError(BINARY_FRAME, "Binary frames are not supported: send text.")
            text = frame.rstrip("\r\n")
            if self.member is None:
                await self.join_as(text)
            elif not text.strip():
                return  # an empty line from a raw client: nothing to send, nothing to refuse
            elif text.startswith("//"):
                await self.post(text[1:], "chat")
            elif match := COMMAND.fullmatch(text.strip()):
                await self.settle()  # a rename or a who comes after the lines before it
                await self.command(match.group(1).lower(), (match.group(2) or "").strip())
            else:
                await self.post(text, "chat")
        except ProtocolError as error:
            await self.fail(error)

    async def join_as(self, text: str) -> None:
        """Join with the first line; a name refused says that the next line is a new try
        (a raw client's user would otherwise take it for a chat line)."""
        self._stop_deadline()  # whatever the name, someone is there
        if _JSON_HELLO.match(text):  # a bot that forgot to ask for the JSON dialect
            raise ProtocolError(NICK_INVALID, "This looks like a JSON hello, but this"
                                " connection speaks plain text: to speak JSON, offer the"
                                f" WebSocket subprotocol {SUBPROTOCOL!r}. {PLAIN_RETRY}")
        try:
            await self.join(*self.name_and_password(text))
        except ProtocolError as error:
            if error.code not in NICK_ERRORS:
                raise
            raise ProtocolError(error.code, f"{error.message} {PLAIN_RETRY}") from None

    def name_and_password(self, text: str) -> tuple[str, str | None]:
        """`NAME PASSWORD` for a registered name; text without a space is a name. Anything
        else is refused, saying both what a name may not hold and that NAME is not one
        that takes a password (as the JSON dialect says of a `nick` with a password), and
        never repeating what follows the space: a mistyped name's password."""
        name, space, password = text.strip().partition(" ")
        if not space:
            return text, None
        accounts = self.hub.accounts
        if accounts is not None and accounts.find(name) is not None:
            return name, password.strip()
        raise not_registered(name)

    async def command(self, name: str, argument: str) -> None:
        assert self.room is not None
        if name == "me":
            await self.post(argument, "action")
        elif name == "nick":
            await self.rename(*self.name_and_password(argument))
        elif name in ("who", "help") and argument:  # a paste that starts with one, most likely
            raise ProtocolError(UNKNOWN_COMMAND, f"/{name} takes nothing after it: start the"
                                " line with // to send it as text.")
        elif name == "who":
            users = self.room.users()
            self.reply(server_line(f"In {self.room.name} ({len(users)}): {', '.join(users)}."))
        elif name == "help":
            self.reply(server_line(PLAIN_HELP))
        else:
            raise ProtocolError(UNKNOWN_COMMAND, f"Unknown command /{name}. {PLAIN_HELP}")

    def write_greeting(self, greeting: Greeting) -> str:
        """History lines, then (after any catch-up) the welcome line."""
        welcome = greeting.welcome
        for message in welcome.history:
            self.send(plain_line(message))
        others = greeting.count - len(welcome.users)
        here = ", ".join(welcome.users) + (f" and {others:,} more" if others > 0 else "")
        return server_line(
            f"Welcome to {welcome.room}, {welcome.nick}! Here now: {here}."
            " Type /help for commands."
        )

    render_message = staticmethod(plain_line)
