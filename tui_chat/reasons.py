"""Why a connection ended or could not be made, in one line for people. Text from the server
is cleaned of escape codes: it reaches the log, and from the headless commands the terminal."""

from __future__ import annotations

import asyncio
import socket

from websockets.asyncio.client import ClientConnection
from websockets.http11 import Response

from tui_chat.protocol import clean_text


TOKEN_HINT = "Give it with --token-file PATH or the TUI_CHAT_TOKEN variable."


def one_line(text: str) -> str:
    """`text` cleaned, on one line, at most 200 characters."""
    line = " ".join(clean_text(text).split())
    return line if len(line) <= 200 else line[:199] + "…"


def close_reason(connection: ClientConnection | None) -> str:
    """Why `connection` closed."""
    if connection is None or connection.close_code in (None, 1006):
        return "connection lost"
    if connection.close_code == 1001:
        return "the server went away"
    reason = one_line(connection.close_reason or "")
    return f"closed by the server (code {connection.close_code}{': ' if reason else ''}{reason})"


def describe(error: BaseException) -> str:
    """Why connecting failed."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"unknown host: {error.strerror}"
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return one_line(str(error)) or type(error).__name__


def refused_status(response: Response) -> tuple[str, bool]:
    """Why the server refused the handshake with `response`, and whether that is final:
    400, 401, 403 and 404 will not change by retrying; 429 (too many connections) passes."""
    status = response.status_code
    body = one_line(response.body.decode(errors="replace")) if response.body else ""
    detail = f": {body.rstrip('.')}" if body else ""  # in brackets, before the line's own stop
    return (f"the server refused the connection (HTTP {status}{detail})",
            status in (400, 401, 403, 404))
