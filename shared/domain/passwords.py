"""The rules a new password must meet before it goes to Graph (security.md B1, B2): Entra's cloud password policy
and Entra's banned-password score, each failure named so the user is told which rule to fix, in their language.

B1, Entra's cloud policy (contracts.md section 1): PASSWORD_LENGTH 8-256 characters; PASSWORD_CHARACTERS only
ASCII letters, digits and Entra's symbols (no Unicode: "é", "å" or a full-width "Ａ" are refused, never folded);
PASSWORD_CLASSES at least 3 of lower-case, upper-case, digit, symbol.

B2, PASSWORD_BANNED, scored the way Microsoft documents Entra password protection:
1. normalise: ASCII lower-case, then the substitutions Entra documents (0->o, 1->l, $->s, @->a; Entra does *not*
   reverse 4->a, 3->e, 7->t and the like, so neither do we);
2. find banned tokens in the normalised password: a common password from the shipped list (tokens of 4+
   characters) fuzzy-matched at edit distance 1 (one character added inside it, removed or changed: "password" is
   found as "passwrd", "pass_word" and "passwore"), and the user's context words (tenant name, UPN local part,
   given name, surname, display name; words of 4+ characters) as exact substrings;
3. score: each banned token found is 1 point, each other character 1 point; at least 5 points pass. Where found
   tokens overlap, the reading with the lowest score counts (the strictest one), e.g. "P@ssw0rd2026" reads as
   [password2] + [o] + [2] + [6] = 4 points.

Entra's documentation gives no rule for choosing among overlapping tokens, nor says whether a removal may leave a
3-character match of a 4-character token; we take the strict reading of both. A character added at either end of
a token is not part of the match but scores its own point, as in Microsoft's examples ("C0ntos0Blank12" is
[contoso] + [blank] + [1] + [2] = 4 points, not [contoso] + [blankl] + [2] = 3). A consequence users may notice in
live feedback: typing more of a banned word can turn a passing password into a failing one ("Zq7#footba"
passes, "Zq7#footbal" is one edit from "football" and fails), as in Entra. Appending a symbol (other than @ and $, which read as
letters) never lowers the score: no token contains one.

The password is only read, never changed (B3: it reaches Graph byte-exact), and no message repeats it or a part
of it. The messages come from the `passwords` catalog (web/i18n/passwords.<language>.json), shipped text read once
per process.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared import i18n

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
# Entra's symbols as its documentation lists them, and the space (contracts.md section 1).
LISTED_SYMBOLS = "@ # $ % ^ & * - _ ! + = [ ] { } | \\ : ' , . ? / ` ~ \" ( ) ; < >"
PASSWORD_SYMBOLS = frozenset(LISTED_SYMBOLS.replace(" ", "")) | {" "}
ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits) | PASSWORD_SYMBOLS
MIN_CHARACTER_CLASSES = 3
MIN_BANNED_SCORE = 5
MIN_TOKEN_LENGTH = 4  # Entra's banned terms and context words are 4+ characters
# Entra's normalisation: lower-case (ASCII only, so every character keeps its place) and the documented look-alikes.
SUBSTITUTIONS = {"0": "o", "1": "l", "$": "s", "@": "a"}
_NORMALISE = str.maketrans(dict(zip(string.ascii_uppercase, string.ascii_lowercase, strict=True)) | SUBSTITUTIONS)
_TOKEN_CHARACTERS = re.compile(r"[a-z0-9]+")
_WILDCARD = "\x00"  # stands for "any one character" in the fuzzy index; never in a token


class PasswordFailure(StrEnum):
    """A rule the password breaks; the value is the rule's name in API answers and the key of its message."""

    PASSWORD_LENGTH = "PASSWORD_LENGTH"
    PASSWORD_CHARACTERS = "PASSWORD_CHARACTERS"
    PASSWORD_CLASSES = "PASSWORD_CLASSES"
    PASSWORD_BANNED = "PASSWORD_BANNED"


@dataclass(frozen=True)
class PasswordContext:
    """What the directory knows about the user and tenant: words a password must not lean on (B2)."""

    tenant_name: str | None = None
    upn: str | None = None
    given_name: str | None = None
    surname: str | None = None
    display_name: str | None = None

    def words(self) -> frozenset[str]:
        """The normalised context words of 4+ characters: each name split at anything but letters and digits,
        accents dropped ("Jönsson" -> "jonsson", which is how it can appear in an ASCII password)."""
        local_part = (self.upn or "").partition("@")[0]
        found: set[str] = set()
        for text in (self.tenant_name, local_part, self.given_name, self.surname, self.display_name):
            ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
            found.update(w for w in _TOKEN_CHARACTERS.findall(normalise(ascii_text)) if len(w) >= MIN_TOKEN_LENGTH)
        return frozenset(found)


