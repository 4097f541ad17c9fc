"""The pure protocol module: text cleaning, names, and the JSON codec."""

from __future__ import annotations

import json

import pytest

from tui_chat import protocol
from tui_chat.cleaning import clean_text
from tui_chat.nicknames import check_nick, nick_key
from tui_chat.protocol import (
    Error,
    Hello,
    Message,
    Presence,
    ProtocolError,
    Say,
    Users,
    Welcome,
    Who,
    decode_client,
    decode_server,
    encode,
    plain_line,
    presence_sentence,
    room_from_path,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text", "plain text"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[Hwiped", "wiped"),
        ("\x1b]0;evil title\x07after", "after"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1bPdevice control\x1b\\x", "x"),
        ("\x9b31mC1 CSI", "C1 CSI"),
        ("bell\x07 nul\x00 del\x7f c1\x85", "bell nul del c1"),
        ("crlf\r\nand cr\rx", "crlf\nand cr\nx"),
        ("\u202eevil\u202c \u2066iso\u2069", "evil iso"),
        ("\x1b7saved\x1b8", "saved"),
        ("lone \x1b", "lone "),
        ("half \ud83d pair \udc00", "half \ufffd pair \ufffd"),
    ],
)
def test_clean_text_removes_escapes_and_controls(raw: str, clean: str) -> None:
    """Escape sequences, control characters and bidi overrides are removed; text stays."""
    assert clean_text(raw) == clean


def test_clean_text_keeps_markup_like_text() -> None:
    """Markup-looking text is data: cleaning leaves it exactly as written."""
    text = "[@click=app.quit]x[/] [bold]y[/bold] [/] é 漢字 🎉"
    assert clean_text(text) == text


@pytest.mark.parametrize(
    ("path", "room"),
    [("/", "lobby"), ("", "lobby"), ("/lobby", "lobby"), ("/dev-ops_2", "dev-ops_2"),
     ("/x?token=1", "x"), ("/" + "a" * 32, "a" * 32), ("/Lobby", "lobby"), ("/DEV-1", "dev-1"),
     ("/room/", "room"), ("/room/?x=1", "room"), ("/%64ev", "dev"), ("/%44EV%5f1", "dev_1")],
)
def test_room_from_path_accepts_valid_names(path: str, room: str) -> None:
    """The URL path names the room; `/` is the lobby; a query string and one slash after the
    name are ignored; letter case is not (`/Lobby` is the lobby), nor percent-encoding
    (`/%64ev` is `/dev`)."""
    assert room_from_path(path) == room


@pytest.mark.parametrize("path", ["/É", "/a b", "/a/b", "/a/b/", "/" + "a" * 33, "/é", "/room//", "//[x",
                                  "/a%2Fb", "/a%20b", "/%00", "/%2F", "/%", "/%zz"])
def test_room_from_path_refuses_invalid_names(path: str) -> None:
    """Anything but 1-32 letters a-z (either case), digits, '-' and '_' is a clear bad_room
    error."""
    with pytest.raises(ProtocolError) as caught:
        room_from_path(path)
    assert caught.value.code == protocol.BAD_ROOM
    assert "letters a-z" in caught.value.message


def test_an_invalid_room_is_named_as_typed_not_as_percent_encoded() -> None:
    """/caf%C3%A9 (how a client sends /café) is refused as 'café', escape codes written out."""
    with pytest.raises(ProtocolError, match="Invalid room name 'café'"):
        room_from_path("/caf%C3%A9")
    with pytest.raises(ProtocolError, match=r"Invalid room name 'a\\x1b\[2J'"):
        room_from_path("/a%1B[2J")


@pytest.mark.parametrize("nick", ["alice", "Bob_2", "a.b-c", "Zoë", "漢字", "x" * 24, " padded ",
                                  "Дмитрий", "Σωκράτης", "田中taro", "_7", ".x", "٣"])
def test_check_nick_accepts_valid_names(nick: str) -> None:
    """Letters (any script), digits, '_', '-' and '.', 1 to 24 characters with at least one
    letter or digit, trimmed."""
    assert check_nick(nick) == nick.strip()


