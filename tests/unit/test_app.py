"""The reference app itself: 12-factor config, auth, validation, readiness, seed idempotence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateTable

from app import create_app
from app.db import users
from app.seed import seed
from app.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}", "API_TOKEN": "s3cret", "RELEASE_ID": "r1"}
    seed(Settings.from_env(env))
    return env


@pytest.fixture
def client(env: dict[str, str]) -> FlaskClient:
    return create_app(env).test_client()


def test_seed_twice_gives_the_same_data(env: dict[str, str], client: FlaskClient) -> None:
    before = client.get("/users").data
    assert seed(Settings.from_env(env)) == 0
    assert client.get("/users").data == before


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"Authorization": "Bearer nope"}, 403),
                                                 ({"Authorization": "Basic s3cret"}, 401)])
def test_writes_need_the_bearer_token(client: FlaskClient, headers: dict[str, str], status: int) -> None:
    assert client.post("/users", json={"name": "x", "email": "x@example.com"}, headers=headers).status_code == status


def test_reads_are_public(client: FlaskClient) -> None:
    assert client.get("/users").status_code == 200


def test_writes_are_open_without_a_configured_token(env: dict[str, str]) -> None:
    client = create_app({**env, "API_TOKEN": ""}).test_client()
    assert client.post("/users", json={"name": "x", "email": "x@example.com"}).status_code == 201


@pytest.mark.parametrize(("body", "field"), [({"email": "a@b.co"}, "name"), ({"name": "a", "email": 3}, "email"),
                                             ({"name": "a" * 81, "email": "a@b.co"}, "name")])
def test_invalid_input_names_the_field_and_writes_nothing(client: FlaskClient, body: dict, field: str) -> None:
    resp = client.post("/users", json=body, headers=TOKEN)
    assert resp.status_code == 422 and resp.json["field"] == field
    assert len(client.get("/users").json) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "a\ud800b", "email": "a@b.co"}, "name"),  # a lone surrogate: JSON's "\ud800" escape
    ({"name": "a", "email": "a\udfffb@c.co"}, "email"),
    ({"name": "a\x00b", "email": "a@b.co"}, "name"),
    ({"name": "a\x1fb", "email": "a@b.co"}, "name"),
    ({"name": "a\x85b", "email": "a@b.co"}, "name"),
    ({"name": "a", "email": "a\x7f@b.co"}, "email"),
])
def test_text_no_backend_stores_alike_is_422_naming_the_field(client: FlaskClient, body: dict, field: str) -> None:
    resp = client.post("/users", data=json.dumps(body), content_type="application/json", headers=TOKEN)
    assert resp.status_code == 422 and resp.json["field"] == field
    assert len(client.get("/users").json) == 2


def test_any_unicode_text_reads_back_as_written(client: FlaskClient) -> None:
    body = {"name": "Zoë 中文 \U0001f600", "email": "josé@example.com"}
    created = client.post("/users", json=body, headers=TOKEN)
    assert created.status_code == 201
    assert client.get(created.headers["Location"]).json == {"id": created.json["id"], **body}


def test_emails_differing_only_in_accents_are_two_users(client: FlaskClient) -> None:
    for email in ("jose@example.com", "josé@example.com"):
        assert client.post("/users", json={"name": "j", "email": email}, headers=TOKEN).status_code == 201


def test_users_table_is_utf8mb4_with_binary_comparison_on_mysql() -> None:
    ddl = str(CreateTable(users).compile(dialect=mysql.dialect()))
    assert ddl.rstrip().endswith(")CHARSET=utf8mb4 COLLATE utf8mb4_bin")


def test_an_id_beyond_any_backend_is_a_json_404(client: FlaskClient) -> None:
    resp = client.get("/users/99999999999999999999")
    assert resp.status_code == 404 and "not found" in resp.json["error"]


@pytest.mark.parametrize(("method", "path", "allow"), [("PUT", "/users", "GET, HEAD, OPTIONS, POST"),
                                                       ("DELETE", "/users/1", "GET, HEAD, OPTIONS"),
                                                       ("POST", "/healthz", "GET, HEAD, OPTIONS")])
def test_unsupported_method_is_a_json_405_with_allow(client: FlaskClient, method: str, path: str, allow: str) -> None:
    resp = client.open(path, method=method, headers=TOKEN)
    assert resp.status_code == 405 and resp.headers["Allow"] == allow
    assert resp.is_json and "error" in resp.json


def test_missing_token_is_a_401_with_a_bearer_challenge(client: FlaskClient) -> None:
    resp = client.post("/users", json={"name": "x", "email": "x@example.com"})
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"


def test_a_500_logs_its_traceback(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
    app = create_app(env)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    assert app.test_client().get("/boom").status_code == 500
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any("RuntimeError: kaboom" in line.get("exception", "") for line in lines)


def test_readiness_reports_an_unreachable_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "mysql://u:p@127.0.0.1:9/db"}  # port 9 on loopback: nothing listens
    resp = create_app(env).test_client().get("/readyz")
    assert resp.status_code == 503 and "database unreachable" in resp.json["reason"]


def test_data_routes_answer_503_while_the_database_is_unreachable() -> None:
    client = create_app({"DATABASE_URL": "mysql://u:p@127.0.0.1:9/db"}).test_client()
    for resp in (client.get("/users"), client.get("/users/1")):
        assert resp.status_code == 503 and resp.json == {"error": "database unavailable, retry shortly"}


def test_liveness_needs_no_database() -> None:
    assert create_app({"DATABASE_URL": "mysql://u:p@127.0.0.1:9/db"}).test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("url", ["postgres://x/y", "mysql://u:p@h:1", "::::"])
def test_bad_database_url_is_one_clear_error(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": url})


def test_bad_database_url_stops_gunicorn_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "python:app.gunicorn_conf", "app.wsgi:app"],
        cwd=ROOT, env={"DATABASE_URL": "postgres://nope", "PORT": "0", "HOST": "127.0.0.1", "PATH": "/usr/bin"},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert proc.returncode != 0
    assert "app: cannot start: DATABASE_URL scheme 'postgres' is not supported" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_openapi_describes_every_route(client: FlaskClient) -> None:
    documented = set(client.get("/openapi.json").json["paths"])
    routes = {rule.rule.replace("<int:user_id>", "{id}") for rule in client.application.url_map.iter_rules()
              if rule.endpoint != "static"}
    assert routes == documented


def test_each_request_is_one_json_log_line(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
    create_app(env).test_client().get("/users")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {"method": "GET", "path": "/users", "status": 200, "release": "r1"}.items() <= lines[-1].items()
