"""Hosting the bundled server in the app's own process (`tui-chat --serve`)."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from tui_chat_server import ChatServer, ServerConfig
from tui_chat_server.history import StorageError

WILDCARD_HOSTS = ("0.0.0.0", "::")  # --serve on every interface


class CannotServe(Exception):
    """The server could not start; the message says why, for the terminal."""


@dataclass(frozen=True)
class Hosted:
    """A started server, the lobby URL the app joins, and how others join it."""

    server: ChatServer
    url: str
    others: str


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
        reason = getattr(error, "strerror", None) or error
        if getattr(error, "errno", None) == errno.EADDRINUSE:
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
