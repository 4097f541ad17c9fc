"""Renames asked for while they could not be made, placed among the pending messages.

Every message goes out (and is resent) under the name it was typed under: only a resend
under the same name is recognised as one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tui_chat.updates import Outgoing


@dataclass(frozen=True, slots=True)
class Rename:
    """A nickname asked for, its password, and the messages pending when it was asked
    (those go out under the name before it)."""

    nick: str
    password: str | None
    before: frozenset[str]


def replay(pending: Iterable[Outgoing], renames: list[Rename], name: str
           ) -> list[Outgoing | Rename]:
    """The pending messages and the renames, in the order to send them, starting as `name`.
    A rename goes before the first message that was not pending when it was asked; its
    `before` becomes the messages sent ahead of it. A rename to the name asked for last,
    exactly, is left out (a change of case is a rename)."""
    steps: list[Outgoing | Rename] = []
    sent: list[str] = []
    waiting = list(renames)

    def rename(asked: Rename) -> None:
        nonlocal name
        if asked.nick != name:
            steps.append(Rename(asked.nick, asked.password, frozenset(sent)))
        name = asked.nick

    for outgoing in pending:
        while waiting and outgoing.cid not in waiting[0].before:
            rename(waiting.pop(0))
        steps.append(outgoing)
        sent.append(outgoing.cid)
    for asked in waiting:
        rename(asked)
    return steps
