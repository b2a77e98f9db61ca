"""A DATABASE_URL that does not work at start-up: one line naming it, exit status 2, no traceback and
no password, for every process, run as the installed `ftbot` console script."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BOT_TOKEN, PG_ENV, SIGNING_SECRET

PASSWORD = "s3cret-pw-do-not-echo"
FTBOT = shutil.which("ftbot", path=str(Path(sys.executable).parent)) or shutil.which("ftbot")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _missing_database_url() -> str:
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(reason=f"needs a PostgreSQL server ({PG_ENV})")
    url = make_url(admin.replace("postgres://", "postgresql://", 1))
    return url.set(database="ftbot_no_such_db", password=PASSWORD).render_as_string(hide_password=False)


CASES = {
    "refused": (lambda tmp: f"postgresql://postgres:{PASSWORD}@127.0.0.1:{_closed_port()}/ftbot", "connection refused"),
    "no-database": (lambda tmp: _missing_database_url(), 'database "ftbot_no_such_db" does not exist'),
    "mysql": (lambda tmp: f"mysql://root:{PASSWORD}@127.0.0.1/ftbot", "names mysql, which ftbot does not run on"),
    "sqlite-no-folder": (lambda tmp: f"sqlite:///{tmp / 'missing' / 'ftbot.db'}", "missing for the SQLite file does not exist"),
    "sqlite-no-file": (lambda tmp: "sqlite:///", "names no SQLite file"),
}
PROCESSES = {
    "serve": ["serve", "--no-worker"],
    "worker": ["worker"],
    "socket": ["socket"],
    "db upgrade": ["db", "upgrade"],
}


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert FTBOT, "the ftbot console script is not installed (pip install -e .)"
    return subprocess.run([FTBOT, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("process", list(PROCESSES))
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_database_gets_one_line_and_status_2(case: str, process: str, tmp_path: Path) -> None:
    make_url_for, expected = CASES[case]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DATABASE_URL": make_url_for(tmp_path),
        # Everything else a process needs, so the database is what stops it.
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": "xapp-test-app-token",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never reached
        "FTBOT_SANDBOX": "1",
        "PORT": str(_closed_port()),
    }
    out = _run(["--log-level", "WARNING", *PROCESSES[process]], env, tmp_path)
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr[-3000:]
    assert lines[0].startswith("ftbot: DATABASE_URL") and expected in lines[0], lines[0]
    assert "Traceback" not in out.stderr + out.stdout
    assert PASSWORD not in out.stderr + out.stdout


def test_the_demo_ignores_database_url_and_says_when_its_folder_cannot_be(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATABASE_URL": f"mysql://root:{PASSWORD}@127.0.0.1/x"}
    out = _run(["demo", "--out", str(tmp_path / "a-file" / "demo")], env, tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--out" in lines[0] and "cannot create the folder" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and PASSWORD not in out.stderr + out.stdout
