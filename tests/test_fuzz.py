"""Property-based fuzzing of the protocol decoders and text rules (hypothesis): any input
either decodes to a valid event or raises ProtocolError with a code and a sentence; nothing
else escapes, and nothing decoded carries a control character.

`TUI_CHAT_FUZZ=100000 python -m pytest tests/test_fuzz.py` runs a longer campaign."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_chat.cleaning import clean_text
from tui_chat.nicknames import check_nick
from tui_chat.protocol import (
    CLIENT_EVENTS,
    SERVER_EVENTS,
    ProtocolError,
    decode_client,
    decode_server,
    encode,
    room_from_path,
)

EXAMPLES = int(os.environ.get("TUI_CHAT_FUZZ", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CONTROL = {chr(c) for c in [*range(0, 9), *range(11, 32), *range(0x7F, 0xA0)]} | {
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from(["type", "nick", "text", "cid", "since", "epoch", "id", "ts", "kind",
                               "users", "history", "event", "old", "code", "message", "room",
                               "recovered", "max_text", "token", "password", "client"])
event_types = st.sampled_from(list(CLIENT_EVENTS) + list(SERVER_EVENTS) + ["", "nope", "SAY"])
objects = st.dictionaries(field_names, json_values, max_size=8).flatmap(
    lambda data: event_types.map(lambda kind: {**data, "type": kind}) | st.just(data))
frames = st.one_of(
    st.text(),
    st.binary(),
    objects.map(json.dumps),
    json_values.map(json.dumps),
)


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, list)):
        return [s for item in value for s in strings_in(item)]
    if hasattr(value, "__dataclass_fields__"):
        return [s for name in value.__dataclass_fields__ for s in strings_in(getattr(value, name))]
    return []


def check_decoder(decode, frame) -> None:
    try:
        event = decode(frame)
    except ProtocolError as error:
        assert error.code and error.message.endswith(".")
        return
    assert decode(encode(event)) == event, "a decoded event round-trips"


@FUZZ
@given(frames)
def test_any_client_frame_decodes_or_gets_a_clear_error(frame) -> None:
    """No input crashes the server's decoder; every refusal has a code and a sentence."""
    check_decoder(decode_client, frame)


@FUZZ
@given(frames)
def test_any_server_frame_decodes_cleanly_or_gets_a_clear_error(frame) -> None:
    """No input crashes the client's decoder, and decoded strings hold no control characters."""
    check_decoder(decode_server, frame)
    try:
        event = decode_server(frame)
    except ProtocolError:
        return
    assert not any(set(text) & CONTROL for text in strings_in(event))


@FUZZ
@given(st.text())
def test_cleaned_text_has_no_control_characters_and_is_stable(text: str) -> None:
    """clean_text removes every control character, and cleaning twice changes nothing more."""
    cleaned = clean_text(text)
    assert not set(cleaned) & CONTROL
    assert clean_text(cleaned) == cleaned


@FUZZ
@given(st.text())
def test_nicknames_are_accepted_valid_or_refused_with_a_reason(nick: str) -> None:
    """check_nick either returns a 1-24 character name without controls, or explains."""
    try:
        shown = check_nick(nick)
    except ProtocolError as error:
        assert error.code.startswith("nick_") and error.message
        return
    assert 1 <= len(shown) <= 24 and not set(shown) & CONTROL and " " not in shown


@FUZZ
@given(st.text())
def test_room_paths_are_valid_rooms_or_refused(path: str) -> None:
    """room_from_path gives a valid room name or a bad_room error, for any path."""
    try:
        room = room_from_path(path)
    except ProtocolError as error:
        assert error.code == "bad_room"
        return
    assert 1 <= len(room) <= 32 and room == room.lower()
