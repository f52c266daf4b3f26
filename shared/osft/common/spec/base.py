"""Base model for every run-spec section: unknown fields are errors, never ignored, and so are JSON type slips."""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ModelWrapValidatorHandler, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

SLIP_ERROR = "json_type_slip"
_PYDANTIC_ERROR_TYPES = frozenset(typing.get_args(ErrorType))


def scalar_types(annotation: Any) -> set[type]:
    """The plain types a field accepts at its top level: ``int | None`` gives ``{int, NoneType}``."""
    if isinstance(annotation, type):
        return {annotation}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(scalar_types(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Annotated:
        return scalar_types(typing.get_args(annotation)[0])
    return set()  # containers and literals are left to pydantic


def json_type_slip(expected: set[type], value: Any) -> str | None:
    """What is wrong when a JSON value can only be a slip for the field's type, else None.

    Pydantic's lax mode reads ``true`` as 1 and ``"yes"`` or 1 as true; in JSON either is a mistake.
    An int where a float is expected is not one: JSON writes 2.0 as 2.
    """
    numeric = bool(expected & {int, float})
    if isinstance(value, bool):
        return "expected a number, not true or false" if numeric and bool not in expected else None
    if bool in expected and not numeric and str not in expected and isinstance(value, (str, int, float)):
        return "expected true or false (JSON booleans have no quotes)"
    return None


def _details(error: Any) -> InitErrorDetails:
    """A reported error as pydantic can raise it again (custom error types re-wrapped)."""
    kind = error["type"]
    ctx = error.get("ctx")
    if kind not in _PYDANTIC_ERROR_TYPES:
        kind = PydanticCustomError(kind, error["msg"].replace("{", "{{").replace("}", "}}"))
    details: InitErrorDetails = {"type": kind, "loc": error["loc"], "input": error["input"]}
    if ctx is not None:
        details["ctx"] = ctx
    return details


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
    # Fields added after runs existed whose default leaves a finished stage's result valid: kept out of stage
    # fingerprints while at their default, so upgrading osft does not redo (and pay for) finished stages.
    FINGERPRINT_ONLY_WHEN_SET: ClassVar[frozenset[str]] = frozenset()

    def fingerprint_material(self) -> dict[str, Any]:
        """This section as stage fingerprints hash it (see ``FINGERPRINT_ONLY_WHEN_SET``)."""
        material = self.model_dump(mode="json")
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in self.FINGERPRINT_ONLY_WHEN_SET and value == type(self).model_fields[name].default:
                material.pop(name)
            elif isinstance(value, SpecModel):
                material[name] = value.fingerprint_material()
        return material

    @model_validator(mode="wrap")
    @classmethod
    def _reject_json_type_slips(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        # A model validator, not a field validator: pydantic refuses "before" validators on union tags.
        slips = cls._json_type_slips(data)
        try:
            result = handler(data)
        except ValidationError as exc:
            if not slips:
                raise
            raise ValidationError.from_exception_data(exc.title, slips + [_details(e) for e in exc.errors()]) from None
        if slips:
            raise ValidationError.from_exception_data(cls.__name__, slips)
        return result

    @classmethod
    def _json_type_slips(cls, data: Any) -> list[InitErrorDetails]:
        if not isinstance(data, dict):
            return []
        slips: list[InitErrorDetails] = []
        for name, value in data.items():
            field = cls.model_fields.get(name)
            problem = json_type_slip(scalar_types(field.annotation), value) if field is not None else None
            if problem is not None:
                slips.append({"type": PydanticCustomError(SLIP_ERROR, problem), "loc": (name,), "input": value})
        return slips
