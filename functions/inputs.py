"""What the endpoints' body models share: a strict base (no unknown members, no coercion) and a GUID field."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from shared.domain.ids import is_guid


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _guid(text: str) -> str:
    if not is_guid(text):
        raise ValueError("must be a GUID such as 3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    return text


Guid = Annotated[str, StringConstraints(max_length=36), AfterValidator(_guid)]
