"""`tui-chat-server`: serve until SIGINT or SIGTERM; `tui-chat-server user ...` manages accounts."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import ssl
import sys
from pathlib import Path

from .accounts import Accounts
from .app import ChatServer, ServerConfig, cannot_listen, default_db_path
from .database import SYNC_MODES, StorageError
from .origins import origin_of
from tui_chat import __version__, collector
from tui_chat.protocol import MAX_INT

EXAMPLES = """\
examples:
  tui-chat-server                 serve ws://127.0.0.1:8765 (rooms by path)
  tui-chat-server --host 0.0.0.0 --port 9000 --token-file secret.txt
  tui-chat-server --certfile cert.pem --keyfile key.pem      serve wss://
  tui-chat-server user add alice  register a nickname (asks for its password)
  python -m websockets ws://127.0.0.1:8765/lobby
                                  a raw client: the first line is your nickname

Clients that offer the WebSocket subprotocol tui-chat.v1 speak JSON
(docs/protocol.md); every other client speaks plain text. GET /healthz answers
200 for load balancers.
"""


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 0 to 65535")
    return int(text)


def _non_negative(convert, what: str):
    """An argparse type: `convert` the text, refusing negatives and non-numbers clearly."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value:  # NaN
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        if value < 0:
            raise argparse.ArgumentTypeError("must be 0 or more")
        if value > MAX_INT:  # what a JSON peer reads exactly
            raise argparse.ArgumentTypeError(f"must be at most {MAX_INT}")
        return value

    return parse


_count = _non_negative(int, "a whole number")
_seconds = _non_negative(float, "a number of seconds")


