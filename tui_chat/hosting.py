"""Hosting the bundled server in the app's own process (`tui-chat --serve`)."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from tui_chat_server import ChatServer, ServerConfig
from tui_chat_server.app import cannot_listen
from tui_chat_server.database import StorageError

WILDCARD_HOSTS = ("0.0.0.0", "::")  # --serve on every interface


class CannotServe(Exception):
    """The server could not start; the message says why, for the terminal."""


@dataclass
class Hosted:
    """A started server, the lobby URL the app joins, and how others join it."""

    server: ChatServer
    url: str
    others: str

    def serving_line(self) -> str:
        return f"Serving {self.server.url} in this process. Others join with: {self.others}"

    def quit_warning(self, own: tuple | None) -> str | None:
        """What quitting would do to others, if any are connected besides the app's own
        client (from address `own`): close the server for them."""
        others = self.server.connections_besides(own)
        if not others:
            return None
        people = "1 other is" if others == 1 else f"{others} others are"
        return (f"You are hosting this server and {people} connected: quitting closes it for"
                " everyone.")


async def host(address: str, port: int, db: str | None = None,
               token: str | None = None) -> Hosted:
    """Start a server on `address`:`port` (`db`: its history, else the server's default;
    `token`: needed from everyone who joins), or raise CannotServe."""
    shown = f"[{address}]" if ":" in address else address
    url = f"ws://{shown}:{port}/lobby"
    options: dict = {"db": db} if db else {}
    if token:  # --token-file with --serve: guests need it too
        options["token"] = token
    try:
        server = ChatServer(ServerConfig(host=address, port=port, **options))
        await server.start()
    except (OSError, StorageError) as error:
        reason = cannot_listen(error) if isinstance(error, OSError) else str(error)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            reason = f"{reason} (if a tui-chat server runs there, join it: tui-chat {url})"
        raise CannotServe(f"tui-chat: cannot serve on {address}:{port}: {reason}") from error
    others = f"tui-chat {server.url}/lobby"
    if address in WILDCARD_HOSTS:  # every interface: connect over loopback, share a name
        loopback = "127.0.0.1" if address == "0.0.0.0" else "[::1]"
        url = f"ws://{loopback}:{server.port}/lobby"
        others = (f"tui-chat ws://{socket.gethostname()}:{server.port}/lobby (or"
                  " this machine's address on your network instead of its name)")
    else:
        url = f"{server.url}/lobby"
    if token:
        others += " --token-file FILE (a file holding the same token)"
    return Hosted(server, url, others)
