"""The password rules of the reset flow (security.md B1, B2): Entra's cloud policy and its banned-password score."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import string
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devtools.graph_emulator.passwords import complies
from devtools.processes import REPO_ROOT
from shared.adapters.common_passwords import DATA_FILE, common_passwords, read_tokens
from shared.domain.passwords import (
    MAX_PASSWORD_LENGTH,
    PASSWORD_SYMBOLS,
    CommonPasswords,
    PasswordContext,
    PasswordFailure,
    banned_score,
    check_password,
    normalise,
    password_messages,
)

B1_RULES = {PasswordFailure.PASSWORD_LENGTH, PasswordFailure.PASSWORD_CHARACTERS, PasswordFailure.PASSWORD_CLASSES}
CASEY = PasswordContext(tenant_name="Contoso", upn="casey@contoso.example", given_name="Casey", surname="Jensen",
                        display_name="Casey Jensen")
ALEX_AT_FABRIKAM = PasswordContext(tenant_name="Fabrikam", upn="alex.berg@fabrikam.example", given_name="Alex",
                                   surname="Berg", display_name="Alex Berg")
ASA = PasswordContext(tenant_name="Contoso", upn="asa.oberg@contoso.example", given_name="Åsa", surname="Öberg",
                      display_name="Åsa Öberg")
NOBODY = PasswordContext()
ALLOWED = string.ascii_letters + string.digits + "".join(sorted(PASSWORD_SYMBOLS))
# Symbols that normalise to themselves, so no banned token can contain them (@ and $ read as a and s).
PLAIN_SYMBOLS = sorted(PASSWORD_SYMBOLS - {"@", "$"})


def check(password: str, context: PasswordContext = CASEY) -> list[PasswordFailure]:
    return check_password(password, context, common_passwords())


def random_password(length: int, seed: int) -> str:
    """A password a generator would make: random characters of every class."""
    rng = random.Random(seed)
    core = [rng.choice(ALLOWED) for _ in range(length - 4)]
    core += [rng.choice(string.ascii_lowercase), rng.choice(string.ascii_uppercase), rng.choice(string.digits), "#"]
    return "".join(core)


# -- B1: Entra's cloud policy ---------------------------------------------------------------------------------------

def test_8_and_256_characters_are_accepted_7_and_257_are_refused_for_length() -> None:
    assert check("Zq7#Vm2!") == []
    assert check(random_password(256, seed=1)) == []
    assert check("Zq7#Vm2") == [PasswordFailure.PASSWORD_LENGTH]
    assert check(random_password(257, seed=1)) == [PasswordFailure.PASSWORD_LENGTH]


def test_letters_outside_ascii_are_refused_never_folded_into_ascii() -> None:
    assert PasswordFailure.PASSWORD_CHARACTERS in check("Lösenord#2026")
    assert PasswordFailure.PASSWORD_CHARACTERS in check("Ｚq7#Vm2!x")  # full-width Z: NFKC would make it ASCII
    assert PasswordFailure.PASSWORD_CHARACTERS in check("Zq7#Vm2!\t")  # a tab is not Entra's space
    assert PasswordFailure.PASSWORD_CHARACTERS in check("Zq7#Vm2!🔑")
    assert check("Zq7 #Vm2!\\`~\"") == []  # space and the odd symbols are Entra's own


def test_three_of_four_character_classes_are_required() -> None:
    assert check("zqvmkxwt") == [PasswordFailure.PASSWORD_CLASSES]  # lower only
    assert check("zqvmkx47") == [PasswordFailure.PASSWORD_CLASSES]  # lower + digit
    assert check("zqvmkx47#") == []  # lower + digit + symbol
    assert check("ZQVMkxwt#") == []  # upper + lower + symbol
    assert check("zqv mkx 47") == []  # the space is a symbol


def test_the_password_is_judged_exactly_as_typed() -> None:
    # Spaces at the ends count: a trimmed copy would be 7 characters and lack its only symbol (B3: no trimming).
    assert check(" Zq7Vm2k") == []
    assert check(" Zq7Vm2k".strip()) == [PasswordFailure.PASSWORD_LENGTH]


def test_several_failures_are_reported_at_once_in_a_stable_order() -> None:
    assert check("pässwd") == [PasswordFailure.PASSWORD_LENGTH, PasswordFailure.PASSWORD_CHARACTERS,
                               PasswordFailure.PASSWORD_CLASSES, PasswordFailure.PASSWORD_BANNED]


# -- B2: the banned-password score ----------------------------------------------------------------------------------

@pytest.mark.parametrize("password", ["Password1", "P@ssw0rd2026", "Welcome1!", "Summer2026!", "Qwerty123!"])
def test_common_passwords_and_their_variants_are_banned(password: str) -> None:
    assert check(password) == [PasswordFailure.PASSWORD_BANNED]


@pytest.mark.parametrize("password", ["Demo-Pass-2026!", "Harbor lantern Quietly 47 marmalade", "Tr0ub4dor&3",
                                      random_password(24, seed=7)])
def test_passwords_with_enough_of_their_own_pass(password: str) -> None:
    assert check(password) == []


def test_the_tenant_name_counts_as_a_banned_word_for_that_tenant_only() -> None:
    assert check("Contoso#26", CASEY) == [PasswordFailure.PASSWORD_BANNED]
    assert check("Contoso#26", ALEX_AT_FABRIKAM) == []


def test_the_users_name_counts_as_a_banned_word_accents_dropped() -> None:
    assert check("Oberg#26", ASA) == [PasswordFailure.PASSWORD_BANNED]
    assert check("Oberg#26", CASEY) == []


def test_B2_the_upns_local_part_counts_as_a_banned_word_on_its_own() -> None:
    # The UPN's local part is the only place "zorvath" appears: not the names, not the tenant, not the list.
    zorvath = PasswordContext(tenant_name="Contoso", upn="zorvath.k@contoso.example", given_name="Kim",
                              surname="Lund", display_name="Kim Lund")
    assert check("Zorvath#26", zorvath) == [PasswordFailure.PASSWORD_BANNED]
    assert check("Zorvath#26", CASEY) == []


def test_context_words_shorter_than_4_characters_are_not_used() -> None:
    pol = PasswordContext(tenant_name="Contoso", upn="pol@contoso.example", given_name="Pol", display_name="Pol")
    assert banned_score("Pol#26xq", pol, common_passwords()) == banned_score("Pol#26xq", NOBODY, common_passwords())


def test_microsofts_documented_score_examples() -> None:
    # learn.microsoft.com, "Eliminate bad passwords": "contoso" and "blank" banned; 4 points fail, 5 pass.
    only_blank = CommonPasswords(["blank"])
    contoso = PasswordContext(tenant_name="Contoso")
    assert banned_score("C0ntos0Blank12", contoso, only_blank) == 4
    assert banned_score("ContoS0Bl@nkf9!", contoso, only_blank) == 5


def test_one_edit_away_from_a_banned_token_is_found() -> None:
    banned = CommonPasswords(["abcdef"])
    assert all(banned.near(w) for w in ["abcdef", "abcdeg", "abcde", "xbcdef", "abxdef", "bcdef", "abc_def"])
    # An extra character at an end is not part of the token ("abcdefg" is [abcdef] + [g]).
    assert not any(banned.near(w) for w in ["abcdefg", "_abcdef", "abcd", "abdcfe", "zzcdef", "bcdefg"])


def test_normalisation_is_lower_case_and_entras_documented_look_alikes_only() -> None:
    assert normalise("P@$$w0rd1") == "passwordl"
    assert normalise("H3ll4") == "h3ll4"  # 3->e and 4->a are not Entra's


def test_typing_more_of_a_banned_word_can_make_a_passing_password_fail() -> None:
    # Entra's scoring is not monotone: completing a banned word turns its letters into 1 point.
    assert check("Zq7#footba") == []
    assert check("Zq7#footbal") == [PasswordFailure.PASSWORD_BANNED]


# -- messages -------------------------------------------------------------------------------------------------------

def test_each_failure_has_a_message_in_english_and_swedish_without_the_password() -> None:
    failures = check("qüx")
    assert set(failures) == set(PasswordFailure)
    english = password_messages(failures, "en")
    swedish = password_messages(failures, "sv")
    assert [m["rule"] for m in english] == [m["rule"] for m in swedish] == [f.value for f in failures]
    assert english[0]["message"] == "Use 8 to 256 characters."
    assert swedish[0]["message"] == "Lösenordet måste vara 8–256 tecken långt."
    assert "commonly used password" in english[3]["message"]
    assert "vanligt förekommande lösenord" in swedish[3]["message"]
    for message in english + swedish:
        assert "qüx" not in message["message"].lower()
    assert password_messages(failures, "de") == english


# -- properties -----------------------------------------------------------------------------------------------------

passwords = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=ALLOWED, max_size=20),
    st.text(alphabet=ALLOWED + "åäöÅÄÖé€\t\n\x00", min_size=MAX_PASSWORD_LENGTH - 2, max_size=MAX_PASSWORD_LENGTH + 2),
)


@settings(max_examples=300, deadline=None)
@given(passwords)
@example("Zq7#Vm2")
@example("Zq7#Vm2!")
@example("Ｚq7#Vm2!x")
def test_b1_rules_agree_with_the_emulators_reading_of_entras_policy(password: str) -> None:
    b1 = [f for f in check_password(password, NOBODY, common_passwords()) if f in B1_RULES]
    assert (b1 == []) == complies(password)


contexts = st.builds(PasswordContext, tenant_name=st.none() | st.text(max_size=30), upn=st.none() | st.text(max_size=40),
                     given_name=st.none() | st.text(max_size=20), surname=st.none() | st.text(max_size=20),
                     display_name=st.none() | st.text(max_size=40))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(alphabet=ALLOWED, max_size=40), st.text(min_size=300, max_size=400)),
       contexts)
def test_the_checker_never_raises_and_answers_known_rules(password: str, context: PasswordContext) -> None:
    failures = check_password(password, context, common_passwords())
    assert all(isinstance(f, PasswordFailure) for f in failures)
    assert len(failures) == len(set(failures))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALLOWED, max_size=30), st.sampled_from(PLAIN_SYMBOLS), st.sampled_from([CASEY, ASA, NOBODY]))
@example("Zq7#footbal", "!", CASEY)
def test_appending_a_symbol_never_lowers_the_score(password: str, symbol: str, context: PasswordContext) -> None:
    common = common_passwords()
    assert banned_score(password + symbol, context, common) >= banned_score(password, context, common)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ALLOWED, max_size=30), st.sampled_from([CASEY, NOBODY]))
def test_the_score_is_between_one_point_per_token_and_one_per_character(password: str,
                                                                        context: PasswordContext) -> None:
    score = banned_score(password, context, common_passwords())
    assert score <= len(password)
    assert score >= (1 if password else 0)


# -- the shipped list -----------------------------------------------------------------------------------------------

def test_the_shipped_list_is_what_the_script_derives_from_the_installed_zxcvbn() -> None:
    spec = importlib.util.spec_from_file_location("derive", REPO_ROOT / "scripts" / "derive_common_passwords.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert DATA_FILE.read_text(encoding="ascii") == script.derived_text()
    tokens = read_tokens()
    assert len(tokens) == len(common_passwords()) == 10_000
    assert tokens[:2] == ["l23456", "password"]


def test_loading_the_app_imports_no_zxcvbn_and_reads_no_list() -> None:
    # The sample is what `make run` copies to local.settings.json: the app's dev settings, whichever ran before.
    settings_file = json.loads((REPO_ROOT / "local.settings.json.sample").read_text(encoding="utf-8"))
    probe = (
        "import sys, function_app\n"
        "assert 'zxcvbn' not in sys.modules, 'zxcvbn imported'\n"
        "module = sys.modules.get('shared.adapters.common_passwords')\n"
        "assert module is None or module.common_passwords.cache_info().currsize == 0, 'list read at import'\n"
    )
    env = {**os.environ, **settings_file["Values"]}
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
