"""The password seal between the service and the agent: only the right key, job and expiry open it (H2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import ValidationError

from onprem_agent.unsealing import JobExpired, KeyRing, Unreadable, public_base64
from shared.adapters.job_sealing import JobSealer
from shared.domain.onprem_jobs import JobKind, OnPremJob, SealedPassword

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SID = "S-1-5-21-1698289094-3194730111-1799108936-1105"


def _job(sealer: JobSealer, job_id: str = "job-00000001", password: str = "N3w!Passw0rd") -> OnPremJob:
    expires = NOW + timedelta(seconds=30)
    return OnPremJob(job_id=job_id, kind=JobKind.RESET, object_sid=SID, expires_at=expires,
                     password=sealer.seal(password, job_id, expires))


def test_the_agent_opens_a_box_sealed_to_its_public_key_and_the_box_never_holds_the_password() -> None:
    key = X25519PrivateKey.generate()
    job = _job(JobSealer.from_base64(public_base64(key)))
    assert "N3w!Passw0rd" not in job.model_dump_json()
    assert KeyRing([key]).open(job, NOW) == "N3w!Passw0rd"


def test_a_box_for_another_key_is_refused() -> None:
    job = _job(JobSealer(X25519PrivateKey.generate().public_key()))
    with pytest.raises(Unreadable):
        KeyRing([X25519PrivateKey.generate()]).open(job, NOW)


def test_a_wrong_key_under_the_right_key_id_is_refused() -> None:
    right, wrong = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    job = _job(JobSealer(right.public_key()))
    ring = KeyRing([wrong])
    ring._keys = {job.password.key_id: wrong}  # type: ignore[union-attr]  # a key id collision, forced
    with pytest.raises(Unreadable):
        ring.open(job, NOW)


def test_a_pushed_back_expiry_or_a_swapped_job_id_does_not_open() -> None:
    key = X25519PrivateKey.generate()
    job = _job(JobSealer(key.public_key()))
    later = job.model_copy(update={"expires_at": job.expires_at + timedelta(hours=1)})
    swapped = job.model_copy(update={"job_id": "job-00000002"})
    for forged in (later, swapped):
        with pytest.raises(Unreadable):
            KeyRing([key]).open(forged, NOW)


def test_a_tampered_box_is_refused() -> None:
    key = X25519PrivateKey.generate()
    job = _job(JobSealer(key.public_key()))
    assert job.password is not None
    box = job.password.box
    flipped = box[:-6] + ("A" if box[-6] != "A" else "B") + box[-5:]
    forged = job.model_copy(update={"password": SealedPassword(key_id=job.password.key_id, box=flipped)})
    with pytest.raises(Unreadable):
        KeyRing([key]).open(forged, NOW)


def test_an_expired_job_is_refused_before_anything_is_opened() -> None:
    key = X25519PrivateKey.generate()
    job = _job(JobSealer(key.public_key()))
    with pytest.raises(JobExpired):
        KeyRing([key]).open(job, job.expires_at)


def test_during_a_rotation_both_keys_open_their_own_boxes() -> None:
    old, new = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    ring = KeyRing([new, old])
    assert ring.open(_job(JobSealer(old.public_key()), password="Old!Key#1"), NOW) == "Old!Key#1"
    assert ring.open(_job(JobSealer(new.public_key()), password="New!Key#1"), NOW) == "New!Key#1"
    after = KeyRing([new])  # the old key retired: its boxes no longer open
    with pytest.raises(Unreadable):
        after.open(_job(JobSealer(old.public_key())), NOW)


def test_a_job_names_its_user_by_sid_only_and_only_a_reset_carries_a_password() -> None:
    key = X25519PrivateKey.generate()
    job = _job(JobSealer(key.public_key()))
    with pytest.raises(ValidationError):
        OnPremJob.model_validate({**job.model_dump(), "object_sid": "alice"})
    with pytest.raises(ValidationError):
        OnPremJob.model_validate({**job.model_dump(), "kind": "unlock"})


def test_a_change_carries_both_passwords_each_bound_to_its_part_and_only_a_change_does() -> None:
    key = X25519PrivateKey.generate()
    sealer = JobSealer(key.public_key())
    expires = NOW + timedelta(seconds=30)
    job = OnPremJob(job_id="job-00000003", kind=JobKind.CHANGE, object_sid=SID, expires_at=expires,
                    password=sealer.seal("N3w!Passw0rd", "job-00000003", expires),
                    old_password=sealer.seal("Cur!Passw0rd1", "job-00000003", expires, "old"))
    ring = KeyRing([key])
    assert (ring.open(job, NOW), ring.open(job, NOW, "old")) == ("N3w!Passw0rd", "Cur!Passw0rd1")
    assert "Cur!Passw0rd1" not in job.model_dump_json()
    swapped = job.model_copy(update={"password": job.old_password, "old_password": job.password})
    for part in ("new", "old"):
        with pytest.raises(Unreadable):
            ring.open(swapped, NOW, part)  # type: ignore[arg-type]
    document = job.model_dump()
    for wrong in ({"old_password": None}, {"kind": "reset"}, {"must_change_at_next_logon": True}):
        with pytest.raises(ValidationError):
            OnPremJob.model_validate({**document, **wrong})
