"""Helpers the benchmarks that drive a sandbox and a database share: a free port, the sandboxes'
control routes, a small training file, and a fresh database (SQLite file or a new PostgreSQL one)."""

from __future__ import annotations

import json
import os
import socket
import urllib.request


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ctl(base: str, path: str, body: dict | None = None, method: str = "POST") -> dict:
    data = json.dumps(body or {}).encode() if method != "GET" else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _jsonl(n: int) -> bytes:
    return "\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}) for i in range(n)).encode()


def _db_url(kind: str, tmp: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/{name}.db"
    from sqlalchemy import create_engine, text

    admin = os.environ.get("FTBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test").replace("postgresql://", "postgresql+psycopg://")
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name}"))
    eng.dispose()
    return admin.rsplit("/", 1)[0] + f"/{name}"
