"""Browser origins written as browsers send them, so that `--allow-origin` matches them."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def origin_of(text: str) -> str:
    """`text` as the Origin a browser sends (lower case, no default port), or ValueError
    saying why it is not one."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or parts.username or parts.password or parts.path or parts.query
            or parts.fragment or any(char.isspace() for char in parts.netloc)):
        raise ValueError(f"{text!r} is not an origin: it is SCHEME://HOST[:PORT] with nothing"
                         " after it, as a browser sends it (e.g. https://chat.example.org)")
    scheme = parts.scheme.lower()
    host = _browser_host(text, parts.hostname, bracketed="[" in parts.netloc)
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _browser_host(text: str, host: str, bracketed: bool) -> str:
    """A host as browsers write it in an Origin: an IPv6 address in its shortest form (the
    URL standard's), a name with letters beyond ASCII in its xn-- (IDNA) form."""
    if bracketed or ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
            if address.scope_id:
                raise ValueError  # a zone (%eth0) is not allowed in a URL
        except ValueError:
            raise ValueError(f"{text!r} is not an origin: {host!r} is not an IPv6 address"
                             " as a URL writes it") from None
        return f"[{_ipv6_as_in_urls(address)}]"
    if _ends_in_a_number(host):
        return _ipv4_as_in_urls(text, host)
    if not host.isascii():
        # Python's codec is IDNA 2003; browsers follow UTS 46, which keeps these letters
        # that IDNA 2003 maps away (faß.de is xn--fa-hia.de to a browser, fass.de here).
        try:
            if any(char in host for char in "\u00df\u03c2\u200c\u200d"):
                raise UnicodeError
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{text!r}: write {host!r} in the xn-- form your browser"
                             " shows for it") from None
    return host


def _ends_in_a_number(host: str) -> bool:
    """The URL standard's test for a host that must be an IPv4 address (127.1, 0x7f.1)."""
    labels = host.split(".")
    last = labels[-1] or (labels[-2] if len(labels) > 1 else "")
    return (last.isascii() and last.isdigit()) or (last[:2] in ("0x", "0X") and all(
        char in "0123456789abcdefABCDEF" for char in last[2:]))


def _ipv4_as_in_urls(text: str, host: str) -> str:
    """The URL standard's IPv4 parser and serializer: one to four numbers, each decimal,
    hexadecimal (0x) or octal (a leading 0), the last filling the bytes left over."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()  # a trailing dot
    numbers = []
    for part in parts:
        base, digits = 10, part
        if part[:2] in ("0x", "0X"):
            base, digits = 16, part[2:] or "0"
        elif len(part) > 1 and part.startswith("0"):
            base, digits = 8, part[1:]
        try:
            numbers.append(int(digits, base) if digits.isascii() and digits.isalnum() else -1)
        except ValueError:
            numbers.append(-1)
    if (len(numbers) > 4 or min(numbers) < 0 or any(n > 255 for n in numbers[:-1])
            or numbers[-1] >= 256 ** (5 - len(numbers))):
        raise ValueError(f"{text!r} is not an origin: {host!r} is not an IPv4 address")
    value = numbers[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(numbers[:-1]))
    return str(ipaddress.IPv4Address(value))


def _ipv6_as_in_urls(address: ipaddress.IPv6Address) -> str:
    """The URL standard's IPv6 serializer: eight hexadecimal pieces without leading zeros,
    the first longest run of two or more zero pieces written as '::'. (Python writes an
    IPv4-mapped address with a dotted quad at its end; URLs never do.)"""
    pieces = [int.from_bytes(address.packed[i:i + 2], "big") for i in range(0, 16, 2)]
    best, best_length, start = -1, 1, None
    for index, piece in enumerate([*pieces, 1]):  # a sentinel piece ends the last run
        if piece == 0 and start is None:
            start = index
        elif piece != 0 and start is not None:
            if index - start > best_length:
                best, best_length = start, index - start
            start = None
    hexes = [f"{piece:x}" for piece in pieces]
    if best < 0:
        return ":".join(hexes)
    return ":".join(hexes[:best]) + "::" + ":".join(hexes[best + best_length:])
