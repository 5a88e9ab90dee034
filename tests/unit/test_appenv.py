"""The app's environment is built from `[app.env]` templates, one place for every stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.appenv import DatabaseEndpoint, app_env, release_variables
from harness.config import load_settings
from harness.errors import ConfigError
from harness.services.engine import endpoint, engine_named

ROOT = Path(__file__).resolve().parents[2]
GUESTBOOK = load_settings(ROOT / "examples" / "guestbook" / "stageproof.toml", env={})
REFERENCE = load_settings(ROOT / "stageproof.toml", env={})


def test_a_team_s_own_variable_names_are_filled_in() -> None:
    db = endpoint(engine_named("mysql"), GUESTBOOK.database, "stageproof-ab12-db")
    env = app_env(GUESTBOOK, stage="docker", release="r7", db=db, port=5000, host="0.0.0.0")
    assert env == {"MYSQL_HOST": "stageproof-ab12-db", "MYSQL_PORT": "3306", "MYSQL_USER": "guestbook",
                   "MYSQL_PASSWORD": "guestbook-secret", "MYSQL_DB": "guestbook", "APP_VERSION": "r7"}


def test_the_database_url_is_escaped() -> None:
    settings = REFERENCE.model_copy(update={"database": REFERENCE.database.model_copy(
        update={"password": "p@ss/w:rd"})})
    env = app_env(settings, stage="docker", release="r", db=endpoint(engine_named("mysql"), settings.database, "db"),
                  port=8000, host="0.0.0.0")
    assert env["DATABASE_URL"] == "mysql://users:p%40ss%2Fw%3Ard@db:3306/users"


def test_run_only_keeps_what_only_a_run_knows() -> None:
    assert app_env(REFERENCE, stage="k8s", release="r9", run_only=True) == {
        "API_TOKEN": "stageproof-contract-token", "RELEASE_ID": "r9"}
    assert app_env(GUESTBOOK, stage="compose", release="r9", run_only=True) == {"APP_VERSION": "r9"}
    assert release_variables(GUESTBOOK) == ["APP_VERSION"]


def test_a_placeholder_the_stage_cannot_fill_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"app\.env\.MYSQL_HOST: \$\{db\.host\} has no value at stage local-sqlite"):
        app_env(GUESTBOOK, stage="local-sqlite", release="r", db=DatabaseEndpoint.sqlite("/tmp/x.db"), port=1)
