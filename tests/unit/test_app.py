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
from app.db import connect_args, users
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
                                             ({"name": "a" * 81, "email": "a@b.co"}, "name"),
                                             ({"name": " " + "a" * 80, "email": "a@b.co"}, "name"),  # raw length
                                             ({"name": " \u3000 ", "email": "a@b.co"}, "name"),
                                             ({"name": "x", "email": "x@y.z", "admin": True}, "admin")])
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
    body = {"name": "Zoë 中文 \U0001f600", "email": "zoe@example.com"}
    created = client.post("/users", json=body, headers=TOKEN)
    assert created.status_code == 201
    assert client.get(created.headers["Location"]).json == {"id": created.json["id"], **body}


@pytest.mark.parametrize("email", ["m@s6xa.pq7f4ibz.org*",  # what schemathesis found accepted (a `*` in a domain)
                                   "josé@example.com", "a@b..com", ".a@b.com", "a b@c.com", "a@-b.com",
                                   "a" * 65 + "@b.co"])
def test_an_address_outside_the_documents_email_format_is_422(client: FlaskClient, email: str) -> None:
    resp = client.post("/users", json={"name": "j", "email": email}, headers=TOKEN)
    assert resp.status_code == 422 and resp.json["field"] == "email"


@pytest.mark.parametrize("email", ['"a b"@example.com', "x@[127.0.0.1]", "a+tag@sub.example.com", "x@localhost"])
def test_every_address_of_the_email_format_is_taken(client: FlaskClient, email: str) -> None:
    resp = client.post("/users", json={"name": "j", "email": email}, headers=TOKEN)
    assert resp.status_code == 201 and resp.json["email"] == email


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


@pytest.mark.parametrize("url", ["oracle://x/y", "mysql://u:p@h:1", "::::", "postgresql://u:secret@h:port/db",
                                 "postgres://u:secret@h", "postgresql://u:secret@h:70000/db"])
def test_bad_database_url_is_one_clear_error_without_the_password(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL") as raised:
        Settings.from_env({"DATABASE_URL": url})
    assert "secret" not in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("url", ["postgresql://u:p@h:5432/db", "postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"])
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    assert Settings.from_env({"DATABASE_URL": url}).database_url.drivername == "postgresql+psycopg"


def test_each_driver_gets_its_own_timeouts_and_utf8() -> None:
    assert connect_args("sqlite") == {"timeout": 15}
    assert connect_args("mysql+pymysql")["charset"] == "utf8mb4" and connect_args("mysql+pymysql")["read_timeout"] == 10
    postgres = connect_args("postgresql+psycopg")
    assert postgres["connect_timeout"] == 3 and postgres["options"] == "-c statement_timeout=10000"
    assert postgres["client_encoding"] == "utf8"


def test_bad_database_url_stops_gunicorn_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "python:app.gunicorn_conf", "app.wsgi:app"],
        cwd=ROOT, env={"DATABASE_URL": "oracle://nope/db", "PORT": "0", "HOST": "127.0.0.1", "PATH": "/usr/bin"},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert proc.returncode != 0
    assert "app: cannot start: DATABASE_URL scheme 'oracle' is not supported" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_openapi_describes_every_route(client: FlaskClient) -> None:
    documented = set(client.get("/openapi.json").json["paths"])
    routes = {rule.rule.replace("<id:user_id>", "{id}") for rule in client.application.url_map.iter_rules()
              if rule.endpoint != "static"}
    assert routes == documented


def test_each_request_is_one_json_log_line(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
    create_app(env).test_client().get("/users")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {"method": "GET", "path": "/users", "status": 200, "release": "r1"}.items() <= lines[-1].items()


@pytest.mark.parametrize(("data", "content_type", "status"), [
    ('{"name": "a", "email": "a@b.co"}', "text/plain", 415),
    ('{"name": "a", "email": "a@b.co"}', "application/x-www-form-urlencoded", 415),
    ('{"name": "a", "email": "a@b.co"}', "application/vnd.api+json", 415),  # the document lists application/json only
    ("NaN", "application/json", 400), ('{"name": Infinity}', "application/json", 400),
    ("[" * 20000, "application/json", 400),  # deeper than Python's parser goes: still a 400, not a 500
    ('{"n": ' + "1" * 5000 + "}", "application/json", 400),
    ('"' + "a" * 70000 + '"', "application/json", 413),
])
def test_a_body_that_is_not_a_json_object_of_the_document_is_a_4xx(client: FlaskClient, data: str, content_type: str,
                                                                   status: int) -> None:
    resp = client.post("/users", data=data, content_type=content_type, headers=TOKEN)
    assert resp.status_code == status and "error" in resp.json


def test_every_status_the_app_answers_a_write_with_is_documented(client: FlaskClient) -> None:
    documented = set(client.get("/openapi.json").json["paths"]["/users"]["post"]["responses"])
    assert {"201", "400", "401", "403", "409", "413", "415", "422", "503"} <= documented


def test_the_names_pattern_calls_whitespace_exactly_what_strip_removes(client: FlaskClient) -> None:
    """A name the document allows is never blank once stripped, and no name it forbids as blank is
    stripped to something: the pattern's whitespace class is Python's, control characters aside."""
    validator = client.application.extensions["new_user_validator"].validator
    control = {*range(0x20), *range(0x7F, 0xA0)}
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF or code in control:
            continue
        allowed = validator.is_valid({"name": chr(code), "email": "a@b.co"})
        assert allowed is not chr(code).isspace(), f"U+{code:04X}"


@pytest.mark.parametrize("depth", [10, 900])
def test_a_deeply_nested_value_is_a_422_naming_its_field(client: FlaskClient, depth: int) -> None:
    """The validator's recursion counts against Python's stack: a deep value must not reach it (a 500)."""
    data = '{"email": "a@b.co", "name": ' + "[" * depth + "]" * depth + "}"
    resp = client.post("/users", data=data, content_type="application/json", headers=TOKEN)
    assert resp.status_code == 422 and resp.json["field"] == "name"
