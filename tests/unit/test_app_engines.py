"""The app's answers do not depend on its database: each engine quirk (NUL bytes, lone surrogates,
what a length counts, case and uniqueness, integers beyond a column, sequences after the seed) is
answered alike on SQLite, MariaDB and PostgreSQL, and never with a 500.

MariaDB and PostgreSQL are throwaway servers of this machine's packages (skipped without them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.seed import seed
from app.settings import Settings
from harness.config import environment
from harness.services.mariadb import MariaDBServer, mariadb_missing
from harness.services.postgres import PostgresServer, postgres_missing

TOKEN = {"Authorization": "Bearer s3cret"}
PASSWORD = "p@ss:w/rd 'x'"  # every character a URL must quote
ENGINES = ("sqlite", "mariadb", "postgres")
LOCAL = "a" * 64
#: 255 characters, the document's maxLength: a valid address (labels of at most 63)
LONGEST_EMAIL = f"{LOCAL}@{'b' * 63}.{'c' * 63}.{'d' * 62}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FlaskClient]]:
    """One freshly seeded app per engine this machine has (sqlite always)."""
    servers: list[MariaDBServer | PostgresServer] = []
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'users.db'}"}
    try:
        if mariadb_missing() is None:
            servers.append(MariaDBServer(database="users", user="users", password=PASSWORD).start())
            urls["mariadb"] = servers[-1].url()
        if postgres_missing() is None:
            servers.append(PostgresServer(database="users", user="users", password=PASSWORD).start())
            urls["postgres"] = servers[-1].url()
        made = {}
        for engine, url in urls.items():
            env = {"DATABASE_URL": url, "API_TOKEN": "s3cret", "RELEASE_ID": "r1"}
            seed(Settings.from_env(env))
            made[engine] = create_app(env).test_client()
        yield made
    finally:
        for server in servers:
            server.stop()


def ask(client: FlaskClient, method: str, path: str, body: object = None) -> Answer:
    """One request; a body is sent as raw JSON text (so lone surrogates travel as `\\ud800` escapes)."""
    data = None if body is None else json.dumps(body)
    resp = client.open(path, method=method, data=data, content_type="application/json", headers=TOKEN)
    return Answer(resp.status_code, resp.get_json(silent=True))


def everywhere(clients: dict[str, FlaskClient], method: str, path: str, body: object = None) -> Answer:
    """The one answer every engine gives (asserted alike, ids aside, and never a 5xx)."""
    answers = {engine: ask(client, method, path, body) for engine, client in clients.items()}
    without_ids = {engine: (a.status, _drop_ids(a.body)) for engine, a in answers.items()}
    assert len(set(map(repr, without_ids.values()))) == 1, f"the engines answer {method} {path} differently: " \
        f"{without_ids}"
    answer = next(iter(answers.values()))
    assert answer.status < 500, f"{method} {path}: {answer}"
    return answer


def _drop_ids(body: Any) -> Any:
    return {k: v for k, v in body.items() if k != "id"} if isinstance(body, dict) else body


def test_every_engine_of_this_machine_takes_part(clients: dict[str, FlaskClient]) -> None:
    absent = {engine: why for engine, why in (("mariadb", mariadb_missing()), ("postgres", postgres_missing())) if why}
    assert set(clients) == set(ENGINES) - set(absent)
    if absent:  # in CI every engine must take part: a missing one fails, never skips
        (pytest.fail if environment().ci else pytest.skip)(f"not compared on this machine: {absent}")


def test_the_first_created_user_follows_the_seed_on_every_engine(clients: dict[str, FlaskClient]) -> None:
    """PostgreSQL's sequence does not see the seed's explicit ids: the seed moves it on."""
    for engine, client in clients.items():
        created = ask(client, "POST", "/users", {"name": "first", "email": f"first-{engine}@example.com"})
        assert created.status == 201 and created.body["id"] == 3, f"{engine}: {created}"


def test_seeding_again_changes_nothing_and_keeps_the_sequence(clients: dict[str, FlaskClient]) -> None:
    for engine, client in clients.items():
        settings = client.application.config["SETTINGS"]
        assert seed(settings) == 0, engine
        created = ask(client, "POST", "/users", {"name": "after reseed", "email": f"reseed-{engine}@example.com"})
        assert created.status == 201 and created.body["id"] > 2, f"{engine}: {created}"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "a\x00b", "email": "nul@example.com"}, "name"),  # PostgreSQL cannot store NUL at all
    ({"name": "nul", "email": "n\x00l@example.com"}, "email"),
    ({"name": "a\ud800b", "email": "surrogate@example.com"}, "name"),  # no engine stores a lone surrogate
    ({"name": "lone", "email": "s\udfff@example.com"}, "email"),
    ({"name": "\U0001f600" * 81, "email": "emoji81@example.com"}, "name"),  # characters, not bytes, count
    ({"name": "long", "email": "a" + LONGEST_EMAIL}, "email"),
    ({"name": "\u3000 ", "email": "blank@example.com"}, "name"),
    ({"name": "nonascii", "email": "josé@example.com"}, "email"),  # the document's email format is ASCII
    ({"name": 10**30, "email": "big@example.com"}, "name"),
    ({"name": "x", "email": "x@example.com", "id": 2**63}, "id"),
])
def test_what_no_engine_stores_alike_is_a_422_naming_the_field(clients: dict[str, FlaskClient], body: dict[str, Any],
                                                                field: str) -> None:
    answer = everywhere(clients, "POST", "/users", body)
    assert answer.status == 422 and answer.body["field"] == field


@pytest.mark.parametrize(("name", "email"), [
    ("\U0001f600" * 80, "emoji80@example.com"),  # 320 bytes of UTF-8: VARCHAR(80) counts characters
    ("longest", LONGEST_EMAIL),
    ("e\u0301 and \u00e9", "normalisation@example.com"),  # kept as sent: no engine normalises Unicode
    ("quoted", '"a b"@example.com'),  # a quoted local part is an address of the format
    ("literal", "literal@[127.0.0.1]"),
])
def test_what_the_document_allows_reads_back_as_sent_everywhere(clients: dict[str, FlaskClient], name: str,
                                                               email: str) -> None:
    created = everywhere(clients, "POST", "/users", {"name": name, "email": email})
    assert created.status == 201 and created.body["name"] == name and created.body["email"] == email.lower()
    for engine, client in clients.items():
        stored = [user for user in ask(client, "GET", "/users").body if user["email"] == email.lower()]
        assert [user["name"] for user in stored] == [name], engine
        assert ask(client, "GET", f"/users/{stored[0]['id']}").body == stored[0], engine


def test_email_is_unique_whatever_its_case(clients: dict[str, FlaskClient]) -> None:
    first = everywhere(clients, "POST", "/users", {"name": "case", "email": "Case.Mixed@Example.COM"})
    assert first.status == 201 and first.body["email"] == "case.mixed@example.com"
    for spelling in ("case.mixed@example.com", "CASE.MIXED@EXAMPLE.COM"):
        again = everywhere(clients, "POST", "/users", {"name": "case again", "email": spelling})
        assert again.status == 409 and again.body["field"] == "email"


def test_surrounding_whitespace_of_a_name_is_not_stored(clients: dict[str, FlaskClient]) -> None:
    created = everywhere(clients, "POST", "/users", {"name": "\u00a0 spaced \u3000", "email": "spaced@example.com"})
    assert created.status == 201 and created.body["name"] == "spaced"


@pytest.mark.parametrize(("path", "status"), [
    ("/users/2147483647", 404), ("/users/2147483648", 404), ("/users/9223372036854775808", 404),
    ("/users/" + "9" * 40, 404), ("/users/" + "9" * 5000, 404), ("/users/-1", 404), ("/users/0", 404),
    ("/users/\u0661", 404), ("/users/+1", 200), ("/users/0001", 200),
])
def test_ids_no_column_holds_are_a_404(clients: dict[str, FlaskClient], path: str, status: int) -> None:
    answer = everywhere(clients, "GET", path)
    assert answer.status == status and (status == 200 or "error" in answer.body)


def test_a_rejected_write_leaves_every_database_as_it_was(clients: dict[str, FlaskClient]) -> None:
    before = {engine: ask(client, "GET", "/users").body for engine, client in clients.items()}
    everywhere(clients, "POST", "/users", {"name": "a\x00", "email": "left@example.com"})
    assert {engine: ask(client, "GET", "/users").body for engine, client in clients.items()} == before