@pytest.mark.parametrize(
    ("nick", "code"),
    [("", "nick_invalid"), ("   ", "nick_invalid"), ("x" * 25, "nick_invalid"),
     ("a b", "nick_invalid"), ("a\x1b[31m", "nick_invalid"), ("[bold]", "nick_invalid"),
     ("a\u202eb", "nick_invalid"), ("server", "nick_reserved"), ("ADMIN", "nick_reserved"),
     ("Ｓｙｓｔｅｍ", "nick_reserved"), ("\u0405erver", "nick_invalid"),
     ("\u0430lice", "nick_invalid"), ("\u3164", "nick_invalid"), ("a\u115f", "nick_invalid"),
     (".", "nick_invalid"), ("-", "nick_invalid"), ("...", "nick_invalid"), ("_-_", "nick_invalid")],
)
def test_check_nick_refuses_invalid_and_reserved_names(nick: str, code: str) -> None:
    """Bad nicknames get a specific code and a sentence saying what is wrong."""
    with pytest.raises(ProtocolError) as caught:
        check_nick(nick)
    assert caught.value.code == code
    assert caught.value.message


def test_nick_key_folds_case_and_compatibility_forms() -> None:
    """Nicknames compare after NFKC and case folding: fullwidth and case variants collide."""
    assert nick_key("Alice") == nick_key("ALICE") == nick_key("ａｌｉｃｅ")
    assert nick_key("Straße") == nick_key("STRASSE")
    assert nick_key("alice") != nick_key("alicia")
    assert nick_key("alice\u034f") == nick_key("al\u200bice") == nick_key("alice")
    assert nick_key("e\u034f\u0301") == nick_key("\u00e9")


@pytest.mark.parametrize(
    ("nick", "code_point"),
    [("Server\u034f", "U+034F"), ("alice\u034f", "U+034F"), ("alice\ufe0f", "U+FE0F"),
     ("alice\ufe00", "U+FE00"), ("alice\U000e0100", "U+E0100"), ("alice\U000e01ef", "U+E01EF"),
     ("alice\u180b", "U+180B"), ("alice\u180f", "U+180F"), ("alice\u17b4", "U+17B4"),
     ("alice\u17b5", "U+17B5"), ("a\u200db", "U+200D"), ("a\u2060b", "U+2060"),
     ("a\u00adb", "U+00AD"), ("\u3164", "U+3164"), ("a\u115f", "U+115F")],
)
def test_check_nick_refuses_invisible_characters(nick: str, code_point: str) -> None:
    """A default-ignorable character, shown as nothing, is refused anywhere, naming it."""
    with pytest.raises(ProtocolError) as caught:
        check_nick(nick)
    assert caught.value.code == "nick_invalid"
    assert f"invisible character ({code_point})" in caught.value.message


@pytest.mark.parametrize("nick", ["Server.", "server_", "s.e.r.v.e.r", "-admin-", "SYS_TEM",
                                  "ｓｅｒｖｅｒ_", "ADMIN.."])
def test_check_nick_refuses_reserved_names_with_separators(nick: str) -> None:
    """A reserved name is still reserved with '_', '-' or '.' anywhere in it."""
    with pytest.raises(ProtocolError) as caught:
        check_nick(nick)
    assert caught.value.code == "nick_reserved"
    assert "reserved: it reads as" in caught.value.message


@pytest.mark.parametrize(
    ("nick", "scripts"),
    [("b\u0585b", "Latin and Armenian"), ("\u13aalice", "Cherokee and Latin"),
     ("bob\u0661", "Latin and Arabic"), ("user\u09ea", "Latin and Bengali"),
     ("a\u0947b", "Latin and Devanagari"), ("\u0430lice", "Cyrillic and Latin"),
     ("\u05d0lice", "Hebrew and Latin"), ("\u0e1bob", "Thai and Latin"),
     ("漢字ㄅ한", "Han, Bopomofo and Hangul"), ("さくら한", "Hiragana and Hangul"),
     ("\u30fc\u0431", "Katakana and Cyrillic"), ("\u3005\u0431", "Han and Cyrillic")],
)
def test_check_nick_refuses_mixed_scripts(nick: str, scripts: str) -> None:
    """Letters of two scripts are refused, naming them, unless they mix as in Japanese,
    Chinese or Korean."""
    with pytest.raises(ProtocolError) as caught:
        check_nick(nick)
    assert caught.value.code == "nick_invalid"
    assert f"mixes {scripts} letters" in caught.value.message


@pytest.mark.parametrize("nick", ["佐々木", "ラーメン", "すずきー", "鈴木ラーメン", "田中さんtaro",
                                  "김민준", "Kim민준", "李ㄇ", "عمر", "محمد٣", "שלום", "สมศักดิ์",
                                  "देवनागरी", "Ｔａｒｏ", "ｶﾀｶﾅ", "ʻIolani", "Łukasz", "Zoë2",
                                  "Ⅎlip", "Հայկ"])