class CommonPasswords:
    """The banned list, indexed for edit-distance-1 lookups: the tokens themselves and each token with one
    character replaced by a wildcard. A window of the password is within one edit of a token when it is a token,
    when removing one of its inner characters gives a token (one added inside), when replacing one of its
    characters by the wildcard gives an indexed pattern (one changed), or when inserting the wildcard does (one
    removed)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = frozenset(normalise(t) for t in tokens)
        if any(len(t) < MIN_TOKEN_LENGTH or not _TOKEN_CHARACTERS.fullmatch(t) for t in self.tokens):
            raise ValueError(f"banned tokens must be {MIN_TOKEN_LENGTH}+ letters or digits after normalisation")
        self._patterns = frozenset(t[:i] + _WILDCARD + t[i + 1:] for t in self.tokens for i in range(len(t)))
        lengths = {len(t) for t in self.tokens}
        # A window one shorter or longer than some token may match it; no other length can.
        self.window_lengths = tuple(sorted({n + d for n in lengths for d in (-1, 0, 1)}))

    def __len__(self) -> int:
        return len(self.tokens)

    def near(self, window: str) -> bool:
        """Whether `window` is a banned token with at most one character changed, removed, or added inside it (an
        extra character at an end is not part of the token: it scores its own point)."""
        if window in self.tokens:
            return True
        patterns, tokens = self._patterns, self.tokens
        size = len(window)
        if any(window[:i] + _WILDCARD + window[i + 1:] in patterns for i in range(size)):
            return True
        if any(window[:i] + window[i + 1:] in tokens for i in range(1, size - 1)):
            return True
        return any(window[:i] + _WILDCARD + window[i:] in patterns for i in range(size + 1))


def normalise(text: str) -> str:
    """Entra's normalisation; one character out for each character in, so positions carry over."""
    return text.translate(_NORMALISE)


def banned_tokens(ranked_passwords: Iterable[str], limit: int) -> list[str]:
    """The `limit` most common passwords usable as banned tokens, most common first: normalised, 4+ characters of
    letters and digits only (tokens with symbols are rare and a symbol always scores its own point), no repeats."""
    chosen: dict[str, None] = {}
    for password in ranked_passwords:
        token = normalise(password)
        if len(token) >= MIN_TOKEN_LENGTH and _TOKEN_CHARACTERS.fullmatch(token):
            chosen.setdefault(token)
            if len(chosen) == limit:
                break
    return list(chosen)


def banned_score(password: str, context: PasswordContext, common: CommonPasswords) -> int:
    """Entra's score: 1 point per banned token found and 1 per other character, the lowest reading counted."""
    text = normalise(password)
    size = len(text)
    ends: list[list[int]] = [[] for _ in range(size + 1)]  # ends[e]: starts of the tokens found ending at e
    for word in context.words():
        start = text.find(word)
        while start >= 0:
            ends[start + len(word)].append(start)
            start = text.find(word, start + 1)
    for length in common.window_lengths:
        for start in range(size - length + 1):
            if common.near(text[start:start + length]):
                ends[start + length].append(start)
    best = [0] * (size + 1)  # best[e]: the lowest score of text[:e]
    for end in range(1, size + 1):
        best[end] = min([best[end - 1] + 1, *(best[start] + 1 for start in ends[end])])
    return best[size]


def check_password(password: str, context: PasswordContext, common: CommonPasswords) -> list[PasswordFailure]:
    """Every rule the password breaks, in a stable order (empty: acceptable). Never raises, never changes it."""
    failures: list[PasswordFailure] = []
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        failures.append(PasswordFailure.PASSWORD_LENGTH)
    if any(c not in ALLOWED_CHARACTERS for c in password):
        failures.append(PasswordFailure.PASSWORD_CHARACTERS)
    classes = (
        any(c in string.ascii_lowercase for c in password),
        any(c in string.ascii_uppercase for c in password),
        any(c in string.digits for c in password),
        any(c in PASSWORD_SYMBOLS for c in password),
    )
    if sum(classes) < MIN_CHARACTER_CLASSES:
        failures.append(PasswordFailure.PASSWORD_CLASSES)
    # Scoring a string longer than Entra accepts is wasted work (and bounds the work a request can cause).
    if len(password) <= MAX_PASSWORD_LENGTH and banned_score(password, context, common) < MIN_BANNED_SCORE:
        failures.append(PasswordFailure.PASSWORD_BANNED)
    return failures


def password_messages(failures: Sequence[PasswordFailure], language: str) -> list[dict[str, str]]:
    """Each failure as {"rule", "message"} in `language` ("en" or "sv"; anything else reads English). No message
    quotes the password or a part of it."""
    texts = i18n.catalog("passwords", language)
    values = {"min": MIN_PASSWORD_LENGTH, "max": MAX_PASSWORD_LENGTH, "classes": MIN_CHARACTER_CLASSES,
              "symbols": LISTED_SYMBOLS}
    return [{"rule": failure.value, "message": texts[failure.value].format(**values)} for failure in failures]
