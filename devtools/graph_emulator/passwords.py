"""Entra's cloud password complexity rules, as Graph enforces them on PATCH passwordProfile."""

from __future__ import annotations

SYMBOLS = frozenset("@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ")

COMPLEXITY_MESSAGE = ("The specified password does not comply with password complexity requirements. "
                      "Please provide a different password.")


def complies(password: str, *, strong: bool = True) -> bool:
    """8-256 characters of the allowed ASCII set and, unless strong checks are disabled, 3 of 4 classes."""
    if not 8 <= len(password) <= 256:
        return False
    if any(not (c.isascii() and (c.isalnum() or c in SYMBOLS)) for c in password):
        return False
    if not strong:
        return True
    classes = (
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(c in SYMBOLS for c in password),
    )
    return sum(classes) >= 3
