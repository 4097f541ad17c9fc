"""`tui-chat-server` as a real process: startup, logging, signals, and its command line."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from tui_chat_server.accounts import Accounts
from tests.helpers import JsonClient, PlainClient


class ServerProcess:
    """A `python -m tui_chat_server --port 0` child process and the log lines it has printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: list[str] = []
        self.url = ""

    async def read_until(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        """Read log lines until one matches `pattern`."""
        async def scan() -> re.Match[str]:
            assert self.process.stderr is not None
            while True:
                line = (await self.process.stderr.readline()).decode()
                if not line:
                    raise AssertionError(f"server exited; log so far: {self.log}")
                self.log.append(line)
                if match := re.search(pattern, line):
                    return match

        return await asyncio.wait_for(scan(), timeout)

    async def rest_of_log(self) -> str:
        assert self.process.stderr is not None
        self.log.append((await self.process.stderr.read()).decode())
        return "".join(self.log)


@pytest.fixture
async def server_process() -> AsyncIterator[ServerProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat_server", "--port", "0",
        stderr=asyncio.subprocess.PIPE,
    )
    child = ServerProcess(process)
    child.url = (await child.read_until(r"listening on (ws://\S+)")).group(1)
    yield child
    if process.returncode is None:
        process.kill()
        await process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_closes_every_client_with_1001_and_exits_0_quickly(server_process, signum) -> None:
    """On SIGTERM or SIGINT every client gets close code 1001 and the process exits 0 within 2 s."""
    json_client = await JsonClient.connect(server_process.url + "/lobby", "alice")
    plain_client = await PlainClient.connect(server_process.url + "/lobby", "bob")
    silent_client = await JsonClient.connect(server_process.url + "/other")  # never said hello
    started = time.monotonic()
    server_process.process.send_signal(signum)
    for client in (json_client, plain_client, silent_client):
        await asyncio.wait_for(client.connection.wait_closed(), 2)
        assert client.connection.close_code == 1001
    assert await asyncio.wait_for(server_process.process.wait(), 2) == 0
    assert time.monotonic() - started < 2


async def test_connects_disconnects_and_refusals_are_logged_with_the_peer(server_process) -> None:
    """One log line per connect, disconnect and refused input, each with the peer address."""
    client = await JsonClient.connect(server_process.url + "/lobby", "alice")
    host, port = client.connection.local_address[:2]
    peer = f"{host}:{port}"
    await client.send(type="say", text="x" * 5000, cid="c")
    await client.expect("error")
    await client.close()
    await server_process.read_until(re.escape(peer) + " disconnected")
    server_process.process.send_signal(signal.SIGTERM)
    await server_process.process.wait()
    log = await server_process.rest_of_log()
    lines = [line for line in log.splitlines() if peer in line]
    assert any("connected to /lobby (json)" in line for line in lines), log
    assert any("refused: too_long" in line for line in lines), log
    assert any("disconnected: code 1000" in line for line in lines), log
    assert "x" * 100 not in log, "refused text is not copied into the log"


def test_help_shows_options_and_examples() -> None:
    """`--help` documents the flags and shows how to chat with a raw client."""
    result = subprocess.run([sys.executable, "-m", "tui_chat_server", "--help"],
                            capture_output=True, text=True, check=True)
    for expected in ("--host", "--port", "--history", "--log-level", "--max-text", "examples:",
                     "--event-loop", "--presence-limit", "--token-file", "--db",
                     "python -m websockets", "tui-chat-server user {add,remove,list}"):
        assert expected in result.stdout


def test_a_busy_port_is_a_clear_error(tmp_path) -> None:
    """If the port is taken, the server says so in words and exits 1 instead of a
    traceback (not with asyncio's sentence, which names the address as a Python tuple),
    and leaves no database behind: it opens its history only once it listens."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "tui_chat_server", "--port", str(port),
                                 "--db", str(tmp_path / "h.db")],
                                capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert list(tmp_path.iterdir()) == []
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr and "('127.0.0.1'" not in result.stderr


@pytest.mark.parametrize("problem", ["under a file", "not a database", "in a missing directory",
                                     "a directory", "another database's log"])
@pytest.mark.parametrize("command", [[], ["user", "list"]])
def test_a_database_that_cannot_be_opened_is_a_clear_error(tmp_path, problem: str,
                                                           command: list[str]) -> None:
    """A --db path under a file, in a directory that does not exist (it is not created: a
    typo is not made into a new history), a directory, a file that is not a database, or
    the write-ahead log beside another one (a database inside it would ruin that one's), is
    named with the reason, exit 1, for the server and for `user` alike; no traceback."""
    (tmp_path / "file").write_text("not a database")
    (tmp_path / "h.db").write_bytes(b"")
    db, reason = {
        "under a file": (tmp_path / "file" / "h.db", "is not a directory"),
        "not a database": (tmp_path / "file", "file is not a database"),
        "in a missing directory": (tmp_path / "missing" / "h.db",
                                   f"there is no directory {tmp_path / 'missing'}"),
        "a directory": (tmp_path, "it is a directory (--db takes the database file's path"),
        "another database's log": (tmp_path / "h.db-wal", "it is the write-ahead log file of"
                                   f" the database {tmp_path / 'h.db'}; --db takes the database"
                                   " itself"),
    }[problem]
    if command and problem not in ("not a database", "a directory"):  # `user list` only reads
        reason = f"there is no database at {db}"
    port = [] if command else ["--port", "0"]
    result = subprocess.run([sys.executable, "-m", "tui_chat_server", *command, "--db", str(db),
                             *port], capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert reason in result.stderr
    if "no database" not in reason:  # (`user list` says there is none, as asserted above)
        assert f"cannot open the database {db}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing").exists()


def test_user_add_without_a_password_changes_nothing(tmp_path) -> None:
    """With no terminal to ask on and no --password-stdin, it says how to give one; exit 1."""
    result = subprocess.run([sys.executable, "-m", "tui_chat_server", "user", "add", "carol", "--db",
                             str(tmp_path / "chat.db")], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert "no terminal to ask for the password" in result.stderr
    assert "--password-stdin" in result.stderr and "Warning" not in result.stderr
    assert "Traceback" not in result.stderr


def test_user_accepts_db_before_or_after_its_command(tmp_path) -> None:
    """`user --db PATH list` and `user list --db PATH` read the same database; an empty one
    says so on stderr."""
    db = str(tmp_path / "chat.db")
    added = subprocess.run([sys.executable, "-m", "tui_chat_server", "user", "add", "alice",
                            "--password-stdin", "--db", db], input="correct horse\n",
                           capture_output=True, text=True, timeout=10)
    assert added.returncode == 0, added.stderr
    Accounts(str(tmp_path / "empty.db")).close()
    empty = subprocess.run([sys.executable, "-m", "tui_chat_server", "user", "list", "--db",
                            str(tmp_path / "empty.db")], capture_output=True, text=True,
                           timeout=10)
    assert (empty.returncode, empty.stdout) == (0, "")
    assert "No nicknames are registered." in empty.stderr
    for argv in (["user", "--db", db, "list"], ["user", "list", "--db", db]):
        listed = subprocess.run([sys.executable, "-m", "tui_chat_server", *argv], capture_output=True,
                                text=True, timeout=10)
        assert listed.stdout.split() == ["alice"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--history", "-5"], "must be 0 or more"),
    (["--port", "99999"], "'99999' is not a port number from 0 to 65535"),
    (["--port", "-1"], "'-1' is not a port number"),
    (["--token", ""], "--token is empty"),
    (["--max-frame", str(2**53)], "must be at most 9007199254740991"),
    (["--rate", "nan"], "'nan' is not a number"),
    (["--certfile", "/nonexistent/cert.pem"], "--certfile: no such file: /nonexistent/cert.pem"),
    (["--allow-origin", "https://chat.example.org/"], "is not an origin"),
    (["--allow-origin", "chat.example.org"], "is not an origin"),
    (["--token", "a", "--token-file", "secret.txt"],
     "argument --token-file: not allowed with argument --token"),
    (["--max-frame", "10"], "--max-frame 10 is too small: a client's hello alone"),
    (["--max-frame", "20000", "--max-text", "5000"],
     "--max-frame 20000 is too small for --max-text 5000: a message of that length can take up"
     " to 20,000 bytes (4 a character in UTF-8); give --max-frame 21024 or more"),
])
def test_bad_option_values_are_refused(argv: list[str], message: str) -> None:
    """Negative sizes, ports out of range and an empty token are usage errors (exit 2)
    saying what is wrong, never a server started on other terms."""
    result = subprocess.run([sys.executable, "-m", "tui_chat_server", *argv],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(("choice", "uses_uvloop"), [("auto", True), ("asyncio", False)])
async def test_the_event_loop_can_be_chosen(choice: str, uses_uvloop: bool) -> None:
    """--event-loop auto takes uvloop when installed (it is, with the test extras); asyncio
    forces asyncio's own loop; either way clients chat."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat_server", "--port", "0", "--db", ":memory:", "--event-loop", choice,
        stderr=asyncio.subprocess.PIPE)
    child = ServerProcess(process)
    url = (await child.read_until(r"listening on (ws://\S+)")).group(1)
    client = await JsonClient.connect(url + "/lobby", "alice")
    assert (await client.say("hi"))["text"] == "hi"
    await client.close()
    process.send_signal(signal.SIGTERM)
    await process.wait()
    assert ("event loop: uvloop" in await child.rest_of_log()) is uses_uvloop


def test_allowed_origins_are_written_as_browsers_send_them() -> None:
    """Case, a default port and the way an IP address or a name beyond ASCII is written
    do not matter in --allow-origin; a path or a missing scheme is refused (it could never
    match, and every browser would get 403)."""
    from tui_chat_server.origins import origin_of

    assert origin_of("HTTPS://Chat.Example.org:443") == "https://chat.example.org"
    assert origin_of("http://localhost:8000") == "http://localhost:8000"
    assert origin_of("http://[::1]:80") == "http://[::1]"
    # IPv6 in the URL standard's shortest form, and names beyond ASCII in their xn-- form
    assert origin_of("http://[0:0:0:0:0:0:0:1]:8080") == "http://[::1]:8080"
    assert origin_of("http://[2001:DB8:0:0:1:0:0:1]") == "http://[2001:db8::1:0:0:1]"
    assert origin_of("http://[::ffff:1.2.3.4]") == "http://[::ffff:102:304]"
    assert origin_of("http://[1:0:1:1:1:1:1:1]") == "http://[1:0:1:1:1:1:1:1]"
    assert origin_of("https://Bücher.example") == "https://xn--bcher-kva.example"
    # IPv4 as the URL standard reads it: fewer parts, hexadecimal, octal
    assert origin_of("http://127.1:8000") == "http://127.0.0.1:8000"
    assert origin_of("http://0x7f.0.0.1") == origin_of("http://0177.0.0.1") == "http://127.0.0.1"
    assert origin_of("http://2130706433.") == "http://127.0.0.1"
    for bad in ("https://chat.example.org/", "chat.example.org", "ftp://x", "https://u@x",
                "http://exa mple.org", "http://[fe80::1%25eth0]", "http://[1:2:3]",
                "http://[v1.x]", "http://1.2.3.4.5", "http://example.123", "http://1.2.3.256",
                "http://08.1.1.1"):
        with pytest.raises(ValueError, match="is not an origin"):
            origin_of(bad)
    for deviation in ("https://faß.de", "https://ςσ.gr", "https://a\u200db.example"):
        with pytest.raises(ValueError, match="in the xn-- form"):  # IDNA 2003 would differ
            origin_of(deviation)


def test_reading_users_from_a_database_that_is_not_there_creates_nothing(tmp_path) -> None:
    """`user list --db` with a mistyped path says there is no database, and makes none."""
    missing = tmp_path / "nope" / "x.db"
    result = subprocess.run([sys.executable, "-m", "tui_chat_server", "user", "list", "--db",
                             str(missing)], capture_output=True, text=True, timeout=10)
    assert (result.returncode, result.stderr.strip()) == (
        1, f"tui-chat-server user: there is no database at {missing}")
    assert not missing.parent.exists()


@pytest.mark.parametrize("choice", ["auto", "asyncio"])
async def test_wss_works_on_either_event_loop_with_connections_counted_first(
        choice: str, tmp_path) -> None:
    """With TLS each connection is counted before its TLS handshake, which then runs on the
    connection; on uvloop too (which reads as soon as a connection is made), every one of
    ten connections in a row completes its handshakes and joins."""
    import ssl

    import trustme
    from websockets.asyncio.client import connect

    authority = trustme.CA()
    pem = tmp_path / "server.pem"
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat_server", "--port", "0", "--db", ":memory:",
        "--certfile", str(pem), "--event-loop", choice, stderr=asyncio.subprocess.PIPE)
    child = ServerProcess(process)
    url = (await child.read_until(r"listening on (wss://\S+)")).group(1)
    try:
        for number in range(10):
            async with connect(url + "/lobby", ssl=context, open_timeout=5) as websocket:
                assert (await websocket.recv()).startswith("[Server]: This is tui-chat")
                await websocket.send(f"user{number}")
                assert (await websocket.recv()).startswith("[Server]: Welcome")
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()


