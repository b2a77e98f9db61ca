"""A local, CPU-only Ray head for the demo and the tests: free ports, its own temp folder, one CPU.

It is started with `ray start --head --block` in a process group of its own, so stopping it signals
exactly the processes started here (never `ray stop`, which stops every Ray on the machine). Ray binds
the machine's outward address whatever it is told; inside a private network namespace
(`unshare -n`) the only address is 127.0.0.1, which is how the tests run it.

This module starts the `ray` command line in a subprocess and never imports `ray` itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


class RayHeadError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ray_installed() -> bool:
    """The `ray` package can be imported here (looked up, not imported: only the adapter imports it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: a `ray` entry in sys.modules without a spec
        return False


class LocalRayHead:
    """`with LocalRayHead() as head:` … `head.address` is the job server's URL (the dashboard's)."""

    def __init__(self, *, num_cpus: int = 1, start_timeout: float = 90.0) -> None:
        self.num_cpus = num_cpus
        self.start_timeout = start_timeout
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        # Short: Ray puts unix sockets under it, and their paths are limited to ~107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ftray-", dir="/tmp"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.log_path = self.temp_dir / "head.log"

    def start(self) -> LocalRayHead:
        cmd = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            f"--port={self.gcs_port}",
            f"--dashboard-port={self.dashboard_port}",
            "--dashboard-host=127.0.0.1",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--include-dashboard=true",
            f"--ray-client-server-port={free_port()}",
            f"--temp-dir={self.temp_dir / 'r'}",
            "--disable-usage-stats",
        ]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                self.stop()
                raise RayHeadError(f"the Ray head exited with {self.proc.returncode}:\n{tail}")
            if self._answers():
                return self
            time.sleep(0.3)
        self.stop()
        raise RayHeadError(f"the Ray head did not answer at {self.address} within {self.start_timeout:.0f} s")

    @property
    def url(self) -> str:
        return self.address

    def _answers(self) -> bool:
        # The job server is up once the dashboard answers its version route and an agent is there.
        try:
            with urllib.request.urlopen(f"{self.address}/api/version", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """SIGKILL every process started here: the process group of `ray start` and all descendants
        (Ray runs each job's entrypoint in a session of its own, outside that group). A graceful
        SIGTERM makes the head drain for up to 30 s, too long for a test, and it keeps nothing."""
        proc = self.proc
        if proc is not None:
            pids = _descendants(proc.pid) | {proc.pid}
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            self.proc = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayHead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _descendants(root: int) -> set[int]:
    """Every live process below `root`, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: the ppid follows the last ")".
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
