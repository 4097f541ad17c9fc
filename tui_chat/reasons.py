"""Why a connection ended or could not be made, in one line for people.

Text from the server is cleaned of escape codes: it reaches the log, and from the headless
commands the terminal."""

from __future__ import annotations

import asyncio
import socket
import ssl

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidMessage
from websockets.frames import CloseCode
from websockets.http11 import Response

from tui_chat.cleaning import clean_text, cut

TOKEN_HINT = "Give it with --token-file PATH or the TUI_CHAT_TOKEN variable."
NOT_TLS_HINT = "if the server does not use TLS, try ws://"  # after wss:// fails early

# OpenSSL's X509_V_ERR_* codes (`verify_code`) that have advice of their own.
NAME_MISMATCH = (62, 64)  # a certificate for other names, or other IP addresses
CERT_NOT_YET_VALID, CERT_HAS_EXPIRED = 9, 10
UNKNOWN_ISSUER = (2, 18, 19, 20)  # issuer unknown here, self-signed (leaf or in the chain)


def one_line(text: str) -> str:
    """`text` cleaned, on one line, at most 200 characters."""
    return cut(" ".join(clean_text(text).split()))


def close_reason(connection: ClientConnection | None) -> str:
    """Why `connection` closed."""
    if connection is None or connection.close_code in (None, 1006):
        return "connection lost"
    if connection.close_code == CloseCode.GOING_AWAY:
        return "the server went away"
    reason = one_line(connection.close_reason or "")
    return f"closed by the server (code {connection.close_code}{': ' if reason else ''}{reason})"


def describe(error: BaseException, url: str = "") -> str:
    """Why connecting to `url` failed; where the likely cause is a wrong scheme or a
    certificate this machine does not trust, what to do about it."""
    tls = url.startswith("wss:")
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"unknown host: {error.strerror}"
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    if isinstance(error, ssl.SSLCertVerificationError):
        why = one_line(error.verify_message or error.reason or "").rstrip(".")
        detail = f" ({why})" if why else ""
        code = error.verify_code
        if code in NAME_MISMATCH:
            return (f"the server's certificate is for another name{detail}; connect by a name"
                    " it was issued for")
        if code in (CERT_NOT_YET_VALID, CERT_HAS_EXPIRED):
            return (f"the server's certificate is out of date{detail}; if it should be"
                    " valid, check this computer's clock")
        if code in UNKNOWN_ISSUER:
            return (f"the server's certificate is not trusted{detail}; if a certificate"
                    " authority of your own signed it, give its certificate with --cafile PEM")
        return f"the server's certificate was refused{detail}"
    if isinstance(error, ssl.SSLError) and tls:
        why = one_line(error.reason or str(error)).replace("_", " ").lower()
        return f"the TLS handshake failed ({why}); {NOT_TLS_HINT}"
    if isinstance(error, ConnectionResetError):
        return f"the connection was reset; {NOT_TLS_HINT}" if tls else "the connection was reset"
    if isinstance(error, InvalidMessage) and url.startswith("ws:"):
        answer = one_line(str(error.__cause__ or ""))
        if "HTTP/" in answer:  # a web server, but not one that speaks WebSocket
            return (f"the server answered in HTTP, not WebSocket ({answer}); check that this"
                    " is the address of a tui-chat server")
        return f"{one_line(str(error))}; if the server uses TLS, try wss://"
    return one_line(str(error)) or type(error).__name__



def refused_status(response: Response) -> tuple[str, bool]:
    """Why the server refused the handshake with `response`, and whether that is final:
    400, 401, 403 and 404 will not change by retrying; 429 (too many connections from your
    address, or a wait after wrong tokens from it) passes."""
    status = response.status_code
    body = one_line(response.body.decode(errors="replace")) if response.body else ""
    detail = f": {body.rstrip('.')}" if body else ""  # in brackets, before the line's own stop
    return (f"the server refused the connection (HTTP {status}{detail})",
            status in (400, 401, 403, 404))
