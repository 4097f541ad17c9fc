"""The tui-chat wire protocol: events, their JSON codec, the plain dialect and room names.

The nickname rules are in nicknames.py, text cleaning in cleaning.py.

This module is pure: no sockets, no `websockets`, no `textual`. The server and the client both
use it, so the rules in `docs/protocol.md` are implemented exactly once, here.
"""

from __future__ import annotations

import json
import json.scanner
import re
import time
import unicodedata
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Union
from urllib.parse import unquote

from tui_chat.cleaning import clean_name, clean_text

SUBPROTOCOL = "tui-chat.v1"
DEFAULT_ROOM = "lobby"
DEFAULT_MAX_TEXT = 4000
DEFAULT_MAX_FRAME = 64 * 1024
MAX_CID = 64
MAX_FIELD = 1024  # characters in a client's string field other than a message's text
MIN_SENDER_KEY = 16  # long enough that two clients never choose the same one
MAX_INT = 2**53 - 1  # the largest integer every JSON reader keeps exact
SERVER_NAME = "Server"
KINDS = ("chat", "action", "system")
PRESENCE_EVENTS = ("join", "leave", "rename")
# A `presence` event lists the room's users in rooms up to this many members; in bigger
# ones it carries only the change (its size, sent to every member, would grow as members²).
USERS_IN_PRESENCE = 100
# A command, in the app's input and in a raw client's lines alike: a slash and ASCII letters,
# alone or before whitespace and its argument (`/me waves`). Any other line that starts with
# one slash is text (`/`, `/ hello`, `/2`, `/usr/bin`), and `//` sends a line with one removed.
COMMAND = re.compile(r"/([A-Za-z]+)(?:\s+(.*))?", re.DOTALL)

# -- error codes ---------------------------------------------------------------------------

BAD_JSON = "bad_json"
BAD_EVENT = "bad_event"
UNKNOWN_TYPE = "unknown_type"
BINARY_FRAME = "binary_frame"
NOT_JOINED = "not_joined"
ALREADY_JOINED = "already_joined"
NICK_INVALID = "nick_invalid"
NICK_RESERVED = "nick_reserved"
NICK_TAKEN = "nick_taken"
NICK_UNCHANGED = "nick_unchanged"
TOO_LONG = "too_long"
EMPTY = "empty"
BAD_ROOM = "bad_room"
UNKNOWN_COMMAND = "unknown_command"
RATE_LIMITED = "rate_limited"
UNAUTHORIZED = "unauthorized"
NICK_REGISTERED = "nick_registered"
BAD_PASSWORD = "bad_password"
UNAVAILABLE = "unavailable"
CID_REUSED = "cid_reused"
# The refusals of a nickname: the name cannot be had as asked, and another may be tried.
NICK_ERRORS = frozenset({NICK_INVALID, NICK_RESERVED, NICK_TAKEN, NICK_REGISTERED, BAD_PASSWORD})


class ProtocolError(ValueError):
    """Input that breaks the protocol: `code` is machine-readable, the message is for people."""

    def __init__(self, code: str, message: str, cid: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.cid = cid


# -- ids a client chooses ------------------------------------------------------------------


def valid_cid(cid: object) -> bool:
    """A `cid` as a client may choose it: 1 to MAX_CID characters, none of them a control,
    a formatting character (zero-width space, byte order mark, soft hyphen, direction marks),
    a line or paragraph separator, or half of a surrogate pair (_NOT_IN_CID)."""
    return type(cid) is str and 0 < len(cid) <= MAX_CID and (
        cid.isprintable()  # the common case, which has none of them
        or not any(unicodedata.category(char) in _NOT_IN_CID for char in cid))


_NOT_IN_CID = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))  # Unicode's general categories


def valid_sender_key(key: object) -> bool:
    """A `sender_key` as a client may choose it: MIN_SENDER_KEY to MAX_CID printable ASCII
    characters, no spaces (what random bytes in hex or base64 are)."""
    return (type(key) is str and MIN_SENDER_KEY <= len(key) <= MAX_CID and key.isascii()
            and key.isprintable() and " " not in key)


def now_ms() -> int:
    """Wall-clock time in milliseconds since the Unix epoch: the unit of every `ts`."""
    return time.time_ns() // 1_000_000


# -- rooms ---------------------------------------------------------------------

_ROOM = re.compile(r"[a-z0-9_-]{1,32}")