def serves_wss_from_pipes(*pems: bytes) -> str:
    """Start a server with --certfile (and --keyfile, given a second PEM) read from pipes,
    as from `<(vault read ...)`; the log line that ends its start."""
    import os

    pipes = []
    for pem in pems:
        read, write = os.pipe()
        os.write(write, pem)
        os.close(write)
        pipes.append(read)
    options = [f"--{name}file" for name in ("cert", "key")[:len(pipes)]]
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_chat_server", "--port", "0", "--db", ":memory:",
         *(arg for option, fd in zip(options, pipes) for arg in (option, f"/dev/fd/{fd}"))],
        stderr=subprocess.PIPE, text=True, pass_fds=pipes)
    for fd in pipes:
        os.close(fd)
    try:
        assert process.stderr is not None
        lines: list[str] = []
        while not lines or ("listening on" not in lines[-1] and lines[-1]):
            lines.append(process.stderr.readline())
        return "".join(lines)
    finally:
        process.terminate()
        process.wait(10)


def test_the_certificate_and_key_can_come_from_pipes() -> None:
    """`--certfile <(vault read ...) --keyfile <(...)`: a path that is not a regular file
    but opens to the PEM is taken (the key never touches the disk)."""
    import trustme

    cert = trustme.CA().issue_cert("127.0.0.1")
    log = serves_wss_from_pipes(cert.private_key_and_cert_chain_pem.bytes(),
                                cert.private_key_pem.bytes())
    assert "listening on wss://" in log, log


