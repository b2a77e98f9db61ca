"""Named leases in the database (one process at a time does a singleton task), and who holds them."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import EvalAnswer, EvalRun, Job, Lease, OutboxMessage
from storage.types import utcnow

# Owner columns are String(64). `:pid:hex` takes at most 1 + 10 + 1 + 6 characters.
OWNER_MAX = 64
HOST_MAX = OWNER_MAX - 18


def host_tag(hostname: str | None = None) -> str:
    """This host as it appears in owner ids, at most HOST_MAX characters and without ':'.

    A long name (a Kubernetes pod name is up to 63 characters) keeps its head and gets a hash of the
    whole name: pods of one deployment share the head and differ only at the end, so cutting the
    name alone would let one pod take another's claims for its own.
    """
    host = (hostname if hostname is not None else socket.gethostname()).replace(":", "_") or "host"
    if len(host) <= HOST_MAX:
        return host
    digest = hashlib.sha256(host.encode()).hexdigest()[:12]
    return f"{host[: HOST_MAX - 13]}~{digest}"


def worker_id() -> str:
    """`host:pid:hex`, bounded to OWNER_MAX: release_dead_local_claims reads the host and pid back."""
    return f"{host_tag()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def hold_lease(db: Database, name: str, owner: str, ttl: timedelta) -> bool:
    """Take or renew the lease `name` for `owner`. True when `owner` holds it now."""
    now = utcnow()
    with db.session() as s:
        taken = s.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.owner == owner, Lease.expires_at < now))
            .values(owner=owner, expires_at=now + ttl)
        ).rowcount
        if taken:
            return True
        exists = s.get(Lease, name) is not None
    if exists:
        return False
    try:
        with db.session() as s:
            s.add(Lease(name=name, owner=owner, expires_at=now + ttl))
        return True
    except IntegrityError:
        return False  # another worker created it a moment ago


def release_lease(db: Database, name: str, owner: str) -> None:
    """Give the lease up. The row goes: one-off leases (one per Slack delivery) must not pile up."""
    with db.session() as s:
        s.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_alive(pid: int) -> bool:
    """Whether a process of this host with that id is running (an owner id's pid read back)."""
    return _alive(pid)


def release_dead_local_claims(db: Database) -> int:
    """Free the jobs and messages claimed by processes of this host that are gone (a crash, a kill).

    Claims of other hosts expire on their own; this only spares a restarted worker from waiting for
    its predecessor's claims to run out. Owner ids are `host:pid:…`.
    """
    prefix = f"{host_tag()}:"
    with db.session() as s:
        owners = set(s.scalars(select(Job.lease_owner).where(Job.lease_owner.startswith(prefix)).distinct()))
        owners |= set(s.scalars(select(OutboxMessage.claimed_by).where(OutboxMessage.claimed_by.startswith(prefix)).distinct()))
        owners |= set(s.scalars(select(EvalRun.lease_owner).where(EvalRun.lease_owner.startswith(prefix)).distinct()))
        owners |= set(s.scalars(select(EvalAnswer.claimed_by).where(EvalAnswer.claimed_by.startswith(prefix)).distinct()))
        dead = [o for o in owners if o and o.split(":")[1].isdigit() and not _alive(int(o.split(":")[1]))]
        if not dead:
            return 0
        n = s.execute(update(Job).where(Job.lease_owner.in_(dead)).values(lease_owner=None, lease_until=None)).rowcount
        n += s.execute(update(OutboxMessage).where(OutboxMessage.claimed_by.in_(dead)).values(claimed_by=None, claimed_until=None)).rowcount
        n += s.execute(update(EvalRun).where(EvalRun.lease_owner.in_(dead)).values(lease_owner=None, lease_until=None)).rowcount
        # An answer claimed by a dead worker was perhaps asked, its answer lost with the process: it is asked again.
        n += s.execute(
            update(EvalAnswer).where(EvalAnswer.claimed_by.in_(dead), EvalAnswer.status == "claimed").values(status="pending", claimed_by=None, claimed_until=None)
        ).rowcount
    return n
