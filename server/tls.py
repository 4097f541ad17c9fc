"""TLS: the server's context (errors name what is wrong with the files), started per connection."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Callable


class CertificateError(ssl.SSLError):
    """What is wrong with the certificate or key files, as one sentence (an SSLError made
    from a message alone would print as a Python tuple)."""

    def __str__(self) -> str:
        return str(self.args[0])


def tls_context(certfile: str, keyfile: str | None) -> ssl.SSLContext:
    """A server context for `certfile` (the certificate chain, and the private key too when
    `keyfile` is None). CertificateError names the file at fault and what it lacks."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        with open(certfile, "rb") as source:
            chain = source.read()  # read once: `certfile` may be a pipe, as <(vault read ...)
        key = chain
        if keyfile is not None:
            with open(keyfile, "rb") as source:
                key = source.read()
    except OSError as error:  # a file it cannot read: say which, not "cannot listen"
        raise CertificateError(f"{error.filename or certfile}: {error.strerror or error}") from None
    if b"-----BEGIN CERTIFICATE-----" not in chain:
        raise CertificateError(f"{certfile} holds no certificate (PEM, '-----BEGIN CERTIFICATE-----')")
    if b"PRIVATE KEY-----" not in key:
        raise CertificateError(f"{keyfile} holds no private key" if keyfile else
                           f"{certfile} holds no private key: give the key with --keyfile")
    if b"ENCRYPTED" in key:
        raise CertificateError(f"the private key in {keyfile or certfile} is encrypted with a"
                           " passphrase, which a server cannot type: decrypt it, e.g."
                           " openssl pkey -in KEY -out KEY-PLAIN (and keep that file private)")
    try:
        with _loadable(certfile, chain) as chain_path, \
                _loadable(keyfile or certfile, key) as key_path:
            context.load_cert_chain(chain_path, key_path)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise CertificateError(f"the private key in {keyfile or certfile} is not the key of the"
                               f" certificate in {certfile}") from None
        raise CertificateError(f"{certfile}: {error.strerror or error}") from None
    except OSError as error:  # (a pipe, where there is no memory file to copy it to)
        raise CertificateError(str(error)) from None
    return context


@contextlib.contextmanager
def _loadable(path: str, data: bytes):
    """A path OpenSSL can read `data` (read from `path`) at: `path` itself for a regular
    file; for a pipe, which can be read only once, a file in memory only, so that a key
    never touches the disk (Linux)."""
    if os.path.isfile(path):
        yield path
        return
    if not hasattr(os, "memfd_create"):
        raise OSError(f"{path}: reading a certificate or key from a pipe needs Linux; give"
                      " a file")
    descriptor = os.memfd_create("tui-chat-certificate")
    try:
        os.write(descriptor, data)
        yield f"/proc/self/fd/{descriptor}"
    finally:
        os.close(descriptor)


async def start_tls(transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol,
                    context: ssl.SSLContext | None, timeout: float,
                    early: Callable[[], bytes]) -> asyncio.Transport:
    """Speak TLS on a connection already made, as its server (the handshake within `timeout`
    seconds; 0: no limit): the transport that then carries `protocol`'s plaintext. `early()`
    gives, and forgets, what `protocol` was handed before TLS took the transport over
    (uvloop reads as soon as a connection is made): the start of the TLS handshake."""
    loop = asyncio.get_running_loop()
    started = asyncio.ensure_future(loop.start_tls(
        transport, protocol, context, server_side=True,  # type: ignore[arg-type]
        ssl_handshake_timeout=timeout or None))
    # After start_tls has given the transport to TLS and queued the start of it, and in the
    # same turn of the loop as that start, so before anything more is read.
    loop.call_soon(loop.call_soon, _hand_over, transport, protocol, early)
    secured = await started
    assert secured is not None
    return secured  # type: ignore[return-value]


def _hand_over(transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol,
               early: Callable[[], bytes]) -> None:
    """Give TLS what `protocol` read before TLS took over, before anything read after."""
    data = early()
    receiver = transport.get_protocol()  # TLS's (a buffered protocol)
    while data and receiver is not protocol and not transport.is_closing():
        buffer = receiver.get_buffer(len(data))  # type: ignore[attr-defined]
        size = min(len(buffer), len(data))
        buffer[:size] = data[:size]
        receiver.buffer_updated(size)  # type: ignore[attr-defined]
        data = data[size:]
