"""Worker ids fit the owner columns whatever the host name (a Kubernetes pod name runs to 63
characters), and a restarted worker still frees the claims of a dead process of the same host."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

import storage.leases as leases
from bot.outbox.sender import Sender
from bot.worker.poller import Poller
from storage.leases import OWNER_MAX, host_tag, release_dead_local_claims, worker_id
from storage.models import Job, OutboxMessage
from storage.types import utcnow
from tests.conftest import wait_for
from tests.worker.test_job_notifications import CH, _start

POD = "ftbot-worker-deployment-production-7d9f8b6c5d-x4k2q.eu1"  # 55 characters
SIBLING = POD.replace("x4k2q", "m8n3z")  # another pod of the same deployment


@pytest.fixture
def on_pod(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(socket, "gethostname", lambda: POD)
    return POD


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_ids_are_bounded_and_stable_per_host(on_pod) -> None:  # noqa: ANN001
    assert len(POD) == 55
    ids = {worker_id() for _ in range(20)}
    assert len(ids) == 20 and all(len(i) <= OWNER_MAX for i in ids)
    assert all(i.startswith(host_tag() + ":") for i in ids)
    assert host_tag(POD) != host_tag(SIBLING)  # pods differing at the end of the name stay apart
    assert host_tag("short-host") == "short-host"
    assert len(host_tag("h" * 300)) <= OWNER_MAX - 18


def test_a_worker_on_a_long_named_pod_polls_and_sends(db_url, make_services, slack, on_pod) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    job_id = _start(svc).job.id
    me = worker_id()
    poller, sender = Poller(svc, me), Sender(svc, me)
    stats = poller.cycle()
    assert stats.claimed == 1 and stats.polled == 1 and not stats.errors
    assert sender.send_pending().failed == 0
    wait_for(lambda: any(job_id in m.get("text", "") for m in slack.channel_messages(CH)))


def test_restarted_worker_frees_a_dead_pids_claims_on_a_long_named_host(db_url, make_services, slack, on_pod, monkeypatch) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    mine, theirs = _start(svc, key="mine").job.id, _start(svc, key="theirs").job.id
    dead = _dead_pid()
    monkeypatch.setattr(leases.os, "getpid", lambda: dead)
    dead_here = worker_id()  # what the crashed worker on this pod called itself
    monkeypatch.undo()
    monkeypatch.setattr(socket, "gethostname", lambda: SIBLING)
    dead_there = worker_id()  # a worker of the sibling pod: its pid means nothing here
    monkeypatch.setattr(socket, "gethostname", lambda: POD)
    assert len(dead_here) <= OWNER_MAX and len(dead_there) <= OWNER_MAX
    later = utcnow() + timedelta(hours=1)
    with svc.db.session() as s:
        for job in s.scalars(select(Job)):
            job.lease_owner, job.lease_until = (dead_here if job.provider_job_id == mine else dead_there), later
        for m in s.scalars(select(OutboxMessage)):
            m.claimed_by, m.claimed_until = dead_here, later
    assert release_dead_local_claims(svc.db) >= 3  # the job and both cards
    with svc.db.session() as s:
        owners = {j.provider_job_id: j.lease_owner for j in s.scalars(select(Job))}
        claimed = [m.claimed_by for m in s.scalars(select(OutboxMessage))]
    assert owners == {mine: None, theirs: dead_there} and claimed == [None, None]
    stats = Poller(svc, worker_id()).cycle()
    assert stats.claimed == 1  # the freed job is polled at once; the sibling's waits for its lease
