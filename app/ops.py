"""Operational endpoints: liveness, readiness, release id, metrics and the API description."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """Liveness: the process answers. Never touches the database, so a DB outage kills no pod."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    """Readiness: the database answers `SELECT 1`; 503 with the reason while it does not."""
    try:
        with current_app.extensions["engine"].connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        return jsonify({"status": "unavailable", "reason": f"database unreachable: {reason}"}), 503
    return jsonify({"status": "ready"})


@bp.get("/version")
def version() -> Any:
    return jsonify({"release": current_app.config["SETTINGS"].release_id})


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(current_app.extensions["metrics_registry"]), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(json.loads(resources.files("app").joinpath("openapi.json").read_text()))
