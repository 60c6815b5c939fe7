"""Latin-letter words on a Chinese page: what a person reading it would take for English
or an internal identifier.

Allowed are web addresses, codes and numbers (a token with a digit in it: credit codes, report numbers,
核验码, dates, 备案号), a code's single character (校验码错误：应为 'H'，实际为 'X'), the
names of the file formats a page offers or takes and the unit of a file's size, which
Chinese sites print as they are. Everything else made of Latin letters is a leak.
"""

from __future__ import annotations

import re

# File formats, the QR code, the ICP filing number (津ICP备…号, which every site in China
# prints in its footer) and a file's size (不超过 4 MB, 1 KB) are printed in Latin letters
# on Chinese government sites too.
FORMAT_NAMES = frozenset({"PDF", "CSV", "XLSX", "JSON", "JWS", "PNG", "JPEG", "QR", "ICP", "KB", "MB"})

_TOKEN = re.compile(r"https?://\S+|[A-Za-z][A-Za-z0-9_.:/@-]*|[0-9][A-Za-z0-9_.:/@-]*")


def latin_words(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The Latin-letter words in ``text`` that are neither codes nor format names, nor
    in ``allowed`` (the reader's own login name, which they chose and typed)."""
    found = []
    for token in _TOKEN.findall(text):
        if token.startswith(("http://", "https://")):
            continue  # an address printed for people to type or compare
        token = token.strip(".:/-")
        if not token or not re.search(r"[A-Za-z]", token):
            continue  # numbers, dates, times
        if re.fullmatch(r"[A-Z0-9-]+", token) and re.search(r"[0-9-]", token):
            continue  # a code: credit code, report number, 核验码 (grouped), case number
        if re.fullmatch(r"[A-Z]", token):
            continue  # one character of a code, as a reason names it
        if token in FORMAT_NAMES or token in allowed:
            continue
        found.append(token)
    return found
