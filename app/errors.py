"""Every error is JSON: `{"error": "...", "field": "..."}` with the right status."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """An error the client caused or must know about; becomes a JSON response."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Any:
        body = {"error": err.message}
        if err.field:
            body["field"] = err.field
        return jsonify(body), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Any:
        return jsonify({"error": err.description or err.name}), err.code or 500
