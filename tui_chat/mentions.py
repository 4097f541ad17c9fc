"""Whether a chat line names you: your nickname as a word of it, compared as nicknames are."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from tui_chat.protocol import Message, nick_key

SHORT_NICK = 2  # a name this light is too common a word: only `@a`, or `a:` first, names it

# Scripts written without spaces between words (Han, kana, Thai, Lao, Myanmar, Khmer) and
# Hangul, whose particles join the name (`철수가`): a name in them is a word wherever it
# stands, and one of their letters next to a name does not make it longer (`aliceさん`).
_UNSPACED = (
    (0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3040, 0x30FF), (0x31F0, 0x31FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0x20000, 0x3134F),
)


def _unspaced(character: str) -> bool:
    """Whether `character` belongs to a script written without spaces between words."""
    point = ord(character)
    return point >= 0x0E00 and any(low <= point <= high for low, high in _UNSPACED)


def _mark(character: str) -> bool:
    """Whether `character` is a combining mark: it belongs to the letter before it."""
    return character >= "\u0300" and unicodedata.category(character).startswith("M")


def _in_a_name(character: str) -> bool:
    """Whether `character` could go on with a nickname next to it: a letter, digit, `_` or
    `-` of a script written with spaces."""
    return (character.isalnum() or character in "_-") and not _unspaced(character)


def _name_starts(text: str, at: int) -> bool:
    """Whether a name can start at `at`: no name before it (`x.alice` goes on from `x.`).
    Marks before it belong to the letter they follow, which decides."""
    while at > 0 and _mark(text[at - 1]):
        at -= 1
    before = text[at - 1:at]
    return not before or not (_in_a_name(before) or before == "." and at > 1
                              and _in_a_name(text[at - 2]))


def _name_ends(text: str, end: int) -> bool:
    """Whether a name can end at `end`: it does not go on (`alice.b`, unlike `alice.`), and
    no mark follows (which would change its last letter: `राम` is not in `रामा`)."""
    after = text[end:end + 2]
    return not after or not (_in_a_name(after[0]) or _mark(after[0])
                             or after[0] == "." and len(after) > 1 and _in_a_name(after[1]))


def _in_a_url(text: str, at: int) -> bool:
    """Whether `at` is inside a URL: a run of text without spaces that holds `://`."""
    if "://" not in text:
        return False
    start = max(text.rfind(" ", 0, at), text.rfind("\n", 0, at)) + 1
    end = min((found for found in (text.find(" ", at), text.find("\n", at)) if found >= 0),
              default=len(text))
    return "://" in text[start:end]


@lru_cache(maxsize=16)
def _short(key: str) -> bool:
    """Whether a name is too light to be looked for as a word: at most two letters, where
    one of a script without spaces weighs two (`王` is short; `田中`, like `bob`, is not)."""
    return sum(2 if _unspaced(character) else 1 for character in key[:SHORT_NICK + 1]) \
        <= SHORT_NICK


def _folded(text: str) -> str:
    """`text` in the form nicknames are compared in (`nick_key`), cheaply for ASCII."""
    return text.lower() if text.isascii() else nick_key(text)


_key = lru_cache(maxsize=16)(nick_key)  # your own name, looked up for every line


def mentions(message: Message, me: str) -> bool:
    """Whether someone else's chat line or action names `me` as a word, compared as
    nicknames are (any letter case or width): `alice`, `@alice:`, `Alice.`, `…alice?` or
    `aliceさん`, but not `malice`, `alice_2`, `alice.b` or `https://example.org/alice`. A
    name of one or two letters counts only as `@a`, or first in the line followed by `:`
    or `,`."""
    if message.kind == "system" or not me:
        return False
    key, text = _key(me), _folded(message.text)
    at = text.find(key)
    if at < 0 or nick_key(message.nick) == key:
        return False
    short = _short(key)
    while at >= 0:
        end = at + len(key)
        if short:  # `@a`, or `a:` / `a,` first in the line
            starts = text[at - 1:at] == "@" or at == 0 and text[end:end + 1] in (":", ",")
        else:
            starts = _name_starts(text, at)
        if starts and _name_ends(text, end) and not _in_a_url(text, at):
            return True
        at = text.find(key, at + 1)
    return False
