"""Untrusted text made safe to show: escape sequences and control characters removed (pure)."""

from __future__ import annotations

import re

# Every alternative runs in time linear in what it looks at, and a string sequence's body
# stops at the next ESC or 8-bit introducer, so no input can make cleaning slow (a lazy `.*?`
# to the terminator scanned to the end of the text again from every unterminated
# introducer: seconds for one frame). An unterminated one loses its introducer only, and
# whatever is left of any sequence is removed with the controls below.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]                     # CSI: ESC [ parameters intermediates final
    | \x9b[0-?]*[ -/]*[@-~]                       # 8-bit CSI
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])     # OSC, DCS, SOS, PM, APC (7- or 8-bit)
      [^\x07\x1b\x90\x98\x9c-\x9f]*(?:\x07|\x1b\\|\x9c)  # ... up to BEL or ST
    | \x1b[ -/]*[0-~]                             # every other escape sequence
    """,
    re.VERBOSE,
)
# C0 except tab and newline, DEL, C1, and the bidi embedding/override/isolate controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029]")
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): shown as nothing at all,
# such as the soft hyphen, zero-width joiners, direction marks, the combining grapheme
# joiner, variation selectors, Mongolian free variation selectors and the Hangul fillers.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# Half of a UTF-16 surrogate pair: JSON can spell one ("\ud800"), UTF-8 cannot encode it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Return `text` with escape sequences and control characters removed, newlines
    normalised, and lone surrogates (which no terminal or database can encode) replaced."""
    if text.isprintable():  # the common case: nothing to remove
        return text
    text = _NEWLINES.sub("\n", text)
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _LONE_SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub("", text)


def clean_name(text: str) -> str:
    """`clean_text` for what must stay on one line (a nickname, a room): line breaks and
    tabs become spaces, so a name cannot start a log line that passes for another's."""
    text = clean_text(text)
    return text.replace("\n", " ").replace("\t", " ") if "\n" in text or "\t" in text else text


def is_blank(text: str) -> bool:
    """True when `text` has nothing to show: whitespace, invisible characters (INVISIBLE),
    and the blank braille pattern at most."""
    if text.isascii():
        return not text.strip()
    return not INVISIBLE.sub("", text).replace("\u2800", "").strip()


def cut(text: str, limit: int = 200) -> str:
    """`text` if it has at most `limit` characters, else its start and "…" in `limit`."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
