"""`tui-chat`: parse the command line; run the full-screen app or a headless command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import ssl
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tui_chat import __version__
from tui_chat.client import ChatClient
from tui_chat.cleaning import clean_text, is_blank
from tui_chat.nicknames import MAX_NICK, check_nick
from tui_chat.protocol import ProtocolError, room_from_path

DEFAULT_URL = "ws://127.0.0.1:8765/lobby"
DEFAULT_SERVE = "127.0.0.1:8765"

EXAMPLES = """\
examples:
  tui-chat --serve                  host a room in this process and join it
  tui-chat                          join ws://127.0.0.1:8765/lobby
  tui-chat ws://chat.example.org:8765/dev --nick alice
  tui-chat 192.168.1.20:8765        ws:// and /lobby are filled in
  tui-chat --serve 0.0.0.0:9000     let others on your network join port 9000

In the app: /nick NAME, /me ACTION, /who, /help, /clear, /quit (Ctrl+Q);
Up/Down recall what you sent; Tab completes nicknames and commands; Ctrl+R
(or /reconnect) tries to reconnect at once instead of waiting; Ctrl+P finds
any command.

For scripts: tui-chat send URL [TEXT ...] and tui-chat tail URL
(see tui-chat send --help and tui-chat tail --help).
"""


def default_nick() -> str:
    """The login name, reduced to what a nickname may hold (or `guest`)."""
    try:
        login = getpass.getuser()
    except Exception:  # no login name at all (some containers)
        login = ""
    nick = re.sub(r"[^\w.-]", "", login)[:MAX_NICK]
    return nick or "guest"


_IPV6_IN_BRACKETS = "an IPv6 address goes in brackets, as in ws://[::1]:8765/lobby"


def normalise_url(text: str) -> str:
    """Accept `host:port`, `:port` (on this computer), `ws://host:port` or a full room URL;
    return `ws[s]://host:port/room`
    (http:// and https:// are taken for ws:// and wss://: the same server, the same port)."""
    text = text.strip()
    if not text.isprintable():  # (quoted, it is written out: shown, never obeyed)
        raise ValueError(f"{text!r}: the URL holds a control or invisible character")
    if re.fullmatch(r":\d+(/.*)?", text, re.DOTALL):  # :PORT, as --serve takes it: this computer
        text = "127.0.0.1" + text
    if "://" not in text:
        text = "ws://" + text
    try:
        parts = urlsplit(text)
    except ValueError:  # "Invalid IPv6 URL": a bracket not closed, or one out of place
        raise ValueError(f"{text!r}: {_IPV6_IN_BRACKETS}") from None
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)  # (lower case)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"{text!r}: the URL must start with ws:// or wss:// (or http://,"
                         " https://)")
    if "@" in parts.netloc:  # (not quoted: it may hold a password)
        raise ValueError("the URL holds a user name or password before its host (NAME@ or"
                         " NAME:PASSWORD@), which tui-chat does not use and would show; give"
                         " a registered nickname's password with --password-file or"
                         " TUI_CHAT_PASSWORD")
    host = parts.netloc
    if host.count(":") > 1 and not host.startswith("["):  # ws://::1/lobby
        raise ValueError(f"{text!r}: {_IPV6_IN_BRACKETS}")
    if not parts.hostname:
        raise ValueError(f"{text!r}: the URL has no host")
    try:
        port = parts.port  # None when there is none
    except ValueError:
        port = 0
    if port == 0 or host.endswith(":"):  # (nothing listens on port 0: retried for ever)
        raise ValueError(f"{text!r}: the port is not a number from 1 to 65535")
    room = room_from_path(parts.path or "/")
    return urlunsplit((scheme, parts.netloc, "/" + room, parts.query, ""))


