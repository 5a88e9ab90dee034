"""The application factory: settings from the environment, one engine, the blueprints."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from app import ops, users
from app.db import make_engine
from app.errors import register_error_handlers
from app.observability import configure_logging, instrument
from app.settings import Settings
from app.validation import NewUserValidator, load_document

MAX_BODY = 64 * 1024


class CompactJSON(DefaultJSONProvider):
    """The same bytes in every stage: compact, keys in column order (id, name, email)."""

    sort_keys = False
    compact = True


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    settings = Settings.from_env(env)
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.json = CompactJSON(app)
    # a valid new user is far smaller (the document's lengths): a larger body is a 413, never read whole
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.url_map.converters["id"] = users.IdConverter
    app.extensions["new_user_validator"] = NewUserValidator.from_document(load_document())
    app.extensions["engine"] = make_engine(settings.database_url)
    register_error_handlers(app)
    instrument(app, settings.release_id)
    app.register_blueprint(users.bp)
    app.register_blueprint(ops.bp)
    return app