def quoted(value: str, limit: int = 40) -> str:
    """`value` in quotes for a message about it, cut after `limit` characters. What cannot
    be shown as it is (escape codes, invisible characters) is written as Python writes it,
    `\\x1b` or `\\u200b`: seen, not obeyed nor hidden."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def room_from_path(path: str) -> str:
    """The room named by a WebSocket request path (`/` is the lobby, `/dev/` and `/%64ev` are
    `/dev`); ProtocolError if invalid (naming it as typed: a client sends /café as
    /caf%C3%A9)."""
    name = path.partition("?")[0].partition("#")[0].removeprefix("/")
    if name.endswith("/") and "/" not in name[:-1]:
        name = name[:-1]  # one slash after the name, as a browser or a shell may add
    name = unquote(name)  # (after: an escaped slash, /%2F, is part of the name)
    if not name:
        return DEFAULT_ROOM
    room = name.lower() if name.isascii() else name  # /Dev is the room dev
    if not _ROOM.fullmatch(room):
        raise ProtocolError(
            BAD_ROOM,
            f"Invalid room name {quoted(name)}: use 1-32 letters a-z (in either case, they"
            " are the same room), digits, '-' or '_'.",
        )
    return room


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Client: join the room as `nick`; `since`+`epoch` ask for only what was missed; `token`
    is the server's shared secret, `password` the one of a registered nickname, `resume` the
    secret of an earlier welcome, to take over `nick` from that earlier connection, and
    `sender_key` the client's own secret, the same under every nickname it uses: the `cid`s
    it sends are its own under that key, whatever it is called when it sends them again.
    `quiet`: join and leave unannounced (a script that posts and goes; it is listed)."""

    type: ClassVar[str] = "hello"
    nick: str
    since: int | None = None
    epoch: str | None = None
    client: str | None = None
    token: str | None = None
    password: str | None = None
    resume: str | None = None
    sender_key: str | None = None
    quiet: bool | None = None

    def __repr__(self) -> str:  # never print secrets
        return f"Hello(nick={self.nick!r}, since={self.since!r}, epoch={self.epoch!r})"


@dataclass(frozen=True, slots=True)
class Say:
    """Client: post a chat line; `cid` comes back on the echo as the acknowledgement."""

    type: ClassVar[str] = "say"
    text: str
    cid: str | None = None


@dataclass(frozen=True, slots=True)
class Me:
    """Client: post an action (`/me waves`)."""

    type: ClassVar[str] = "me"
    text: str
    cid: str | None = None


@dataclass(frozen=True, slots=True)
class Nick:
    """Client: change nickname (`password` for a registered one)."""

    type: ClassVar[str] = "nick"
    nick: str
    password: str | None = None

    def __repr__(self) -> str:
        return f"Nick(nick={self.nick!r})"


@dataclass(frozen=True, slots=True)
class Who:
    """Client: ask for the user list."""

    type: ClassVar[str] = "who"


@dataclass(frozen=True, slots=True)
class Message:
    """Server: a message stored in the room's history under `id`."""

    type: ClassVar[str] = "message"
    id: int
    ts: int
    nick: str
    text: str
    kind: str = "chat"
    cid: str | None = None


@dataclass(frozen=True, slots=True)
class Welcome:
    """Server: you joined; who is here and what was said."""

    type: ClassVar[str] = "welcome"
    nick: str
    room: str
    users: tuple[str, ...]
    epoch: str
    history: tuple[Message, ...] = ()
    recovered: bool | None = None
    max_text: int = DEFAULT_MAX_TEXT
    resume: str | None = None  # this connection's secret, for a `hello` that takes over
    max_frame: int | None = None  # the largest frame the server accepts, in bytes (0: any)
    last_id: int | None = None  # the last message sent to the room before you joined (0: none)
    keyed: bool | None = None  # true: your `sender_key` is what your cids belong to
    run: str | None = None  # this run of the server: another value once it has restarted

    def __repr__(self) -> str:  # never print the secret
        return (f"Welcome(nick={self.nick!r}, room={self.room!r}, epoch={self.epoch!r},"
                f" history={len(self.history)} messages)")


@dataclass(frozen=True, slots=True)
class Presence:
    """Server: someone joined, left or was renamed (`old` is the previous nickname);
    `quiet`: a join or leave of a quiet member, which updates the user list and says nothing.
    `users`: everyone now, in rooms up to USERS_IN_PRESENCE members (else None: apply the
    change to the list you have, `users_after`)."""

    type: ClassVar[str] = "presence"
    event: str
    nick: str
    users: tuple[str, ...] | None = None
    old: str | None = None
    quiet: bool | None = None


