"""A new user is valid exactly when the app's own OpenAPI document says so.

The body is checked against `components.schemas.NewUser` of app/openapi.json by jsonschema-rs, the
validator schemathesis itself judges requests with (Draft 4, formats checked, ECMA-style patterns):
whatever the document allows is stored, whatever it forbids is a 422 naming the field, on every
database. Only what JSON Schema cannot say is checked here: text must be encodable (a JSON
`\\ud800` escape carries a lone surrogate, which no database stores).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema_rs

from app.errors import ApiError

Kind = jsonschema_rs.ValidationErrorKind

DOCUMENT = "openapi.json"
SCHEMA = "NewUser"
#: A-Z to a-z only: the fold never changes an address's length (`"İ".lower()` has two characters)
ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
#: the longest value an error message repeats
SHOWN = 40
#: deeper values are refused before validation: the validator's recursion counts against Python's
#: stack (a 500), and no value of the document's NewUser nests at all
MAX_DEPTH = 64


def load_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resources.files("app").joinpath(DOCUMENT).read_text(encoding="utf-8"))
    return document


@dataclass(frozen=True)
class NewUserValidator:
    """The document's NewUser schema, compiled once per app."""

    validator: jsonschema_rs.Validator
    fields: tuple[str, ...]  # the document's properties, in its order: which error is named first

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> NewUserValidator:
        schema = document["components"]["schemas"][SCHEMA]
        validator = jsonschema_rs.Draft4Validator(schema, validate_formats=True,
                                                  pattern_options=jsonschema_rs.FancyRegexOptions())
        return cls(validator, tuple(schema["properties"]))

    def validate(self, body: object) -> dict[str, str]:
        """The stored fields of a valid body (name without surrounding whitespace, email in lower case)."""
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        for key, value in body.items():
            unencodable, depth = _scan([key, value])
            if unencodable is not None:
                raise ApiError(422, f"{_shown(key)} is not valid Unicode text (a lone surrogate U+{unencodable:04X})",
                               field=key)
            if depth > MAX_DEPTH:
                raise ApiError(422, f"{_shown(key)} nests deeper than {MAX_DEPTH} levels", field=key)
        errors = sorted(self.validator.iter_errors(body), key=self._rank)
        if errors:
            field, message = self._describe(errors[0])
            raise ApiError(422, message, field=field)
        return {"name": body["name"].strip(), "email": body["email"].translate(ASCII_FOLD)}

    def _rank(self, error: jsonschema_rs.ValidationError) -> tuple[int, int, str]:
        """Unknown fields first, then missing ones, then the document's order of properties."""
        match error.kind:
            case Kind.AdditionalProperties(unexpected):
                return 0, 0, min(unexpected)
            case Kind.Required(missing):
                return 1, self._position(missing), missing
        field = str(error.instance_path[0]) if error.instance_path else ""
        return 2, self._position(field), field

    def _position(self, field: str) -> int:
        return self.fields.index(field) if field in self.fields else len(self.fields)

    @staticmethod
    def _describe(error: jsonschema_rs.ValidationError) -> tuple[str | None, str]:
        """The field to name and what is wrong with it, in the document's terms."""
        field = str(error.instance_path[0]) if error.instance_path else None
        match error.kind:
            case Kind.AdditionalProperties(unexpected):
                return min(unexpected), f"unknown field {_shown(min(unexpected))}"
            case Kind.Required(missing):
                return missing, f"{missing} is required"
            case _ if field is None:
                return None, f"request body: {error.message[:200]}"
            case Kind.Type(types):
                return field, f"{field} must be of type {' or '.join(types)}"
            case Kind.MinLength(limit):
                return field, f"{field} must have at least {limit} character(s)"
            case Kind.MaxLength(limit):
                return field, f"{field} is longer than {limit} characters"
            case Kind.Format(name):
                return field, f"{field} is not a valid address (format {name!r})"
            case Kind.Pattern():
                return field, f"{field} does not match its pattern in the API document (see its description)"
        return field, f"{field}: {error.message[:200]}"


def _scan(value: object) -> tuple[int | None, int]:
    """The first code point of `value` (at any depth, keys too) that UTF-8 cannot encode, if any, and
    how deep it nests. A loop, not a recursion: a body may nest as deep as the JSON parser went."""
    pending: list[tuple[object, int]] = [(value, 0)]
    deepest = 0
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as err:
                return ord(item[err.start]), deepest
        elif isinstance(item, dict):
            pending += [(child, depth + 1) for child in (*item, *item.values())]
        elif isinstance(item, list):
            pending += [(child, depth + 1) for child in item]
    return None, deepest


def _shown(value: str) -> str:
    """`value` quoted for a message, cut at SHOWN characters."""
    return repr(value if len(value) <= SHOWN else value[:SHOWN] + "...")