def test_check_nick_accepts_one_script_or_a_cjk_mix(nick: str) -> None:
    """One script, with common digits, marks and modifier letters, or Han with kana,
    Bopomofo or Hangul and Latin, is a valid name."""
    assert check_nick(nick) == nick


def test_every_event_round_trips_through_json() -> None:
    """What encode writes, decode reads back as an equal event."""
    message = Message(id=7, ts=1700000000000, nick="bob", text="hi", kind="action", cid="c1")
    server_events = [
        Welcome("alice", "lobby", ("alice", "bob"), "e1", (message,), True, 4000),
        message,
        Presence("rename", "bobby", ("alice", "bobby"), old="bob"),
        Users("lobby", ("alice",)),
        Error("too_long", "Too long.", "c2"),
    ]
    for event in server_events:
        assert decode_server(encode(event)) == event
    for event in [Hello("alice", 3, "e1", "tui-chat/1"), Say("hi", "c1"), Who()]:
        assert decode_client(encode(event)) == event


def test_encode_leaves_out_empty_fields() -> None:
    """Fields that are None are not written at all."""
    assert encode(Say("hi")) == '{"type":"say","text":"hi"}'


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ("[" * 100000, "bad_json"),
        (b'{"type":"say"}', "binary_frame"),
        ('{"text":"no type"}', "unknown_type"),
        ('{"type":"shout","text":"x"}', "unknown_type"),
        ('{"type":"say"}', "bad_event"),
        ('{"type":"say","text":42}', "bad_event"),
        ('{"type":"say","text":"x","cid":""}', "bad_event"),
        ('{"type":"say","text":"x","cid":"' + "c" * 65 + '"}', "bad_event"),
        ('{"type":"hello","nick":"a","since":-1,"epoch":"e"}', "bad_event"),
        ('{"type":"hello","nick":"a","since":true,"epoch":"e"}', "bad_event"),
        ('{"type":"hello","nick":"a","since":3}', "bad_event"),
    ],
)
def test_decode_client_refuses_bad_frames_with_a_code(frame: str | bytes, code: str) -> None:
    """Every malformed frame raises ProtocolError with a machine-readable code and a sentence."""
    with pytest.raises(ProtocolError) as caught:
        decode_client(frame)
    assert caught.value.code == code
    assert caught.value.message.endswith(".")


@pytest.mark.parametrize(("raw", "clean"), [
    ("\x9d" * 5000, ""), ("\x9da" * 3, "aaa"), ("\x1b]" * 5000, ""), ("\x1bP" * 3 + "x", "x"),
    ("\x1b]x\x1b" * 3, "xxx"), ("\x1b]0;t\x1bX\x07after", "0;tafter"),
])
def test_unterminated_string_sequences_lose_their_introducers(raw: str, clean: str) -> None:
    """An OSC, DCS, SOS, PM or APC without its terminator (many of them, as a hostile client
    sends to make cleaning slow) loses its introducer, and what follows stays as text; a
    body is never read past another ESC (tests/benchmarks/hostile_text.py times these)."""
    assert clean_text(raw) == clean


def test_a_messages_text_is_left_for_the_server_to_measure_before_cleaning() -> None:
    """`say` and `me` text is decoded as sent (the server checks its length, then cleans it);
    any other string field of a client's event over 1,024 characters is refused."""
    assert decode_client('{"type":"say","text":"\\u001b[31mred"}').text == "\x1b[31mred"
    with pytest.raises(ProtocolError) as caught:
        decode_client(json.dumps({"type": "hello", "nick": "\x9d" * 1025}))
    assert (caught.value.code, caught.value.message) == (
        "bad_event", "In 'hello', 'nick' is over 1,024 characters long.")


def test_decode_error_carries_the_cid_it_answers() -> None:
    """An invalid `say` with a cid is answered with that cid, so the sender can match it."""
    with pytest.raises(ProtocolError) as caught:
        decode_client('{"type":"say","text":null,"cid":"abc"}')
    assert caught.value.cid == "abc"


def test_a_frame_without_a_type_is_told_so() -> None:
    """A missing `type` is named as missing, not quoted as the word None."""
    with pytest.raises(ProtocolError) as caught:
        decode_client('{"text":"no type"}')
    assert caught.value.message.startswith("Missing 'type': expected one of hello, say")
    with pytest.raises(ProtocolError) as caught:
        decode_client('{"type":"shout"}')
    assert caught.value.message.startswith("Unknown 'type' 'shout': expected one of")