@dataclass(frozen=True, slots=True)
class Users:
    """Server: the user list, in answer to `who`."""

    type: ClassVar[str] = "users"
    room: str
    users: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Error:
    """Server: your input was refused; `cid` names the message it answers, if any."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    cid: str | None = None


ClientEvent = Union[Hello, Say, Me, Nick, Who]
ServerEvent = Union[Welcome, Message, Presence, Users, Error]
CLIENT_EVENTS = {cls.type: cls for cls in (Hello, Say, Me, Nick, Who)}
SERVER_EVENTS = {cls.type: cls for cls in (Welcome, Message, Presence, Users, Error)}

# -- JSON codec -----------------------------------------------------------------------------

# Every field name has one meaning and one JSON type wherever it appears.
_FIELD_TYPES: dict[str, str] = {
    "nick": "str", "since": "int", "epoch": "str", "client": "str", "text": "str",
    "cid": "str", "id": "int", "ts": "int", "kind": "str", "room": "str", "users": "names",
    "history": "messages", "recovered": "bool", "max_text": "int", "max_frame": "int",
    "event": "str",
    "old": "str", "code": "str", "message": "str", "token": "str", "password": "str",
    "resume": "str", "last_id": "int", "sender_key": "str", "keyed": "bool", "run": "str",
    "quiet": "bool",
}
# From a client, never altered: a nickname is refused by the nickname rules if it holds a
# control or invisible character (cleaned, it would be accepted as another name), and a
# secret is compared as it was sent.
_AS_SENT = ("nick", "token", "password")
_JSON_NAMES = {"str": "a string", "int": f"a whole number from 0 to {MAX_INT}",
               "bool": "true or false",
               "names": "a list of strings", "messages": "a list of messages"}


def encode(event: ClientEvent | ServerEvent) -> str:
    """One event as the text of one JSON frame (fields that are None are left out). An
    error's `cid` is as the client sent it, which may hold half of a surrogate pair: UTF-8
    cannot carry that, so errors are written in ASCII, with `\\u` escapes."""
    return json.dumps(_to_dict(event), ensure_ascii=type(event) is Error, separators=(",", ":"))


def _to_dict(event: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"type": event.type}
    for item in fields(event):
        value = getattr(event, item.name)
        if value is None:
            continue
        if item.name == "history":
            value = [_to_dict(message) for message in value]
        data[item.name] = value
    return data


def decode_client(frame: str | bytes) -> ClientEvent:
    """Parse and validate one frame a client sent; ProtocolError says what is wrong."""
    return _decode(frame, CLIENT_EVENTS)  # type: ignore[return-value]


def decode_server(frame: str | bytes) -> ServerEvent:
    """Parse and validate one frame a server sent, removing escape codes from every string."""
    return _decode(frame, SERVER_EVENTS)  # type: ignore[return-value]


def _decode(frame: str | bytes, events: dict[str, type]) -> Any:
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raise ProtocolError(BINARY_FRAME, "Binary frames are not supported: send JSON text frames.")
    try:
        data = _loads(frame)
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_JSON, "The frame is not valid JSON.") from None
    if events is SERVER_EVENTS and type(data) is dict and data.get("type") == "message":
        message = _fast_message(data)
        if message is not None:
            return message
    return _from_dict(data, events)


_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # json.loads without its wrappers


def _loads(frame: str) -> Any:
    """`json.loads(frame)`, faster for the usual frame: one object with nothing around it."""
    if frame[:1] == "{" and frame[-1:] == "}":
        try:
            data, end = _scan_json(frame, 0)
        except StopIteration:
            pass  # not valid: json.loads raises the right error
        else:
            if end == len(frame):
                return data
    return json.loads(frame)


def _fast_message(data: dict[str, Any]) -> Message | None:
    """The common case, a well-formed `message`, checked field by field without the generic
    loop; anything unusual returns None and gets the generic path and its error messages."""
    message_id, ts, nick, text = data.get("id"), data.get("ts"), data.get("nick"), data.get("text")
    kind, cid = data.get("kind", "chat"), data.get("cid")
    if (type(message_id) is int and 0 <= message_id <= MAX_INT and type(ts) is int
            and 0 <= ts <= MAX_INT and type(nick) is str and type(text) is str and kind in KINDS
            and (cid is None or valid_cid(cid))):
        return Message(message_id, ts, clean_name(nick), clean_text(text), kind, cid)
    return None


def _history_message(item: Any) -> Message | None:
    """One message of a welcome's history; None if it cannot be read (a kind from a newer
    server, a field out of range), which leaves it out rather than the whole welcome."""
    try:
        return _from_dict({**item, "type": "message"} if isinstance(item, dict) else item,
                          {"message": Message})
    except ProtocolError:
        return None


def frame_type(frame: str) -> str | None:
    """The `type` a frame says it is, even if it cannot be decoded (None if it says none)."""
    try:
        data = _loads(frame)
    except (ValueError, RecursionError):
        return None
    kind = data.get("type") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


def _from_dict(data: Any, events: dict[str, type]) -> Any:
    if not isinstance(data, dict):
        raise ProtocolError(BAD_JSON, "Each frame must be a JSON object with a 'type' field.")
    cid = data.get("cid")
    cid = cid if isinstance(cid, str) else None  # echoed exactly as sent, valid or not
    kind = data.get("type")
    cls = events.get(kind) if isinstance(kind, str) else None
    if cls is None:
        given = "Missing 'type'" if kind is None else f"Unknown 'type' {quoted(str(kind))}"
        raise ProtocolError(UNKNOWN_TYPE, f"{given}: expected one of {', '.join(events)}.", cid)
    values: dict[str, Any] = {}
    for item in fields(cls):
        value = data.get(item.name)
        if value is None:
            if item.default is item.default_factory is MISSING:
                raise ProtocolError(BAD_EVENT, f"'{cls.type}' needs the field '{item.name}'.", cid)
            continue
        values[item.name] = _convert(cls.type, item.name, value, cid)
    event = cls(**values)
    _check(event, cid)
    return event


def _convert(event_type: str, name: str, value: Any, cid: str | None) -> Any:
    kind = _FIELD_TYPES[name]
    if name in ("cid", "sender_key") and isinstance(value, str):
        return value  # never altered: the sender matches its acknowledgements on it (_check)
    if kind == "str" and isinstance(value, str):
        if name == "text" and event_type in ("say", "me"):
            return value  # its receiver checks its length, then cleans it (Hub.vet_text)
        if event_type in CLIENT_EVENTS:
            if len(value) > MAX_FIELD:
                raise ProtocolError(BAD_EVENT, f"In '{event_type}', '{name}' is over"
                                    f" {MAX_FIELD:,} characters long.", cid)
            if name in _AS_SENT:
                return value
        # Only a message's text may span lines; every other string (names, and an error's
        # message above all, which headless commands print) is shown on one line.
        return clean_text(value) if name == "text" else clean_name(value)
    if (kind == "int" and isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= MAX_INT):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "names" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(clean_name(v) for v in value)
    if kind == "messages" and isinstance(value, list):
        return tuple(message for message in map(_history_message, value) if message is not None)
    raise ProtocolError(
        BAD_EVENT, f"In '{event_type}', '{name}' must be {_JSON_NAMES[kind]}.", cid
    )


def _check(event: Any, cid: str | None) -> None:
    given = getattr(event, "cid", None)
    if given is not None and not valid_cid(given):
        raise ProtocolError(BAD_EVENT, f"'cid' must be 1 to {MAX_CID} characters, none of them"
                            " a control, formatting or line separator character.", cid)
    if isinstance(event, Hello) and event.sender_key is not None and not valid_sender_key(
            event.sender_key):
        raise ProtocolError(BAD_EVENT, f"'sender_key' must be {MIN_SENDER_KEY} to {MAX_CID}"
                            " printable ASCII characters, without spaces.")
    if isinstance(event, Hello) and (event.since is None) != (event.epoch is None):
        raise ProtocolError(BAD_EVENT, "'since' and 'epoch' must be given together.", cid)
    if isinstance(event, Message) and event.kind not in KINDS:
        raise ProtocolError(BAD_EVENT, f"'kind' must be one of {', '.join(KINDS)}.", cid)
    if isinstance(event, Presence) and event.event not in PRESENCE_EVENTS:
        raise ProtocolError(BAD_EVENT, f"'event' must be one of {', '.join(PRESENCE_EVENTS)}.")


# -- the plain-text dialect -----------------------------------------------------------------


def server_line(text: str) -> str:
    """A line from the server itself, as plain-text clients see it."""
    return f"[{SERVER_NAME}]: {text}"


def plain_line(message: Message) -> str:
    """A stored message as plain-text clients see it. The lines after the first of a
    multi-line message are indented, so none of them can pass for a line of its own."""
    if message.kind == "system":
        return server_line(message.text)
    text = message.text.replace("\n", "\n  ")
    if message.kind == "action":
        return f"* {message.nick} {text}"
    return f"[{message.nick}]: {text}"


def presence_sentence(presence: Presence) -> str:
    """What a join, leave or rename says to people."""
    if presence.event == "join":
        return f"{presence.nick} has joined the chat."
    if presence.event == "leave":
        return f"{presence.nick} has left the chat."
    return f"{presence.old} is now known as {presence.nick}."