def parse_serve(text: str) -> tuple[str, int]:
    """Where --serve listens: HOST:PORT, :PORT or PORT (on the default host), or HOST (on
    the default port); an IPv6 address with a port goes in brackets ([::1]:8765)."""
    default_host, _, default_port = DEFAULT_SERVE.rpartition(":")
    unusable = ValueError(f"{text!r}: expected HOST:PORT, :PORT, PORT or HOST, for example"
                          " 0.0.0.0:9000 (the port a number from 0 to 65535)")
    given = text.strip()
    if given.isdigit():
        host, port = "", given
    elif given.startswith("["):
        host, bracket, rest = given[1:].partition("]")
        if not bracket or rest[:1] not in ("", ":"):
            raise unusable
        port = rest[1:]
    elif given.count(":") > 1:  # an IPv6 address alone
        host, port = given, ""
    else:
        host, _, port = given.partition(":")
    port = port or default_port
    if not port.isdigit() or int(port) > 65535:
        raise unusable
    return host or default_host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-chat",
        description="A full-screen terminal chat. Joins a tui-chat server room, or hosts one.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", nargs="?", metavar="URL",
                        help="room to join: ws://HOST:PORT/ROOM, wss:// for TLS (http:// and"
                             " https:// are read as those; HOST:PORT alone is the lobby there,"
                             " :PORT the lobby on this computer)"
                             f" (default: {DEFAULT_URL})")
    parser.add_argument("--serve", nargs="?", const=DEFAULT_SERVE, metavar="HOST:PORT",
                        help="host the server in this process and join it, on HOST:PORT,"
                             f" :PORT, PORT or HOST (default: {DEFAULT_SERVE});"
                             " with --token-file or TUI_CHAT_TOKEN, everyone needs that token;"
                             " while others are connected, quitting takes a second Ctrl+Q")
    parser.add_argument("--db", metavar="PATH",
                        help="with --serve: the server's history database (default: history.db"
                             " in your data directory; :memory: keeps no history)")
    parser.add_argument("--scrollback", type=int, default=10_000, metavar="ROWS",
                        help="screen rows the message log keeps; messages leave it whole, and the"
                             " newest stays whole however long (default: %(default)s)")
    add_connection_options(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def add_connection_options(parser: argparse.ArgumentParser,
                           nick_default: str = "your login name") -> None:
    """--nick and the access options, which the app and the headless commands share."""
    parser.add_argument("--nick", "-n", metavar="NAME",
                        help=f"your nickname (default: {nick_default})")
    access = parser.add_argument_group("access (the server decides what it needs)")
    access.add_argument("--token-file", type=Path, metavar="PATH",
                        help="file holding the server's shared token (or set TUI_CHAT_TOKEN)")
    access.add_argument("--password-file", type=Path, metavar="PATH",
                        help="file holding the password of your registered nickname"
                             " (or set TUI_CHAT_PASSWORD)")
    access.add_argument("--cafile", type=Path, metavar="PEM",
                        help="certificate authority to trust for wss:// (a private CA);"
                             " the server's hostname is always verified")


@dataclass(frozen=True)
class Connection:
    """Where to connect and as whom, checked."""

    url: str
    nick: str
    token: str | None
    password: str | None
    ssl_context: ssl.SSLContext | None

    def client(self, on_update, **options) -> ChatClient:
        return ChatClient(self.url, self.nick, on_update, token=self.token,
                          password=self.password, ssl_context=self.ssl_context, **options)


def connection_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace,
                         url_text: str, nick_suffix: str = "") -> Connection:
    """The URL, nickname, secrets and TLS trust the command line asks for, or a usage error.
    Without --nick: the login name, plus `nick_suffix` (scripts do not take yours)."""
    try:
        url = normalise_url(url_text)
        nick = (check_nick(args.nick) if args.nick is not None
                else default_nick()[:MAX_NICK - len(nick_suffix)] + nick_suffix)
    except ProtocolError as error:
        parser.error(error.message)
    except ValueError as error:
        parser.error(str(error))
    token = _secret(parser, args.token_file, "TUI_CHAT_TOKEN", "--token-file")
    password = _secret(parser, args.password_file, "TUI_CHAT_PASSWORD", "--password-file")
    context = None
    if args.cafile is not None:
        if not url.startswith("wss://"):
            parser.error("--cafile is for wss:// URLs")
        try:
            context = ssl.create_default_context(cafile=str(args.cafile))
        except (OSError, ssl.SSLError) as error:
            parser.error(f"--cafile {args.cafile}: {error}")
    return Connection(url, nick, token, password, context)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["send"], ["tail"]):
        return run_headless(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.url and args.serve:
        parser.error("give a URL to join, or --serve to host; not both")
    try:
        serve = parse_serve(args.serve) if args.serve else None
    except ValueError as error:
        parser.error(str(error))
    if args.scrollback < 1:
        parser.error("--scrollback must be at least 1")
    if args.db is not None and serve is None:
        parser.error("--db is for --serve: a server you join keeps its own history")
    connection = connection_from_args(parser, args, args.url or DEFAULT_URL)

    from tui_chat.app import ChatApp  # textual loads only when the app really runs

    app = ChatApp(connection.url, connection.nick, serve=serve, serve_db=args.db,
                  scrollback=args.scrollback, token=connection.token,
                  password=connection.password, ssl_context=connection.ssl_context)
    app.run()
    if app.exit_text:
        print(app.exit_text, file=sys.stderr)
    return app.return_code or 0  # 1 when serving failed, or the app failed


HEADLESS = {
    "send": ("Send messages to a room from a script, and wait until the server has stored"
             " every one (exactly once, across reconnects). It joins quietly: the room is"
             " not told it came and went. Exit status 0 when all were"
             " stored; 1, with the reasons on stderr, when one was refused or the server"
             " stopped acknowledging (messages not acknowledged may or may not be stored).",
             """\
examples:
  tui-chat send ws://127.0.0.1:8765/ops "deploy finished" --nick ci
  make test 2>&1 | tail -3 | tui-chat send 127.0.0.1:8765/ops --nick ci
"""),
    "tail": ("Print a room's messages as they arrive, one per line ([nick]: text, or JSON),"
             " after its recent history, until interrupted or until what reads its output"
             " goes away. Reconnects by itself and prints each message once.",
             """\
examples:
  tui-chat tail ws://127.0.0.1:8765/ops --nick watcher
  tui-chat tail 127.0.0.1:8765/ops --json --new | jq -r .text
"""),
}


def build_headless_parser(command: str) -> argparse.ArgumentParser:
    description, examples = HEADLESS[command]
    parser = argparse.ArgumentParser(prog=f"tui-chat {command}",
                                     description=textwrap.fill(description, 79),
                                     epilog=examples,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", metavar="URL", help="the room: ws://HOST:PORT/ROOM")
    if command == "send":
        parser.add_argument("text", nargs="*", default=[], metavar="TEXT",
                            help="the message (words are joined by spaces); without TEXT,"
                                 " each line of standard input is a message")
        parser.add_argument("--me", action="store_true", help="send actions, as /me does")
        parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                            help="once the input has ended, give up when no message has been"
                                 " acknowledged for this long (a server that paces a long"
                                 " input still acknowledges it steadily) (default: %(default)s)")
    else:
        parser.add_argument("--json", action="store_true",
                            help="one JSON `message` event per line (see docs/protocol.md)")
        parser.add_argument("--new", action="store_true",
                            help="only messages sent from now on, not the recent history")
    add_connection_options(parser, f"your login name and -{command}, so it does not take"
                                   " the name you chat under; 2 to 9 is added to it if"
                                   " another script has it")
    return parser


def run_headless(command: str, argv: list[str]) -> int:
    """`tui-chat send` or `tui-chat tail`: their exit status."""
    from tui_chat import headless

    parser = build_headless_parser(command)
    args, unknown = parser.parse_known_intermixed_args(argv)  # TEXT may come after options
    if unknown:  # (argparse takes the words after an unknown option for its values)
        options = [word for word in unknown if word.startswith("-")]
        other = "tail" if command == "send" else "send"
        theirs = [word for word in options
                  if word.partition("=")[0] in build_headless_parser(other)._option_string_actions]
        hint = f" ({', '.join(theirs)}: an option of tui-chat {other})" if theirs else ""
        parser.error(f"unrecognized arguments: {' '.join(options or unknown)}{hint}")
    connection = connection_from_args(parser, args, args.url, f"-{command}")
    if command == "send":
        if not args.timeout > 0:  # nan too: it would never run out
            parser.error(f"--timeout must be a number of seconds more than 0, not {args.timeout}")
        if not args.text and sys.stdin.isatty():
            parser.error("no message: give TEXT, or pipe lines in")
        if args.text and is_blank(clean_text(" ".join(args.text))):
            parser.error("TEXT is empty: there is nothing to send")
        texts = [" ".join(args.text)] if args.text else None
        work = headless.send(connection.client, headless.lines_of(texts, sys.stdin), args.me,
                             args.timeout, numbered=args.nick is None)
    else:
        work = headless.tail(connection.client, sys.stdout, args.json, not args.new,
                             numbered=args.nick is None)
    try:
        problems = asyncio.run(work)
    except KeyboardInterrupt:
        return 130
    if command == "tail":
        _forget_closed_output()
    for problem in problems:
        print(f"tui-chat {command}: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _forget_closed_output() -> None:
    """If what read our output has gone (`tui-chat tail | head`), send what is left of it
    nowhere: flushing it at exit would only print a BrokenPipeError."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _secret(parser: argparse.ArgumentParser, path: Path | None, variable: str,
            option: str) -> str | None:
    """A secret from a file (first line) or the environment; never from the command line."""
    if path is None:
        return os.environ.get(variable) or None
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        parser.error(f"{option}: {error.strerror}: {path}")
    if not secret:
        parser.error(f"{option}: {path} is empty")
    return secret
