"""The Ray tests (tests/ray/) inside a private network namespace whose only interface is loopback.

Ray binds the machine's outward address, and tests may only talk to loopback: in a namespace of its
own (`unshare -n`, loopback brought up) Ray's node address is 127.0.0.1. The head, the bot and the
Slack stand-in all run in there, on SQLite (PostgreSQL is outside). This test runs that pytest as a
subprocess, shows each of its results, and fails when any of them does.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _why_not() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "the ray extra is not installed (pip install -e '.[dev,ray]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) is missing"
    if os.geteuid() != 0:
        return "a private network namespace needs root (unshare -n)"
    return None


@pytest.mark.timeout(600)
def test_ray_suite_in_a_private_network_namespace(tmp_path) -> None:  # noqa: ANN001
    why = _why_not()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Ray tests, but {why}")
        pytest.skip(why)
    junit = tmp_path / "ray.xml"
    inner = f"ip link set lo up && exec {sys.executable} -m pytest tests/ray -p no:cacheprovider -rA -q --show-capture=no --junitxml={junit}"
    env = {**os.environ, "FTBOT_RAY_NETNS": "1"}
    proc = subprocess.run(["unshare", "-n", "sh", "-c", inner], cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    print(proc.stdout[-6000:])
    print(proc.stderr[-2000:], file=sys.stderr)
    assert proc.returncode == 0, f"the Ray tests failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
    summary = junit.read_text()
    assert 'failures="0"' in summary and 'errors="0"' in summary and 'skipped="0"' in summary, summary[:500]
    assert "tests=\"0\"" not in summary
