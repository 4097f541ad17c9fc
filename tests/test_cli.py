"""The `tui-chat` command line: URLs, nicknames, --serve, --help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tui_chat.cli import default_nick, normalise_url, parse_serve


@pytest.mark.parametrize(
    ("given", "url"),
    [("ws://127.0.0.1:8765/lobby", "ws://127.0.0.1:8765/lobby"),
     ("127.0.0.1:9000", "ws://127.0.0.1:9000/lobby"),
     (":9000", "ws://127.0.0.1:9000/lobby"),
     ("ws://example.org", "ws://example.org/lobby"),
     ("wss://chat.example.org/dev", "wss://chat.example.org/dev"),
     ("ws://[::1]:8765/x", "ws://[::1]:8765/x"),
     ("http://127.0.0.1:8765/Dev", "ws://127.0.0.1:8765/dev"),
     ("HTTPS://chat.example.org", "wss://chat.example.org/lobby")],
)
def test_urls_are_completed(given: str, url: str) -> None:
    """Scheme and room are filled in (and the host: :PORT is this computer, as with
    --serve); a full URL is kept; an http(s) URL, as a browser shows the server's address,
    means ws(s); a room in capitals is the same room in lowercase."""
    assert normalise_url(given) == url


@pytest.mark.parametrize(("bad", "reason"), [
    ("ftp://x/lobby", "must start with ws:// or wss://"),
    ("ws:///lobby", "the URL has no host"),
    ("ws://x/Bad Room", "Invalid room name 'Bad Room': use 1-32 letters"),
    ("ws://x:99999/", "the port is not a number from 1 to 65535"),
    ("ws://x:0/lobby", "the port is not a number from 1 to 65535"),
    ("ws://[::1/lobby", "an IPv6 address goes in brackets, as in ws://[::1]:8765/lobby"),
    ("ws://::1/lobby", "an IPv6 address goes in brackets"),
    ("::1", "an IPv6 address goes in brackets"),
    ("ws://admin:hunter2@127.0.0.1:8765/lobby", "the URL holds a user name or password"),
    ("2001:db8::1:8765", "an IPv6 address goes in brackets"),
    ("ws://h:/lobby", "the port is not a number from 1 to 65535"),
    (":", "the URL has no host"),
    ("ws://x\x1bcy:1/lobby", "'ws://x\\x1bcy:1/lobby': the URL holds a control or invisible"),
    ("ws://x:1/lobby?a=\x1b]0;x\x07", "the URL holds a control or invisible character"),
    ("ws://x\u202e:1/lobby", "the URL holds a control or invisible character"),
])
def test_bad_urls_are_refused_with_a_reason(bad: str, reason: str) -> None:
    """A wrong scheme, missing host, bad room or port, an IPv6 address not (or not
    properly) in brackets, a password in the URL, or an escape code or invisible character
    anywhere in it (it is shown in the header and messages) is a ValueError that says what
    is wrong (without repeating a password, and with escape codes written out)."""
    with pytest.raises(ValueError) as refused:
        normalise_url(bad)
    assert reason in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert str(refused.value).isprintable()


def test_serve_address_parsing() -> None:
    """HOST:PORT, :PORT, PORT or HOST (the others from the default), IPv6 alone or in
    brackets with a port; anything else is refused with an example."""
    assert parse_serve("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_serve("[::1]:8765") == ("::1", 8765)
    assert parse_serve(":9000") == parse_serve("9000") == ("127.0.0.1", 9000)
    assert parse_serve("0.0.0.0") == parse_serve("0.0.0.0:") == ("0.0.0.0", 8765)
    assert parse_serve("[::1]") == parse_serve("::1") == ("::1", 8765)
    for bad in ("host:port", "host:70000", "[::1]9000", "[::1", "99999"):
        with pytest.raises(ValueError, match="for example 0.0.0.0:9000"):
            parse_serve(bad)


def test_default_nick_is_a_valid_nickname() -> None:
    """The login name is reduced to allowed characters (or 'guest')."""
    from tui_chat.nicknames import check_nick

    assert check_nick(default_nick())


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_chat", *args], capture_output=True,
                          text=True, timeout=30)


def test_help_shows_usage_and_examples() -> None:
    """`python -m tui_chat --help` documents the URL, --nick, --serve and shows examples."""
    result = run_cli("--help")
    assert result.returncode == 0
    for expected in ("URL", "--nick", "--serve", "--scrollback", "examples:", "tui-chat --serve",
                     "/nick NAME"):
        assert expected in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["ftp://x"], "ws:// or wss://"), (["--nick", "bad name"], "not allowed"),
     (["--serve", "nope:x"], "HOST:PORT"), (["ws://x/y", "--serve"], "not both"),
     (["--scrollback", "0"], "at least 1"), (["--nick", ""], "cannot be empty"),
     (["ws://x/y", "--cafile", "ca.pem"], "for wss:// URLs"),
     (["wss://x/y", "--cafile", "/nonexistent/ca.pem"], "--cafile"),
     (["--token-file", "/nonexistent/token"], "--token-file"),
     (["--password-file", "/nonexistent/pw"], "--password-file"),
     (["ws://x/y", "--db", "h.db"], "--db is for --serve"),
     (["send", "ws://x/y", ""], "TEXT is empty"),
     (["send", "ws://x/y", "hi", "--timeout", "nan"], "more than 0, not nan"),
     (["send", "ws://x/y", "hi", "--timeout", "-1"], "more than 0"),
     (["send", "ws://x/y", "--json", "hi"],
      "unrecognized arguments: --json (--json: an option of tui-chat tail)\n"),
     (["tail", "ws://x/y", "--me"], "unrecognized arguments: --me (--me: an option of tui-chat send)"),
     (["tail", "ws://x/y", "extra", "--bogus", "more"], "unrecognized arguments: --bogus\n")],
)
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    """Bad input exits 2 with a clear message, before any screen is drawn."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("command", [
    ["tui_chat"], ["tui_chat", "send"], ["tui_chat", "tail"],
    ["tui_chat_server"], ["tui_chat_server", "user"], ["tui_chat_server", "user", "add"]])
def test_every_help_text_fits_an_80_column_terminal(command: list[str]) -> None:
    """--help in a terminal 80 columns wide has no line longer than that (examples and notes
    included, which argparse does not wrap)."""
    result = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True,
                            text=True, timeout=20, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0
    assert [line for line in result.stdout.splitlines() if len(line) > 79] == []
