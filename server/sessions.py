"""One session per connection, one class per dialect: they turn frames into hub calls."""

from __future__ import annotations

import logging
import re
from typing import Any

from websockets.exceptions import ConnectionClosed

from server.hub import Greeting, Hub, send_now
from server.rooms import Dialect, Member, Room
from tui_chat.protocol import (
    ALREADY_JOINED,
    BINARY_FRAME,
    NOT_JOINED,
    Error,
    Hello,
    Me,
    Nick,
    ProtocolError,
    Say,
    UNKNOWN_COMMAND,
    Users,
    Who,
    decode_client,
    encode,
    plain_line,
    server_line,
)

log = logging.getLogger("tui_chat.server")


class Session:
    """What both dialects share: the connection, the room it asked for, and membership."""

    dialect: Dialect

    def __init__(self, hub: Hub, connection: Any, room_name: str, peer: str) -> None:
        self.hub = hub
        self.connection = connection
        self.room_name = room_name
        self.peer = peer
        self.room: Room | None = None
        self.member: Member | None = None

    async def run(self) -> None:
        """Handle frames until the connection closes, for whatever reason."""
        try:
            async for frame in self.connection:
                await self.on_frame(frame)
        except ConnectionClosed:
            pass

    async def on_frame(self, frame: str | bytes) -> None:
        raise NotImplementedError

    def send(self, payload: str) -> None:
        send_now([self.connection], payload)

    def refuse(self, error: ProtocolError) -> None:
        """Tell the client why its input was refused, and log it."""
        nick = self.member.nick if self.member else "-"
        log.info("%s %s refused: %s: %s", self.peer, nick, error.code, error.message)
        self.send(self.render_error(error))

    @staticmethod
    def render_error(error: ProtocolError) -> str:
        raise NotImplementedError

    def join(self, nick: str, since: int | None = None, epoch: str | None = None) -> None:
        room, member, greeting = self.hub.join(
            self.room_name, nick, self.dialect, self.connection, self.peer, since, epoch
        )
        self.room, self.member = room, member
        self.greet(greeting)  # before anything else can be written to this connection
        log.info("%s joined %s as %s", self.peer, room.name, member.nick)

    def greet(self, greeting: Greeting) -> None:
        raise NotImplementedError

    def leave(self) -> None:
        if self.room is not None and self.member is not None:
            self.hub.leave(self.room, self.member)

    async def post(self, text: str, kind: str, cid: str | None = None) -> None:
        assert self.room is not None and self.member is not None
        text = self.hub.vet_text(text, cid)
        await self.hub.post(self.room, self.member, text, kind, cid)

    def rename(self, nick: str) -> None:
        assert self.room is not None and self.member is not None
        old = self.member.nick
        self.hub.rename(self.room, self.member, nick)
        log.info("%s renamed %s to %s", self.peer, old, self.member.nick)


class JsonSession(Session):
    """The `tui-chat.v1` dialect: one JSON event per text frame."""

    dialect = Dialect.JSON

    @staticmethod
    def render_error(error: ProtocolError) -> str:
        return encode(Error(error.code, error.message, error.cid))

    async def on_frame(self, frame: str | bytes) -> None:
        try:
            event = decode_client(frame)
            if isinstance(event, Hello):
                if self.member is not None:
                    raise ProtocolError(ALREADY_JOINED, f"You already joined as {self.member.nick}.")
                self.join(event.nick, event.since, event.epoch)
            elif self.member is None:
                raise ProtocolError(
                    NOT_JOINED, "Send 'hello' with your nickname first.", getattr(event, "cid", None)
                )
            elif isinstance(event, Say):
                await self.post(event.text, "chat", event.cid)
            elif isinstance(event, Me):
                await self.post(event.text, "action", event.cid)
            elif isinstance(event, Nick):
                self.rename(event.nick)
            elif isinstance(event, Who):
                assert self.room is not None
                self.send(encode(Users(self.room.name, self.room.users())))
        except ProtocolError as error:
            self.refuse(error)

    def greet(self, greeting: Greeting) -> None:
        self.send(encode(greeting.welcome))
        for message in greeting.more:
            self.send(encode(message))


_COMMAND = re.compile(r"/([A-Za-z]+)(?:\s+(.*))?", re.DOTALL)
PLAIN_HELP = (
    "Commands: /me ACTION, /nick NAME, /who, /help."
    " Start a line with // to send it with one '/' removed."
)


class PlainSession(Session):
    """The plain-text dialect: the first line is the nickname, then every line is a message."""

    dialect = Dialect.PLAIN

    @staticmethod
    def render_error(error: ProtocolError) -> str:
        return server_line(error.message)

    async def on_frame(self, frame: str | bytes) -> None:
        try:
            if not isinstance(frame, str):
                raise ProtocolError(BINARY_FRAME, "Binary frames are not supported: send text.")
            text = frame.rstrip("\r\n")
            if self.member is None:
                self.join(text)
            elif not text.strip():
                return  # an empty line from a raw client: nothing to send, nothing to refuse
            elif text.startswith("//"):
                await self.post(text[1:], "chat")
            elif match := _COMMAND.fullmatch(text.strip()):
                await self.command(match.group(1).lower(), (match.group(2) or "").strip())
            else:
                await self.post(text, "chat")
        except ProtocolError as error:
            self.refuse(error)

    async def command(self, name: str, argument: str) -> None:
        assert self.room is not None
        if name == "me":
            await self.post(argument, "action")
        elif name == "nick":
            self.rename(argument)
        elif name == "who":
            users = self.room.users()
            self.send(server_line(f"In {self.room.name} ({len(users)}): {', '.join(users)}."))
        elif name == "help":
            self.send(server_line(PLAIN_HELP))
        else:
            raise ProtocolError(UNKNOWN_COMMAND, f"Unknown command /{name}. {PLAIN_HELP}")

    def greet(self, greeting: Greeting) -> None:
        welcome = greeting.welcome
        for message in welcome.history + greeting.more:
            self.send(plain_line(message))
        self.send(server_line(
            f"Welcome to {welcome.room}, {welcome.nick}! Here now: {', '.join(welcome.users)}."
            " Type /help for commands."
        ))
