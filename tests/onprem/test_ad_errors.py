"""AD's answers to a password modify, as the agent's verdicts (Samba names the rule; Windows DCs do not)."""

from __future__ import annotations

from onprem_agent.directory import filetime, map_ldap_result, sid_bytes
from shared.domain.onprem_jobs import Verdict

SAMBA = "0000052D: Constraint violation - check_password_restrictions: "


def test_each_password_rule_samba_names_becomes_its_own_verdict() -> None:
    cases = {
        "the password is too short. It should be equal or longer than 7 characters!": Verdict.REFUSED_COMPLEXITY,
        "the password does not meet the complexity criteria!": Verdict.REFUSED_COMPLEXITY,
        "the password was already used (in history)!": Verdict.REFUSED_HISTORY,
        "password is too young to change!": Verdict.REFUSED_MINIMUM_AGE,
    }
    for message, verdict in cases.items():
        outcome = map_ldap_result({"result": 19, "description": "constraintViolation", "message": SAMBA + message})
        assert outcome.verdict is verdict, message
        assert outcome.rule == message


def test_a_windows_dc_refusal_without_the_rule_is_the_policy_and_other_errors_change_nothing() -> None:
    windows = ("0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 "
               "(CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n")
    assert map_ldap_result({"result": 19, "message": windows}).verdict is Verdict.REFUSED_POLICY
    assert map_ldap_result({"result": 50, "message": "00002098: SecErr"}).verdict is Verdict.FAILED
    assert map_ldap_result({"result": 0}).verdict is Verdict.APPLIED


def test_sids_and_filetimes_convert() -> None:
    raw = sid_bytes("S-1-5-21-1-2-3-1105")
    assert raw[:8] == b"\x01\x05\x00\x00\x00\x00\x00\x05" and raw[-4:] == (1105).to_bytes(4, "little")
    assert filetime(0) is None and filetime(0x7FFFFFFFFFFFFFFF) is None
    stamp = filetime(133_000_000_000_000_000)
    assert stamp is not None and stamp.year == 2022


def test_a_changes_wrong_current_password_and_a_locked_out_account_are_their_own_verdicts() -> None:
    wrong = "00000056: Constraint violation - check_password_restrictions: The old password specified doesn't match!"
    assert map_ldap_result({"result": 19, "message": wrong}).verdict is Verdict.REFUSED_CURRENT_PASSWORD
    locked = ("00000775: Password change not permitted, account locked out! at "
              "../../source4/dsdb/samdb/ldb_modules/password_hash.c:3929:setup_io")  # Samba's words, measured here
    assert map_ldap_result({"result": 19, "message": locked}).verdict is Verdict.LOCKED_OUT
