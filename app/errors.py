"""Every error is JSON: `{"error": "...", "field": "..."}` with the right status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed


class ApiError(Exception):
    """An error the client caused or must know about; becomes a JSON response."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Any:
        body = {"error": err.message}
        if err.field:
            body["field"] = err.field
        return jsonify(body), err.status, err.headers

    @app.errorhandler(DBAPIError)
    def _database_error(err: DBAPIError) -> Any:
        # Connection-level trouble (database restarting, unreachable) is the server's
        # temporary state, not a bug: 503 tells clients and load balancers to retry.
        if err.connection_invalidated or isinstance(err, OperationalError | InterfaceError):
            return jsonify({"error": "database unavailable, retry shortly"}), 503
        raise err

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Any:
        # The exception's own headers stay (a 405's `Allow`, which RFC 9110 requires, sorted: the
        # same bytes from every process); only its HTML content type goes.
        headers = dict(err.get_headers())
        headers.pop("Content-Type", None)
        if isinstance(err, MethodNotAllowed) and err.valid_methods:
            headers["Allow"] = ", ".join(sorted(err.valid_methods))
        return jsonify({"error": err.description or err.name}), err.code or 500, headers
