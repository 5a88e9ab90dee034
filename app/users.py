"""The users API: list, read one, create (validated by the API document, all or nothing)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.routing import BaseConverter, ValidationError

from app.auth import require_token
from app.db import MAX_ID, users
from app.errors import ApiError
from app.validation import NewUserValidator

bp = Blueprint("users", __name__)
COLUMNS = (users.c.id, users.c.name, users.c.email)
#: the only media type the document lists for a request body (parameters such as charset allowed)
JSON = "application/json"


class IdConverter(BaseConverter):
    """A path id as the document's `integer`: ASCII digits, optionally signed. Flask's `int` also takes
    other scripts' digits (`/users/\u0661`, ARABIC-INDIC DIGIT ONE, would be user 1), which no integer is."""

    regex = r"[+-]?[0-9]+"

    def to_python(self, value: str) -> int:
        try:
            return int(value)
        except ValueError:  # more digits than int() reads (4300): the URL names no user
            raise ValidationError() from None

    def to_url(self, value: Any) -> str:
        return str(value)


@bp.get("/users")
def list_users() -> Any:
    with current_app.extensions["engine"].connect() as conn:
        rows = conn.execute(select(*COLUMNS).order_by(users.c.id)).mappings().all()
    return jsonify([dict(row) for row in rows])


@bp.get("/users/<id:user_id>")
def get_user(user_id: int) -> Any:
    row = None
    if 1 <= user_id <= MAX_ID:  # no database could even compare every larger one (SQLite: a 500)
        with current_app.extensions["engine"].connect() as conn:
            row = conn.execute(select(*COLUMNS).where(users.c.id == user_id)).mappings().first()
    if row is None:
        raise ApiError(404, f"user {user_id} not found")
    return jsonify(dict(row))


@bp.post("/users")
@require_token
def create_user() -> Any:
    validator: NewUserValidator = current_app.extensions["new_user_validator"]
    fields = validator.validate(json_body())
    engine = current_app.extensions["engine"]
    try:
        with engine.begin() as conn:
            new_id = conn.execute(users.insert().values(**fields)).inserted_primary_key[0]
    except IntegrityError as err:
        with engine.connect() as conn:  # the email's uniqueness, or another constraint (a bug: a 500)
            if conn.execute(select(users.c.id).where(users.c.email == fields["email"])).first() is None:
                raise
        raise ApiError(409, f"a user with email {fields['email']!r} already exists", field="email") from err
    return jsonify({"id": new_id, **fields}), 201, {"Location": f"/users/{new_id}"}


def json_body() -> object:
    """The request's JSON document: 415 for another media type, 400 for anything that is not JSON (RFC 8259:
    no NaN or Infinity, no number beyond Python's digit limit, no nesting deeper than it parses)."""
    if request.mimetype != JSON:
        raise ApiError(415, f"the request body must be {JSON} (got {request.mimetype or 'no Content-Type'})")
    try:
        return json.loads(request.get_data(cache=False), parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        raise ApiError(400, f"request body is not JSON: {str(err).splitlines()[0][:200]}") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
