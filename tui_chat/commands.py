"""Slash commands and Tab completion for the input line: plain functions, no UI."""

from __future__ import annotations

from dataclasses import dataclass

from tui_chat.nicknames import nick_key
from tui_chat.protocol import COMMAND

COMMANDS: dict[str, str] = {
    "/nick": "/nick NAME [PASSWORD]: change your nickname (a registered one needs its password)",
    "/me": "/me ACTION: say what you are doing (shown as '* you ACTION')",
    "/who": "/who: list who is in the room",
    "/reconnect": "/reconnect: connect now instead of waiting for the next attempt (Ctrl+R)",
    "/help": "/help: show this help",
    "/clear": "/clear: clear the message log on this screen",
    "/quit": "/quit: leave (also Ctrl+Q; twice if that would lose typed lines or close a server you host)",
}
KEYS = ("Keys: Enter send · Up/Down input history · Tab complete nicknames and commands"
        " · PgUp/PgDn scroll · Ctrl+End newest · Ctrl+R reconnect now · Ctrl+L clear"
        " · Ctrl+P find a command · Ctrl+Q quit · drag the mouse over the log and Ctrl+C to copy."
        " Start a line with // to send a leading /.")
WITH_ARGUMENT = frozenset({"/nick", "/me"})  # the others take nothing after them
HELP = ("Commands:", *(f"  {usage}" for usage in COMMANDS.values()), KEYS)  # /help, F1


@dataclass(frozen=True)
class Command:
    """A parsed input line: `name` is None for a plain chat message."""

    name: str | None
    argument: str


class UnknownCommand(ValueError):
    """An input line that looks like a command we do not have."""


def parse_input(line: str) -> Command:
    """Split an input line into a command and its argument, as the server splits a raw
    client's (protocol.COMMAND): `//x` sends the text `/x`; `/path/like/this` and `/ x` are
    ordinary text; an unknown `/word`, or one that takes no argument given one (a pasted
    `/quit` and lines after it), raises UnknownCommand."""
    if line.startswith("//"):
        return Command(None, line[1:])
    match = COMMAND.fullmatch(line.strip())
    if match is None:
        return Command(None, line)
    word, argument = "/" + match.group(1), (match.group(2) or "").strip()
    name = word.lower()
    if name not in COMMANDS:
        raise UnknownCommand(f"Unknown command {word}. Try /help; start with // to send it as text.")
    if argument and name not in WITH_ARGUMENT:  # a paste that starts with one, most likely
        raise UnknownCommand(f"{word} takes nothing after it; start with // to send it as text.")
    return Command(name, argument)


@dataclass(frozen=True)
class Completion:
    """The input after completing: new text, new cursor position."""

    text: str
    cursor: int


def complete(text: str, cursor: int, users: tuple[str, ...], turn: int = 0) -> Completion | None:
    """Complete the word before the cursor: a command after a leading `/`, else a nickname
    (with ': ' at the start of the line). `turn` cycles through the candidates."""
    start = text.rfind(" ", 0, cursor) + 1
    word = text[start:cursor]
    if start == 0 and word.startswith("/"):
        candidates = [name for name in COMMANDS if name.startswith(word.lower())]
        suffix = " "
    elif word:
        folded = nick_key(word)
        candidates = [nick for nick in users if nick_key(nick).startswith(folded)]
        suffix = ": " if start == 0 else " "
    else:
        return None
    if not candidates:
        return None
    choice = candidates[turn % len(candidates)] + suffix
    rest = text[cursor:]
    if rest.startswith(suffix):
        rest = rest[len(suffix):]
    return Completion(text[:start] + choice + rest, start + len(choice))