MIN_FRAME = 1024  # bytes: room for a hello with every field, and a message's JSON around its text


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="tui-chat-server",
        description="The tui-chat WebSocket chat server: rooms, nicknames, durable history.\n"
                    "Registered nicknames: tui-chat-server user {add,remove,list}\n"
                    "(see tui-chat-server user --help).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="address to listen on (default: %(default)s)")
    add("--port", type=_port, default=defaults.port,
        help="port to listen on, 0 for any free port (default: %(default)s)")
    add("--db", default="", metavar="PATH",
        help="SQLite file for history and registered nicknames, in a directory that exists;"
             " ':memory:' keeps history in memory only (default: history.db in your data"
             " directory)")
    add("--history", type=_count, default=defaults.history, metavar="N",
        help="messages kept per room, 0 for none; a resent message is recognised for 7"
             " days all the same, by the digest of its text (default: %(default)s)")
    add("--sync", choices=SYNC_MODES, default=defaults.sync,
        help="full: an acknowledged message survives power loss (an fsync per commit);"
             " normal: it survives a crash of the server, not of the machine"
             " (default: %(default)s)")
    add("--backlog", type=_count, default=defaults.backlog, metavar="N",
        help="recent messages sent to a client that joins (default: %(default)s)")
    add("--presence-limit", type=_count, default=defaults.presence_limit, metavar="N",
        help="rooms with more members than this do not announce each join, leave and"
             " rename (default: %(default)s)")
    limits = parser.add_argument_group("limits (0 turns a limit off)")
    add = limits.add_argument
    add("--max-text", type=_count, default=defaults.max_text, metavar="CHARS",
        help="longest message accepted, in characters (default: %(default)s)")
    add("--max-frame", type=_count, default=defaults.max_frame, metavar="BYTES",
        help="largest WebSocket frame accepted, at least 1024 and 4 bytes a --max-text"
             " character more; bigger ones close with 1009 (default: %(default)s)")
    add("--rate", type=_non_negative(float, "a number"), default=defaults.rate, metavar="PER_SECOND",
        help="messages a connection may send per second, on average; faster ones wait their"
             " turn, in order (default: %(default)s)")
    add("--burst", type=_count, default=defaults.burst, metavar="N",
        help="messages a connection may send at once (default: %(default)s)")
    add("--max-per-ip", type=_count, default=defaults.max_per_ip, metavar="N",
        help="connections per client address (an IPv6 client's /64 network), those still in"
             " their handshake included; more get HTTP 429 (default: %(default)s)")
    add("--max-clients", type=_count, default=defaults.max_clients, metavar="N",
        help="connections in all, those still in their handshake included; more get HTTP 503"
             " (default: %(default)s)")
    add("--max-pending", type=_count, default=defaults.max_pending, metavar="BYTES",
        help="output waiting for a client that does not read before it is disconnected"
             " (default: %(default)s)")
    add("--handshake-timeout", type=_seconds, default=defaults.handshake_timeout,
        metavar="SECONDS", help="close connections whose handshake takes longer (default: %(default)s)")
    add("--join-timeout", type=_seconds, default=defaults.join_timeout, metavar="SECONDS",
        help="close connections that have not asked to join (sent their hello, or a raw"
             " client its nickname) this long after connecting; 0: never (default: %(default)s)")
    add("--ping-interval", type=_seconds, default=defaults.ping_interval, metavar="SECONDS",
        help="keepalive ping interval (default: %(default)s)")
    add("--ping-timeout", type=_seconds, default=defaults.ping_timeout, metavar="SECONDS",
        help="drop a peer that has not answered a ping after this long (default: %(default)s)")
    access = parser.add_argument_group("access")
    secret = access.add_mutually_exclusive_group()  # (one or the other, never both)
    secret.add_argument("--token", help="shared secret clients must present (prefer --token-file:"
                                        " command lines are visible to other users)")
    secret.add_argument("--token-file", type=Path, metavar="PATH",
                        help="read the shared secret from a file (three wrong tokens in a row"
                             " make an address wait before its next is checked)")
    add = access.add_argument
    add("--certfile", metavar="PEM", help="certificate chain: serve wss:// (TLS)")
    add("--keyfile", metavar="PEM", help="private key of --certfile (if not in that file)")
    add("--allow-origin", action="append", default=[], metavar="ORIGIN",
        help="browser origin allowed to connect, e.g. https://chat.example.org (repeatable);"
             " when given, requests from any other origin get HTTP 403")
    parser.add_argument("--event-loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                        help="auto: uvloop when installed (pip install tui-chat[speed]),"
                             " else asyncio's own loop (default: %(default)s)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="how much to log to stderr (default: %(default)s)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def build_user_parser() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)  # --db before or after the command
    database.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH",
                          help="the server's database (default: history.db in your data"
                               " directory)")
    parser = argparse.ArgumentParser(
        prog="tui-chat-server user",
        description="Register nicknames: a registered nickname can only be used with its"
                    " password. Others stay free for anyone.",
        parents=[database],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", parents=[database],
                              help="register NAME, or change its password")
    add.add_argument("name", help="the nickname (the rules are the chat's: docs/protocol.md)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of asking")
    remove = commands.add_parser("remove", parents=[database], help="unregister NAME")
    remove.add_argument("name", help="a registered nickname")
    commands.add_parser("list", parents=[database], help="list registered nicknames")
    return parser


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ServerConfig:
    token = args.token
    if token is not None and not token.strip():
        parser.error("--token is empty: give a secret, or leave --token out for an open server")
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as error:
            parser.error(f"--token-file: {error.strerror}: {args.token_file}")
        if not token:
            parser.error(f"--token-file: {args.token_file} is empty")
    if args.max_frame and args.max_frame < MIN_FRAME:
        parser.error(f"--max-frame {args.max_frame} is too small: a client's hello alone can take"
                     f" hundreds of bytes; give at least {MIN_FRAME} (or 0 for no limit)")
    if args.max_frame and args.max_text and args.max_frame < 4 * args.max_text + MIN_FRAME:
        parser.error(f"--max-frame {args.max_frame} is too small for --max-text {args.max_text}:"
                     f" a message of that length can take up to {4 * args.max_text:,} bytes"
                     f" (4 a character in UTF-8); give --max-frame"
                     f" {4 * args.max_text + MIN_FRAME} or more, or a lower --max-text")
    if args.keyfile and not args.certfile:
        parser.error("--keyfile needs --certfile")
    for option, path in (("--certfile", args.certfile), ("--keyfile", args.keyfile)):
        if path and not Path(path).exists():  # (a pipe, as from <(vault read ...), is fine)
            parser.error(f"{option}: no such file: {path}")
    try:
        origins = tuple(dict.fromkeys(origin_of(value) for value in args.allow_origin))
    except ValueError as error:
        parser.error(f"--allow-origin: {error}")
    return ServerConfig(
        host=args.host, port=args.port, db=args.db, history=args.history, sync=args.sync,
        backlog=args.backlog,
        presence_limit=args.presence_limit,
        max_text=args.max_text, max_frame=args.max_frame, rate=args.rate, burst=args.burst,
        max_per_ip=args.max_per_ip, max_clients=args.max_clients, max_pending=args.max_pending,
        handshake_timeout=args.handshake_timeout, join_timeout=args.join_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout, token=token or None, certfile=args.certfile,
        keyfile=args.keyfile, allow_origins=origins,
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # Our lines say what happened. websockets' DEBUG lines copy frames and headers (tokens,
    # passwords, chat text), so they are never on; its INFO lines only when debugging.
    logging.getLogger("websockets").setLevel(logging.INFO if level == "debug" else logging.WARNING)


async def serve_until_signalled(config: ServerConfig) -> None:
    """Serve until SIGINT or SIGTERM, then close every connection with 1001."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with ChatServer(config):
        collector.quieten()  # listening: what exists now is never garbage (see collector.py)
        try:
            await stop.wait()
        finally:
            collector.restore()
        logging.getLogger("tui_chat.server").info("shutting down")


def run(main_coroutine, event_loop: str = "auto") -> None:
    """Run on uvloop when it is installed (`pip install tui-chat[speed]`) and not refused,
    else on asyncio's own loop."""
    uvloop = None
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                main_coroutine.close()  # never to run: no "never awaited" warning
                raise SystemExit("tui-chat-server: --event-loop uvloop: uvloop is not installed"
                                 " (pip install tui-chat[speed])") from None
    if uvloop is None:
        asyncio.run(main_coroutine)
    else:
        logging.getLogger("tui_chat.server").info("event loop: uvloop %s", uvloop.__version__)
        uvloop.run(main_coroutine)


def manage_users(argv: list[str]) -> int:
    args = build_user_parser().parse_args(argv)
    named = getattr(args, "db", "")
    if named and named != ":memory:" and args.command != "add" and not Path(named).exists():
        print(f"tui-chat-server user: there is no database at {named}", file=sys.stderr)
        return 1
    try:
        accounts = Accounts(named or default_db_path())
    except StorageError as error:
        print(f"tui-chat-server user: {error}", file=sys.stderr)
        return 1
    try:
        if args.command == "add":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            elif not sys.stdin.isatty():
                print("tui-chat-server user: no terminal to ask for the password on; pipe it"
                      " in with --password-stdin. Nothing changed.", file=sys.stderr)
                return 1
            else:
                password = getpass.getpass(f"Password for {args.name}: ")
                if getpass.getpass("Again: ") != password:
                    print("The passwords differ; nothing changed.", file=sys.stderr)
                    return 1
            before = accounts.find(args.name)
            stored = accounts.add(args.name, password)
            if before is None:
                print(f"Registered {stored}.")
            else:  # the same nickname, as nicknames compare: its password is replaced
                renamed = f" (written {stored} now, {before.name} before)" if (
                    before.name != stored) else ""
                print(f"{stored} was registered already: its password is changed{renamed}.")
        elif args.command == "remove":
            account = accounts.find(args.name)  # (as written when it was registered)
            if account is None or not accounts.remove(account.name):
                print(f"{args.name} is not registered.", file=sys.stderr)
                return 1
            print(f"Removed {account.name}.")
        else:
            names = accounts.names()
            for name in names:
                print(name)
            if not names:
                print("No nicknames are registered.", file=sys.stderr)
    except ValueError as error:  # includes invalid nicknames
        print(f"tui-chat-server user: {error}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("\ntui-chat-server user: no password given; nothing changed (to pipe one in,"
              " use --password-stdin)", file=sys.stderr)
        return 1
    finally:
        accounts.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["user"]:
        return manage_users(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(args, parser)
    setup_logging(args.log_level)
    log = logging.getLogger("tui_chat.server")
    try:
        run(serve_until_signalled(config), args.event_loop)
    except StorageError as error:
        log.error("%s", error)
        return 1
    except ssl.SSLError as error:
        log.error("cannot use the certificate: %s", error)
        return 1
    except OSError as error:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, cannot_listen(error))
        return 1
    return 0
