"""Named leases in the database: one worker process at a time does a singleton task."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import Lease
from storage.types import utcnow


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
    with db.session() as s:
        s.execute(update(Lease).where(Lease.name == name, Lease.owner == owner).values(expires_at=utcnow() - timedelta(seconds=1)))
