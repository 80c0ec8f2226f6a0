"""The shipped banned-password list (shared/data/common_passwords.txt, security.md B2), read and indexed once per
process on first use.

The file is derived from the `passwords` frequency list of the zxcvbn package by
scripts/derive_common_passwords.py (tests/unit/test_passwords.py checks it still matches the installed zxcvbn),
so the app never imports zxcvbn itself: importing its lists costs ~25-60 ms and loads every list it has, where
this file holds only the tokens we score with. COMMON_PASSWORD_COUNT is the cut: the 10,000 most common passwords
that are 4+ letters and digits after Entra's normalisation. At 30,000 one in ten two-word passphrases
("Harbor-Lantern42") is refused on fuzzy hits against rare tokens and the index takes ~24 MB and ~0.5 s to build;
at 10,000, ~2.5% of them, ~7 MB and ~0.15 s.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from shared.domain.passwords import CommonPasswords

COMMON_PASSWORD_COUNT = 10_000
DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "common_passwords.txt"


def read_tokens(path: Path = DATA_FILE) -> list[str]:
    """The tokens of a list file, most common first: one a line; lines starting with "#" are comments."""
    lines = path.read_text(encoding="ascii").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@cache
def common_passwords() -> CommonPasswords:
    """The banned list, indexed; built once per process (the first password check pays for it)."""
    return CommonPasswords(read_tokens())
