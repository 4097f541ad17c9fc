"""Nicknames: what a nickname may be, and the form nicknames are compared in (pure)."""

from __future__ import annotations

import unicodedata

from tui_chat.cleaning import INVISIBLE
from tui_chat.protocol import NICK_INVALID, NICK_RESERVED, ProtocolError, quoted

MAX_NICK = 24
RESERVED_NICKS = frozenset({"server", "system", "admin"})


def nick_key(nick: str) -> str:
    """The form nicknames are compared in: invisible characters (INVISIBLE) dropped, then
    NFKC-normalised and case-folded (Unicode's NFKC_Casefold, near enough)."""
    if nick.isascii():
        return nick.lower()  # the same, sooner
    nick = INVISIBLE.sub("", nick)
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", nick).casefold())


_SEPARATORS = str.maketrans("", "", "_-.")  # a reserved name with these in it is still reserved

# A character's script, near enough: the first word of its Unicode name (LATIN, CYRILLIC,
# ARMENIAN, HIRAGANA, HANGUL, ...), as Python's unicodedata has no Script property. These
# words are not a script's name: they are mapped to the script, or to "" for the digits,
# combining marks and modifier letters every script uses (Unicode's Common and Inherited).
_SCRIPT_OF_WORD = {
    "CJK": "HAN", "IDEOGRAPHIC": "HAN", "VIETNAMESE": "HAN",  # 々 IDEOGRAPHIC ITERATION MARK
    "KATAKANA-HIRAGANA": "KATAKANA", "VERTICAL": "KATAKANA", "MASU": "KATAKANA",  # ー, 〱, 〼
    "HENTAIGANA": "HIRAGANA", "ARABIC-INDIC": "ARABIC", "EXTENDED": "ARABIC",  # digits: ٣, ۴
    "TURNED": "LATIN", "ROMAN": "LATIN",  # Ⅎ TURNED CAPITAL F, Ↄ ROMAN NUMERAL REVERSED ONE HUNDRED
    "DIGIT": "", "COMBINING": "", "MODIFIER": "", "CARON": "", "MUSICAL": "", "VEDIC": "",
    "ZNAMENNY": "", "PHAISTOS": "",
}
# The scripts a name may mix (Unicode UTS #39's "highly restrictive" level): Japanese,
# Chinese and Korean with Latin. Any other name is written in one script.
_SCRIPT_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def _nick_char_ok(index: int, char: str) -> bool:
    if char.isalpha() or char.isdecimal() or char in "_-.":
        return True
    return index > 0 and unicodedata.category(char).startswith("M")  # accents on a letter


def _scripts(nick: str) -> list[str]:
    """The scripts of the letters, digits and marks of `nick` (after NFKC), in order, once each,
    in capitals as in Unicode's names; characters every script uses are left out."""
    found: dict[str, None] = {}
    for char in unicodedata.normalize("NFKC", nick):
        if char.isalpha() or char.isdecimal() or unicodedata.category(char).startswith("M"):
            word = unicodedata.name(char, "OTHER").partition(" ")[0]
            found[_SCRIPT_OF_WORD.get(word, word)] = None
    found.pop("", None)
    return list(found)


def _mixed_scripts(nick: str) -> list[str]:
    """The scripts of `nick` if it mixes them in a way no language does, else []."""
    scripts = _scripts(nick)
    if len(scripts) <= 1 or any(mix.issuperset(scripts) for mix in _SCRIPT_MIXES):
        return []
    return scripts


def nick_refusal(nick: str) -> str | None:
    """Why `nick` cannot be anyone's nickname (None if it can), as the server would say."""
    try:
        check_nick(nick)
    except ProtocolError as error:
        return error.message
    return None


def check_nick(nick: str) -> str:
    """Return the nickname as it will be shown (trimmed, NFC) or raise ProtocolError."""
    shown = unicodedata.normalize("NFC", nick.strip())
    if not shown:
        raise ProtocolError(NICK_INVALID, "A nickname cannot be empty.")
    if len(shown) > MAX_NICK:
        raise ProtocolError(NICK_INVALID, f"A nickname is at most {MAX_NICK} characters.")
    invisible = INVISIBLE.search(shown)
    if invisible:
        raise ProtocolError(
            NICK_INVALID,
            f"Nickname {quoted(shown)} has an invisible character"
            f" (U+{ord(invisible.group()):04X}), which could make it pass for another"
            " name: leave it out.",
        )
    for index, char in enumerate(shown):
        if not _nick_char_ok(index, char):
            raise ProtocolError(
                NICK_INVALID,
                f"Nickname {quoted(shown)} has a character that is not allowed"
                f" ({'U+%04X' % ord(char)}): use letters, digits, '_', '-' and '.'.",
            )
    if not any(char.isalnum() for char in shown):
        raise ProtocolError(NICK_INVALID, f"Nickname {quoted(shown)} needs a letter or a digit.")
    mixed = [] if shown.isascii() else _mixed_scripts(shown)
    if mixed:
        raise ProtocolError(
            NICK_INVALID,
            f"Nickname {quoted(shown)} mixes {', '.join(s.title() for s in mixed[:-1])} and"
            f" {mixed[-1].title()} letters, which can make it pass for another name: write it"
            " in one script (Han may go with kana, Bopomofo or Hangul, and Latin, as in Japanese,"
            " Chinese and Korean names).",
        )
    key = nick_key(shown)
    bare = key.translate(_SEPARATORS)
    if bare in RESERVED_NICKS:
        raise ProtocolError(
            NICK_RESERVED,
            f"The nickname {shown!r} is reserved."
            if bare == key else f"The nickname {shown!r} is reserved: it reads as {bare!r}.",
        )
    return shown
