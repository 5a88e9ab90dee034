"""WSGI entry point for gunicorn: `gunicorn --config python:app.gunicorn_conf app.wsgi:app`."""

from __future__ import annotations

import sys

from app.factory import create_app
from app.settings import SettingsError

try:
    app = create_app()
except SettingsError as err:
    # One clear line for the operator instead of a traceback; exit code 4 tells gunicorn
    # to stop the whole server rather than respawn the worker forever.
    print(f"app: cannot start: {err}", file=sys.stderr, flush=True)
    raise SystemExit(4) from None