def test_an_error_is_written_so_that_any_cid_survives_utf8() -> None:
    """An error echoing half of a surrogate pair is still valid UTF-8 and decodes to it."""
    frame = encode(Error("bad_event", "No.", "\ud800x"))
    assert json.loads(frame.encode("utf-8"))["cid"] == "\ud800x"


def test_decode_client_ignores_unknown_fields() -> None:
    """Unknown fields are ignored, so newer clients can talk to this server."""
    assert decode_client('{"type":"who","color":"red"}') == Who()


def test_decode_server_cleans_hostile_strings() -> None:
    """A hostile server's escape codes are removed from every string the client decodes."""
    frame = ('{"type":"welcome","nick":"a\\u001b[2J","room":"lobby","users":["b\\u001b]0;x\\u0007"],'
             '"epoch":"e","history":[{"id":1,"ts":1,"nick":"c","text":"\\u001b[31mred"}]}')
    welcome = decode_server(frame)
    assert welcome.nick == "a"
    assert welcome.users == ("b",)
    assert welcome.history[0].text == "red"


def test_names_from_a_server_stay_on_one_line() -> None:
    """Line breaks and tabs in a nickname, a user list or a room become spaces (a message's
    text keeps its lines), so no name can start a line that passes for another's."""
    message = decode_server('{"type":"message","id":1,"ts":1,"nick":"evil\\n[Server]","text":"a\\nb"}')
    assert (message.nick, message.text) == ("evil [Server]", "a\nb")
    presence = decode_server('{"type":"presence","event":"rename","nick":"x\\ty","old":"o\\r\\nld",'
                             '"users":["u\\u2028v"]}')
    assert (presence.nick, presence.old, presence.users) == ("x y", "o ld", ("u v",))


def test_an_error_from_a_server_stays_on_one_line() -> None:
    """An error's message, which `send` and `tail` print after their own name, has its line
    breaks made spaces: a hostile server cannot add a line that passes for theirs."""
    error = decode_server('{"type":"error","code":"bad_room\\nx","message":"No.\\ntui-chat send: ok"}')
    assert (error.code, error.message) == ("bad_room x", "No. tui-chat send: ok")


def test_decode_server_refuses_unknown_message_kind() -> None:
    """A message kind outside chat/action/system is refused."""
    with pytest.raises(ProtocolError):
        decode_server('{"type":"message","id":1,"ts":1,"nick":"a","text":"x","kind":"evil"}')


def test_plain_lines_follow_the_classic_format() -> None:
    """Chat as `[nick]: text`, actions as `* nick text`, server lines as `[Server]: text`."""
    assert plain_line(Message(1, 1, "alice", "hello")) == "[alice]: hello"
    assert plain_line(Message(1, 1, "alice", "waves", "action")) == "* alice waves"
    assert plain_line(Message(1, 1, "x", "restarting", "system")) == "[Server]: restarting"


def test_no_line_of_a_plain_message_can_pass_for_a_line_of_its_own() -> None:
    """The lines after the first of a multi-line message are indented."""
    spoof = "hi\n[Server]: bob has left the chat."
    assert plain_line(Message(1, 1, "eve", spoof)).splitlines() == [
        "[eve]: hi", "  [Server]: bob has left the chat."]
    assert plain_line(Message(1, 1, "eve", "a\nb", "action")) == "* eve a\n  b"
    assert presence_sentence(Presence("join", "bob", ())) == "bob has joined the chat."
    assert presence_sentence(Presence("leave", "bob", ())) == "bob has left the chat."
    assert presence_sentence(Presence("rename", "b2", (), "bob")) == "bob is now known as b2."


@pytest.mark.parametrize("frame", [
    '{"type": "who"}', ' {"type": "who"}', '{"type": "who"} \n', '{"type": "who"}{"x": 1}',
    '{"type": "who"', '{"type": "who",}', '{"a": "}"}', '{}', '{"a": NaN}', '{"a": "\\ud800"}',
])
def test_the_fast_json_path_reads_exactly_what_json_loads_reads(frame: str) -> None:
    """Frames are parsed by the scanner behind json.loads, with the same result or error."""
    import json

    try:
        expected: object = json.loads(frame)
    except ValueError as error:
        expected = str(error)
    try:
        got: object = protocol._loads(frame)
    except ValueError as error:
        got = str(error)
    assert repr(got) == repr(expected)
