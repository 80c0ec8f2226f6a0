"""Properties of the code state machine and of the reset flow's step order, for any sequence of operations.

A hypothesis state machine drives one challenge through arbitrary interleavings of sends, failed sends, clock
moves and submissions (right, wrong, superseded, and codes bound to another flow or method) next to a plain model
of the rules, and checks after every step: a code is never accepted after lock, expiry or use, nor in another
partition or row (A6-A9, A7); `failed_attempts` is exactly the number of wrong submissions that counted (F3).
For the reset flow: `ready_for_password` never holds with fewer verified methods than required or with a refusal,
whatever was verified, failed, locked or resolved on the way (A12, A13).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shared.domain import codes, reset_flow
from shared.domain.codes import Challenge, Channel, Verdict
from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.domain.reset_flow import Refusal, ResetFlow, Resolution

KEY = b"property-test-key-32-bytes-long!"
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
EIGHT_DIGITS = st.from_regex(r"\A[0-9]{8}\Z")
# Other flows (partitions) and other methods (rows) the same code could be copied from (A7).
ELSEWHERE = st.sampled_from([("flow-2", "email"), ("flow-1", "mobilePhone"), ("flow-2", "mobilePhone")])


class ChallengeMachine(RuleBasedStateMachine):
    """One challenge of flow-1's email method, and what the rules say it must answer."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.challenge = codes.request_delivery(
            Challenge("flow-1", "email", "user-1", Method.EMAIL, Channel.EMAIL, "a@b.example", START), "m1", START)
        self.code: str | None = None  # the live code, if one was issued and not withdrawn
        self.old_codes: set[str] = set()  # codes a resend replaced (A8)
        self.expires_at: datetime | None = None
        self.wrong = 0  # wrong submissions the rules count
        self.accepted = 0

    # ---- what the model says -------------------------------------------------------------------------------

    def used(self) -> bool:
        return self.accepted > 0

    def locked(self) -> bool:
        return self.wrong >= codes.MAX_FAILED_ATTEMPTS

    def live(self) -> bool:
        return self.code is not None and self.expires_at is not None and self.now < self.expires_at

    def judge_wrong(self) -> Verdict:
        """What any code but the live one must get; counts when it is a guess at a live or locked challenge."""
        if self.used():
            return Verdict.USED
        if self.locked():
            self.wrong += 1
            return Verdict.LOCKED
        if not self.live():
            return Verdict.EXPIRED
        self.wrong += 1
        return Verdict.LOCKED if self.locked() else Verdict.WRONG

    def submit(self, code: str) -> Verdict:
        verdict, self.challenge = codes.submit(self.challenge, code, KEY, self.now)
        return verdict

    # ---- operations --------------------------------------------------------------------------------------------

    @rule(code=EIGHT_DIGITS)
    def send_a_code(self, code: str) -> None:
        if self.code is not None and self.code != code:
            self.old_codes.add(self.code)
        self.old_codes.discard(code)
        digest = codes.code_digest(KEY, self.challenge.partition, self.challenge.row, code)
        self.challenge = codes.issue_code(self.challenge, digest, self.now, TTL)
        self.code, self.expires_at = code, self.now + TTL

    @precondition(lambda self: self.code is not None)
    @rule()
    def the_send_fails(self) -> None:
        self.challenge = codes.mark_send_failed(self.challenge, self.now)
        self.old_codes.add(self.code or "")
        self.code, self.expires_at = None, None

    @rule(seconds=st.integers(min_value=1, max_value=400))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: self.code is not None)
    @rule()
    def submit_the_live_code(self) -> None:
        assert self.code is not None
        if self.used():
            expected = Verdict.USED
        elif self.locked():
            self.wrong += 1
            expected = Verdict.LOCKED
        elif not self.live():
            expected = Verdict.EXPIRED
        else:
            self.accepted += 1
            expected = Verdict.ACCEPTED
        assert self.submit(self.code) is expected

    @rule(code=EIGHT_DIGITS)
    def submit_a_wrong_code(self, code: str) -> None:
        if code == self.code:
            return  # that is the right one: covered by submit_the_live_code
        expected = self.judge_wrong()
        assert self.submit(code) is expected

    @precondition(lambda self: bool(self.old_codes - {self.code}))
    @rule(data=st.data())
    def submit_a_superseded_code(self, data: st.DataObject) -> None:
        old = data.draw(st.sampled_from(sorted(self.old_codes - {self.code or ""})))
        expected = self.judge_wrong()
        assert self.submit(old) is expected

    @precondition(lambda self: self.code is not None)
    @rule(elsewhere=ELSEWHERE)
    def a_code_bound_to_another_flow_or_method_fails_here(self, elsewhere: tuple[str, str]) -> None:
        # A7: the live code, but as flow Y / method N stored it: its digest copied onto this challenge.
        assert self.code is not None
        foreign = codes.code_digest(KEY, *elsewhere, self.code)
        copied = replace(self.challenge, code_digest=foreign) if self.challenge.code_digest else self.challenge
        verdict, _ = codes.submit(copied, self.code, KEY, self.now)
        assert verdict is not Verdict.ACCEPTED

    # ---- what must always hold ---------------------------------------------------------------------------------

    @invariant()
    def failed_attempts_count_every_wrong_submission(self) -> None:
        assert self.challenge.failed_attempts == self.wrong  # F3

    @invariant()
    def a_code_works_at_most_once(self) -> None:
        assert self.accepted <= 1
        assert codes.is_used(self.challenge) == self.used()

    @invariant()
    def locked_and_used_are_final(self) -> None:
        assert codes.is_locked(self.challenge) == self.locked()
        if self.used() or self.locked():
            assert self.submit_probe() is not Verdict.ACCEPTED

    def submit_probe(self) -> Verdict:
        """The live code tried on a copy: never accepted once final (the copy is not kept)."""
        verdict, _ = codes.submit(self.challenge, self.code or "00000000", KEY, self.now)
        return verdict


ChallengeMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_the_code_state_machine_never_accepts_after_lock_expiry_use_or_elsewhere = ChallengeMachine.TestCase


# ---- the reset flow's step order (A12, A13) ---------------------------------------------------------------------

METHODS = st.sampled_from(list(Method))
POSSESSION = st.sampled_from(sorted(reset_flow.POSSESSION_METHODS))


@st.composite
def resolutions(draw: st.DrawFn) -> Resolution:
    is_admin = draw(st.booleans())
    policy = Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all",
                                    "methodsRequired": draw(st.sampled_from([1, 2]))})
    required, allowed = reset_flow.requirements_for(policy, is_admin)
    return Resolution(
        user_id=draw(st.one_of(st.none(), st.just("user-1"))),
        is_admin=is_admin,
        registered=frozenset(draw(st.sets(METHODS))),
        refusal=draw(st.one_of(st.none(), st.sampled_from(list(Refusal)))),
        methods_required=required,
        methods_allowed=allowed,
    )


STEPS = st.lists(st.one_of(
    st.tuples(st.just("verify"), METHODS),
    st.tuples(st.just("fail"), METHODS),
    st.tuples(st.just("lock"), st.none()),
    st.tuples(st.just("resolve again"), st.none()),
), max_size=20)


@settings(max_examples=500, deadline=None)
@given(first=resolutions(), second=resolutions(), steps=STEPS)
def test_the_password_step_never_opens_short_of_the_required_methods_or_with_a_refusal(
        first: Resolution, second: Resolution, steps: list[tuple[str, Method | None]]) -> None:
    flow = ResetFlow("flow-1", "digest", "casey@contoso.example", START)
    assert not reset_flow.ready_for_password(flow)  # nothing resolved, nothing proven
    flow = reset_flow.resolved(flow, first)
    for action, method in steps:
        if action == "verify" and method is not None:
            flow = reset_flow.record_verified(flow, method)
        elif action == "fail" and method is not None:
            flow = reset_flow.record_failure(flow, method)
        elif action == "lock":
            flow = reset_flow.lock(flow)
        else:
            flow = reset_flow.resolved(flow, second)  # a racing resolution never replaces the first
        assert flow.resolution == first
        if reset_flow.ready_for_password(flow):
            assert first.refusal is None and first.user_id is not None
            assert len(set(flow.verified)) >= first.methods_required
            if first.is_admin:
                assert len(set(flow.verified)) >= 2  # A12, whatever the policy said


@given(policy_required=st.sampled_from([1, 2]), verified=POSSESSION)
def test_an_administrator_with_one_verified_method_is_never_ready(policy_required: int, verified: Method) -> None:
    policy = Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all", "methodsRequired": policy_required})
    required, allowed = reset_flow.requirements_for(policy, is_admin=True)
    flow = reset_flow.resolved(ResetFlow("flow-1", "digest", "admin@contoso.example", START),
                               Resolution("admin-1", is_admin=True, methods_required=required, methods_allowed=allowed))
    flow = reset_flow.record_verified(reset_flow.record_verified(flow, verified), verified)  # the same one twice
    assert not reset_flow.ready_for_password(flow)
    assert Method.SECURITY_QUESTIONS not in allowed
