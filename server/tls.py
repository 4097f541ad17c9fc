"""The server's TLS context, with errors that say what is wrong with the files given."""

from __future__ import annotations

import contextlib
import os
import ssl


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
