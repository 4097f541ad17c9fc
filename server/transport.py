"""The server's WebSocket connection class: slow consumers and stalled handshakes end here."""

from __future__ import annotations

import asyncio
import logging

from websockets.asyncio.server import ServerConnection

log = logging.getLogger("tui_chat.server")


def peer_name(connection: ServerConnection) -> str:
    """`host:port` of the other end, for log lines."""
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return str(address)


class ChatConnection(ServerConnection):
    """A connection whose output may not pile up: once more than the write limit is waiting
    for a client that does not read, the client is disconnected and its memory freed.

    While `greeting` is set (a long history replay is being written) the bound is not applied;
    it applies again once that output has drained. `authorized` records a valid bearer token.
    """

    greeting = False
    authorized = False
    handshake_timeout: float | None = None
    pending_limit = 0
    on_lost = None  # called once when the TCP connection is gone (frees its admission slot)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            on_lost, self.on_lost = self.on_lost, None
            on_lost()

    def pause_writing(self) -> None:
        super().pause_writing()
        if not self.greeting:
            log.warning("%s slow consumer: over %d bytes of output waiting; disconnected",
                        peer_name(self), self.pending_limit)
            self.transport.abort()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.greeting = False

    async def handshake(self, *args, **kwargs) -> None:
        try:
            await super().handshake(*args, **kwargs)
        except asyncio.CancelledError:
            if self.request is None:
                log.info("%s handshake not finished within %s s; closed", peer_name(self),
                         self.handshake_timeout)
            raise
