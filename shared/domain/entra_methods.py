"""Methods a user registered in Entra (for MFA or Entra's own SSPR) as methods of ours (policy entraMethods.count).

ENTRA_PHONE_TYPES maps Graph's phoneMethod types to ours: a mobile or alternate mobile number receives SMS codes
(mobilePhone), an office number a call (officePhone); an email method receives email codes. Each contact is put
in the one form ours are kept in (E.164, a normalised address); one Entra would keep but we cannot use (a landline
as a mobile, a malformed number) is left out. Of two numbers of one kind the first counts: mobile before
alternateMobile, as Entra lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.domain import codes
from shared.domain.codes import ContactError
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod

ENTRA_PHONE_TYPES = {"mobile": Method.MOBILE_PHONE, "alternateMobile": Method.MOBILE_PHONE,
                     "office": Method.OFFICE_PHONE}
SOURCE = "entra"  # RegisteredMethod.secret of a method read from Entra: where it came from, nothing secret


def as_methods(contacts: Iterable[tuple[str, str]], read_at: datetime) -> list[RegisteredMethod]:
    """(Graph's kind - a phoneType or "email" -, contact) pairs as our methods, one per kind, usable ones only."""
    found: dict[Method, RegisteredMethod] = {}
    for kind, contact in contacts:
        method = Method.EMAIL if kind == "email" else ENTRA_PHONE_TYPES.get(kind)
        if method is None or method in found:
            continue
        try:
            normal = codes.normalise_email(contact) if method is Method.EMAIL \
                else codes.normalise_phone(contact, method)
        except ContactError:
            continue
        found[method] = RegisteredMethod(method, read_at, contact=normal, secret=SOURCE)
    return [found[m] for m in sorted(found)]
