"""One text normalisation before every detector and every splitter, and safe text for a terminal.

`normalise` is applied once to every text that enters the harness (corpus documents, ticket exports, gold questions
and fields, answers, judge output, review comments) before a PII detector, an injection detector or a chunker sees
it, so a value cannot hide from a detector behind a form the splitter or a browser would later undo:

- HTML character references are decoded (`jane&#64;acme.io`), and the percent-encodings that can hide an address
  (`%40` `%2E` `%2B` `%2D` `%5F`, as in `mailto:jane%40acme.io`);
- NFKC folds compatibility forms: full-width letters, digits and at signs, no-break and other spaces, ligatures;
- format characters (Unicode category Cf: zero-width spaces and joiners, soft hyphens, the BOM, bidi controls) are
  removed: they are invisible, and a splitter or a model drops them anyway.

The normalised text is what is stored and shown. `printable` makes text safe to print: control characters (ANSI
escape sequences, carriage returns, backspaces) are shown as `\\x1b`-style escapes and cannot move the cursor or
forge a line.
"""

from __future__ import annotations

import html
import re
import unicodedata

VERSION = "1"
"""Bumped whenever `normalise` changes: part of the ingest signature, so stored text is normalised again."""

_PERCENT = re.compile(r"%(40|2[eEbBdD]|5[fF])")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _drop_format(text: str) -> str:
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalise(text: str) -> str:
    """The text as every detector and splitter of the harness sees it (see the module docstring)."""
    if not text:
        return text
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if "%" in text:
        text = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)
    if not text.isascii():
        text = _drop_format(unicodedata.normalize("NFKC", text))
    return text


def printable(text: str) -> str:
    """Text for a terminal: newlines and tabs kept, every other control character shown as an escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)
