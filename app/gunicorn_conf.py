"""Gunicorn settings, the same in every stage; only HOST/PORT/WEB_CONCURRENCY vary by env."""

from __future__ import annotations

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# Disposability (12-factor IX): on SIGTERM finish in-flight requests within this grace period.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "20"))
timeout = 30
# A read-only root filesystem has no writable default heartbeat dir; /tmp is a tmpfs there.
worker_tmp_dir = os.environ.get("WORKER_TMP_DIR", "/tmp")
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
preload_app = True
# No control socket: nothing here needs `gunicornc`, and its default path is under $HOME, which a
# read-only root filesystem does not have writable.
control_socket_disable = True
