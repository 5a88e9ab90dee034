"""Authenticate and authorize (talk, factor "auth"): writes need the bearer token.

Reads stay public so that health checks and the contract's list/get need no secret; when
API_TOKEN is unset (the laptop default) writes are open too.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request

from app.errors import ApiError


def require_token(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        expected: str | None = current_app.config["SETTINGS"].api_token
        if expected:
            check_bearer(request.headers.get("Authorization", ""), expected)
        return view(*args, **kwargs)

    return wrapper


def check_bearer(header: str, expected: str) -> None:
    """401 when no bearer token is given (with the challenge RFC 9110 requires), 403 when it is
    the wrong one."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(403, "invalid token")