def test_a_certificate_and_key_in_one_pipe_are_taken() -> None:
    """`--certfile <(vault read combined.pem)` with the key in that file: a pipe can be read
    only once, so the server reads it once (into memory) and serves wss://."""
    import trustme

    cert = trustme.CA().issue_cert("127.0.0.1")
    log = serves_wss_from_pipes(cert.private_key_and_cert_chain_pem.bytes())
    assert "listening on wss://" in log, log


def test_a_certificate_that_is_a_directory_is_named_as_the_problem(tmp_path) -> None:
    """A --certfile that cannot be read says so about the certificate, not the port."""
    result = subprocess.run([sys.executable, "-m", "tui_chat_server", "--port", "0", "--db", ":memory:",
                             "--certfile", str(tmp_path)], capture_output=True, text=True,
                            timeout=10)
    assert result.returncode == 1
    assert "cannot use the certificate" in result.stderr and "cannot listen" not in result.stderr
    assert "('" not in result.stderr  # a sentence, not a Python tuple


def test_asking_for_uvloop_without_it_is_one_clear_line() -> None:
    """--event-loop uvloop where uvloop is not installed: exit 1 with how to get it, and no
    warning about a coroutine that never ran."""
    code = ("import sys; sys.modules['uvloop'] = None; from tui_chat_server.cli import main;"
            " sys.exit(main(['--event-loop', 'uvloop', '--port', '0', '--db', ':memory:']))")
    result = subprocess.run([sys.executable, "-W", "default", "-c", code],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert "pip install tui-chat[speed]" in result.stderr
    assert "never awaited" not in result.stderr


def test_a_data_directory_that_cannot_be_made_is_a_clear_error(tmp_path) -> None:
    """Without --db, if the data directory cannot be created (a file stands in its way), the
    server says why in the system's words and exits 1."""
    (tmp_path / "file").write_text("")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "file" / "data")}
    result = subprocess.run([sys.executable, "-m", "tui_chat_server", "--port", "0"],
                            capture_output=True, text=True, timeout=10, env=env)
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr and "Not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_certificate_files_that_do_not_fit_say_what_is_wrong(tmp_path) -> None:
    """A certificate without its key, a key given as the certificate, a key of another
    certificate and a key locked with a passphrase are each named, with what to do."""
    import ssl

    import trustme
    from cryptography.hazmat.primitives import serialization

    from tui_chat_server.tls import tls_context

    authority = trustme.CA()
    cert, other = authority.issue_cert("localhost"), authority.issue_cert("localhost")
    files = {"cert": cert.cert_chain_pems[0].bytes(), "key": cert.private_key_pem.bytes(),
             "other-key": other.private_key_pem.bytes(), "junk": b"not a PEM file\n",
             "locked-key": serialization.load_pem_private_key(
                 cert.private_key_pem.bytes(), None).private_bytes(
                 serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                 serialization.BestAvailableEncryption(b"secret"))}
    for name, pem in files.items():
        (tmp_path / f"{name}.pem").write_bytes(pem)

    def refusal(certfile: str, keyfile: str | None) -> str:
        with pytest.raises(ssl.SSLError) as caught:
            tls_context(str(tmp_path / certfile), keyfile and str(tmp_path / keyfile))
        return str(caught.value).replace(f"{tmp_path}/", "")  # as the server prints it

    assert refusal("cert.pem", None) == (
        "cert.pem holds no private key: give the key with --keyfile")
    assert refusal("key.pem", "key.pem") == (
        "key.pem holds no certificate (PEM, '-----BEGIN CERTIFICATE-----')")
    assert refusal("cert.pem", "junk.pem") == "junk.pem holds no private key"
    assert refusal("cert.pem", "other-key.pem") == (
        "the private key in other-key.pem is not the key of the certificate in cert.pem")
    assert refusal("cert.pem", "locked-key.pem").startswith(
        "the private key in locked-key.pem is encrypted with a passphrase")
    assert tls_context(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
