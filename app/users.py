"""The users API: list, read one, create (validated, all or nothing)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth import require_token
from app.db import MAX_ID, users
from app.errors import ApiError

bp = Blueprint("users", __name__)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: C0 and C1 control characters and DEL (NUL too): in no name or address, and not stored alike everywhere
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
COLUMNS = (users.c.id, users.c.name, users.c.email)


@bp.get("/users")
def list_users() -> Any:
    with current_app.extensions["engine"].connect() as conn:
        rows = conn.execute(select(*COLUMNS).order_by(users.c.id)).mappings().all()
    return jsonify([dict(row) for row in rows])


@bp.get("/users/<int:user_id>")
def get_user(user_id: int) -> Any:
    row = None
    if user_id <= MAX_ID:  # SQLite cannot even compare a larger one (a 500): it is no user's id
        with current_app.extensions["engine"].connect() as conn:
            row = conn.execute(select(*COLUMNS).where(users.c.id == user_id)).mappings().first()
    if row is None:
        raise ApiError(404, f"user {user_id} not found")
    return jsonify(dict(row))


@bp.post("/users")
@require_token
def create_user() -> Any:
    fields = validate_new_user(request.get_json(silent=True))
    try:
        with current_app.extensions["engine"].begin() as conn:
            new_id = conn.execute(users.insert().values(**fields)).inserted_primary_key[0]
    except IntegrityError as err:
        raise ApiError(409, f"a user with email {fields['email']!r} already exists", field="email") from err
    return jsonify({"id": new_id, **fields}), 201, {"Location": f"/users/{new_id}"}


def validate_new_user(body: object) -> dict[str, str]:
    """Name and email, both non-empty text within the column sizes; nothing else."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    unknown = sorted(set(body) - {"name", "email"})
    if unknown:
        raise ApiError(422, f"unknown field {unknown[0]!r}", field=unknown[0])
    name = stored_text("name", body.get("name"), limit=80)
    email = stored_text("email", body.get("email"), limit=255, fold=True)
    if not EMAIL.match(email):
        raise ApiError(422, "email is not a valid address", field="email")
    return {"name": name, "email": email}


def stored_text(field: str, value: object, *, limit: int, fold: bool = False) -> str:
    """What is stored (stripped, lower case if `fold`): non-blank, at most `limit` characters, and
    the same on every backend, so encodable as UTF-8 (no lone surrogate, which a JSON `\\ud800`
    escape can carry) and free of control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, f"{field} is required and must be a non-empty string", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ApiError(422, f"{field} is not valid Unicode text (a lone surrogate at position {err.start})",
                       field=field) from err
    control = CONTROL.search(value)
    if control:
        raise ApiError(422, f"{field} contains the control character U+{ord(control.group()):04X}", field=field)
    text = value.strip().lower() if fold else value.strip()
    if len(text) > limit:
        raise ApiError(422, f"{field} is longer than {limit} characters", field=field)
    return text
