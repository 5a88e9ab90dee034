"""Guestbook: a tiny Flask + MySQL message board.

Usage:
  app.py [--debug]
  app.py (-h | --help)

Options:
  -h --help  Show this screen.
  --debug    Run Flask in debug mode (never in production).

Configuration comes from the environment:
  MYSQL_HOST, MYSQL_PORT (3306), MYSQL_USER, MYSQL_PASSWORD, MYSQL_DB,
  APP_VERSION (shown in the page footer, default "dev").
The server always listens on 0.0.0.0:5000.
"""

import contextlib
import logging
import os
import signal
import sys

import pymysql
from docopt import docopt
from flask import Flask, g, jsonify, redirect, render_template, request, url_for

MAX_LENGTH = 500
PAGE_SIZE = 100

app = Flask(__name__)
log = logging.getLogger("guestbook")


@app.context_processor
def inject_version():
    return {"app_version": os.environ.get("APP_VERSION", "dev")}


def get_db():
    """One connection per request, opened on first use and closed at teardown.

    Nothing is pooled, so the app picks up a restarted database on the next request.
    """
    if "db" not in g:
        g.db = pymysql.connect(
            host=os.environ.get("MYSQL_HOST", "localhost"),
            port=int(os.environ.get("MYSQL_PORT", "3306")),
            user=os.environ.get("MYSQL_USER"),
            password=os.environ.get("MYSQL_PASSWORD", ""),
            database=os.environ.get("MYSQL_DB"),
            charset="utf8mb4",
            cursorclass=pymysql.cursors.DictCursor,
            connect_timeout=3,
            read_timeout=10,
            write_timeout=10,
            autocommit=True,
        )
    return g.db


@app.teardown_appcontext
def close_db(exc):
    db = g.pop("db", None)
    if db is not None:
        with contextlib.suppress(Exception):  # the server may already be gone
            db.close()


def query(sql, args=None):
    with get_db().cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


@app.route("/")
def index():
    messages = query("SELECT id, text, created_at FROM messages ORDER BY id DESC LIMIT %s", (PAGE_SIZE,))
    return render_template("index.html", messages=messages)


@app.route("/messages", methods=["POST"])
def add_message():
    text = request.form.get("text", "").strip()
    if not text:
        return render_template("error.html", title="Bad request", message="The message must not be empty."), 400
    if len(text) > MAX_LENGTH:
        return render_template(
            "error.html", title="Bad request", message=f"The message is longer than {MAX_LENGTH} characters."
        ), 400
    with get_db().cursor() as cur:
        cur.execute("INSERT INTO messages (text) VALUES (%s)", (text,))
    return redirect(url_for("index"), code=303)


@app.route("/messages/<int:message_id>")
def show_message(message_id):
    rows = query("SELECT id, text, created_at FROM messages WHERE id = %s", (message_id,))
    if not rows:
        return render_template("error.html", title="Not found", message=f"There is no message {message_id}."), 404
    return render_template("message.html", message=rows[0])


@app.route("/api/messages")
def api_messages():
    rows = query("SELECT id, text FROM messages ORDER BY id DESC")
    return jsonify([{"id": r["id"], "text": r["text"]} for r in rows])


@app.errorhandler(404)
def not_found(e):
    return render_template("error.html", title="Not found", message="The page you asked for does not exist."), 404


@app.errorhandler(pymysql.MySQLError)
def database_error(e):
    log.warning("database error: %s", e)
    return render_template(
        "error.html", title="Service unavailable", message="database unavailable, please try again later."
    ), 503


def _terminate(signum, frame):
    # As PID 1 in a container, SIGTERM would otherwise be ignored.
    sys.exit(0)


if __name__ == "__main__":
    args = docopt(__doc__)
    logging.basicConfig(level=logging.DEBUG if args["--debug"] else logging.INFO)
    signal.signal(signal.SIGTERM, _terminate)
    app.run(host="0.0.0.0", port=5000, debug=args["--debug"], threaded=True)
