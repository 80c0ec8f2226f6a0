"""What a policy rule is: a name to find it by, the field it reports at, and its message; ranges add their bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError, core_schema


@dataclass(frozen=True)
class Rule:
    """One policy rule: `name` to find it, `field` where it reports, `message` ({placeholders} from the check)."""

    name: str
    field: str
    message: str

    def violated(self, **context: Any) -> PydanticCustomError:
        return PydanticCustomError(self.name, self.message, context or None)


@dataclass(frozen=True)
class RangeRule(Rule):
    """A whole number between `low` and `high`, inclusive. Used as a field's annotation, it checks the field and
    puts the bounds into the JSON schema (OpenAPI) for clients to show."""

    low: int = 0
    high: int = 0

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        return {**handler(schema), "minimum": self.low, "maximum": self.high}

    def _check(self, value: int) -> int:
        if not self.low <= value <= self.high:
            raise self.violated(low=self.low, high=self.high)
        return value


def range_rule(name: str, field: str, low: int, high: int, why: str = "") -> RangeRule:
    return RangeRule(name, field, f"must be between {low} and {high}{why}", low, high)


def only_with(switch: str, needed: str, rule: Rule) -> Any:
    """The validator of `switch`: it may be on only while `needed` (a switch declared before it) is on, else `rule`.
    Written in the model as `_<why> = only_with("<switch>", "<needed>", RULE)`."""

    def check(cls: type, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get(needed) is False:
            raise rule.violated()
        return value

    return field_validator(switch)(classmethod(check))
