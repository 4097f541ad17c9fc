"""Whether a chat line names you: your nickname as a word of it, compared as nicknames are."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from tui_chat.nicknames import nick_key
from tui_chat.protocol import Message

SHORT_NICK = 2  # a name this light is too common a word: only `@a`, or `a:` first, names it
SHORT_FOLLOWERS = (":", ",", "、")  # what may follow a short name first in the line

_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF))
_HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
_HANGUL_SYLLABLES = ((0xAC00, 0xD7AF),)
# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, Han): a
# name among their letters is a word wherever it stands (`こんにちは田中さん`, `aliceさん`).
_UNSPACED = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), *_KANA, *_HAN)
# Hangul (syllables and jamo): Korean is written with spaces, but particles and laughter
# join the name before them (`철수가`, `철수ㅋㅋ`), so its letters may follow a name.
_HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF))
# Letters that are whole syllables or words (Han, kana, Hangul syllables) weigh two against
# SHORT_NICK: `田中` is as distinctive as `bob`, `王` is short.
_SYLLABIC = (*_KANA, *_HAN, *_HANGUL_SYLLABLES)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S*")  # on folded text: the scheme is lower case


def _within(character: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    point = ord(character)
    return point >= 0x0E00 and any(low <= point <= high for low, high in ranges)


def _mark(character: str) -> bool:
    """Whether `character` is a combining mark: it belongs to the letter before it."""
    return character >= "\u0300" and unicodedata.category(character).startswith("M")


def _continues(character: str, after: bool) -> bool:
    """Whether `character` next to a name (`after` it, or before it) makes the name part of
    a longer word: a letter, digit, `_` or `-`, but not a letter of a script written without
    spaces, nor Hangul after the name."""
    if not (character.isalnum() or character in "_-"):
        return False
    return not (_within(character, _UNSPACED) or after and _within(character, _HANGUL))


def _letter_before(text: str, at: int) -> int:
    """Where the letter before `at` is, passing over combining marks (they belong to it);
    -1 at the start of the text."""
    at -= 1
    while at >= 0 and _mark(text[at]):
        at -= 1
    return at


def _name_starts(text: str, at: int) -> bool:
    """Whether a name can start at `at`: no word before it (`x.alice` goes on from `x.`)."""
    before = _letter_before(text, at)
    if before >= 0 and text[before] == ".":
        before = _letter_before(text, before)
    return before < 0 or not _continues(text[before], after=False)


def _name_ends(text: str, end: int) -> bool:
    """Whether a name can end at `end`: it does not go on (`alice.b`, unlike `alice.`, nor
    an address's `alice@example.org`), and no mark follows (which would change its last
    letter: `राम` is not in `रामा`)."""
    after = text[end:end + 1]
    if not after:
        return True
    if _mark(after):
        return False
    if after in ".@":
        following = text[end + 1:end + 2]
        return not following or not _continues(following, after=True)
    return not _continues(after, after=True)


def _in_a_url(text: str, at: int) -> bool:
    """Whether `at` is inside a URL (`scheme://` and what follows it up to a space)."""
    return "://" in text and any(url.start() <= at < url.end() for url in _URL.finditer(text))


@lru_cache(maxsize=16)
def _short(key: str) -> bool:
    """Whether a name is too light to be looked for as a word: at most two letters, where a
    syllable of Han, kana or Hangul weighs two (`王` is short; `田中`, like `bob`, is not)."""
    weight = sum(2 if _within(character, _SYLLABIC) else 1 for character in key[:SHORT_NICK + 1])
    return weight <= SHORT_NICK


_key = lru_cache(maxsize=16)(nick_key)  # your own name, looked up for every line


def mentions(message: Message, me: str) -> bool:
    """Whether someone else's chat line or action names `me` as a word, compared as
    nicknames are (any letter case or width): `alice`, `@alice:`, `Alice.`, `…alice?` or
    `aliceさん`, but not `malice`, `alice_2`, `alice.b`, `alice@example.org` or
    `https://example.org/alice`. A
    name of one or two letters counts only as `@a`, or first in the line followed by `:`
    or `,`."""
    if message.kind == "system" or not me:
        return False
    key, text = _key(me), nick_key(message.text)
    at = text.find(key)
    if at < 0 or nick_key(message.nick) == key:
        return False
    short = _short(key)
    while at >= 0:
        end = at + len(key)
        if short:  # `@a`, or `a:` / `a,` first in the line
            starts = text[at - 1:at] == "@" or at == 0 and text[end:end + 1] in SHORT_FOLLOWERS
        else:
            starts = _name_starts(text, at)
        if starts and _name_ends(text, end) and not _in_a_url(text, at):
            return True
        at = text.find(key, at + 1)
    return False
