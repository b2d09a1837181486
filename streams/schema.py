"""Field-level record schemas: one declaration drives validation and JSON Schema.

A record type is declared once as a tuple of :class:`Field`. The same tuple
validates incoming JSON (with an error that names the field) and renders the
JSON Schema files that gateways in other languages read, so the two cannot
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Field", "RecordError", "RecordSchema"]


class RecordError(ValueError):
    """A record that cannot be used; ``field`` names the culprit (or ``None``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


# JSON type name -> Python types accepted for it. bool is excluded from the
# numeric types on purpose: JSON `true` is not a quantity.
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass(frozen=True)
class Field:
    """One field of a record: its JSON type and the constraints we enforce."""

    name: str
    type: str
    description: str
    required: bool = True
    nullable: bool = False
    enum: tuple[str, ...] = ()
    exclusive_minimum: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    items: dict[str, Any] | None = None  # JSON Schema of array items, documentation only

    def check(self, value: Any) -> Any:
        """Return ``value`` if it satisfies this field, else raise RecordError naming it."""
        if value is None:
            if self.nullable:
                return None
            raise RecordError("must not be null", self.name)
        types = _PY_TYPES[self.type]
        if isinstance(value, bool) and bool not in types:
            raise RecordError(f"expected {self.type}, got boolean", self.name)
        if not isinstance(value, types):
            raise RecordError(f"expected {self.type}, got {_json_type(value)}", self.name)
        if self.enum and value not in self.enum:
            raise RecordError(f"must be one of {list(self.enum)}, got {value!r}", self.name)
        if self.exclusive_minimum is not None and not value > self.exclusive_minimum:
            raise RecordError(f"must be > {_n(self.exclusive_minimum)}, got {value!r}", self.name)
        if self.minimum is not None and value < self.minimum:
            raise RecordError(f"must be >= {_n(self.minimum)}, got {value!r}", self.name)
        if self.maximum is not None and value > self.maximum:
            raise RecordError(f"must be <= {_n(self.maximum)}, got {_short(value)}", self.name)
        if self.max_length is not None and len(value) > self.max_length:
            raise RecordError(f"longer than {self.max_length} characters", self.name)
        if self.type == "string" and not value and self.required:
            raise RecordError("must not be empty", self.name)
        return value

    def bounds(self) -> dict[str, Any]:
        """The bounds this field sets, by their JSON Schema keyword, in one order."""
        out: dict[str, Any] = {}
        for keyword, bound in (("exclusiveMinimum", self.exclusive_minimum),
                               ("minimum", self.minimum), ("maximum", self.maximum),
                               ("maxLength", self.max_length)):
            if bound is not None:
                out[keyword] = bound
        if self.type == "string" and self.required and not self.nullable:
            out["minLength"] = 1
        return out

    def json_schema(self) -> dict[str, Any]:
        base: dict[str, Any] = {"type": [self.type, "null"] if self.nullable else self.type}
        base["description"] = self.description
        if self.enum:
            base["enum"] = list(self.enum) + ([None] if self.nullable else [])
        base.update(self.bounds())
        if self.items is not None:
            base["items"] = self.items
        return base


def _n(bound: float) -> str:
    """A bound as written: 946684800000, not 9.46685e+11."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


def _json_type(value: Any) -> str:
    for name, types in _PY_TYPES.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name != "boolean"):
            return name
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class RecordSchema:
    """A named record type: its fields, and how to decode/encode it as JSON."""

    name: str
    title: str
    description: str
    fields: tuple[Field, ...]
    _by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    def validate(self, obj: Any) -> dict[str, Any]:
        """Check a parsed JSON value; return a dict with every declared field present.

        Optional fields that are absent come back as ``None``. Unknown fields are
        kept (forward compatibility: a newer gateway may send more).
        """
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {_json_type(obj)}")
        out = dict(obj)
        for f in self.fields:
            if f.name in obj:
                f.check(obj[f.name])
            elif f.required:
                raise RecordError("required field is missing", f.name)
            else:
                out[f.name] = None
        return out

    def decode(self, raw: bytes | bytearray | memoryview | None) -> dict[str, Any]:
        """Parse and validate one Kafka value."""
        if raw is None:
            raise RecordError("record has no value (tombstone)")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"malformed JSON: {exc}") from None
        return self.validate(obj)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) that gateways validate against."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://tradeguard.dev/schemas/{self.name}.schema.json",
            "title": self.title,
            "description": self.description,
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": True,
        }
