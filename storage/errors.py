"""What a database error was about, the same way on SQLite and PostgreSQL.

Code that treats an IntegrityError as an expected race must say which constraint it expects;
`violated_constraint` names the one that was hit. PostgreSQL reports the name itself; SQLite reports
only "UNIQUE constraint failed: table.col, …", so the name is looked up from the models' metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage.models import Base

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<cols>[\w.]+(?:, [\w.]+)*)")


def _sqlite_unique_name(message: str) -> str | None:
    m = _SQLITE_UNIQUE.search(message)
    if not m:
        return None
    pairs = [c.split(".", 1) for c in m.group("cols").split(", ")]
    tables = {t for t, _ in pairs}
    if len(tables) != 1:
        return None
    table = Base.metadata.tables.get(tables.pop())
    if table is None:
        return None
    cols = [c for _, c in pairs]
    for item in [*table.constraints, *table.indexes]:
        if isinstance(item, UniqueConstraint | Index) and (not isinstance(item, Index) or item.unique):
            if [c.name for c in item.columns] == cols:
                # Unnamed (a column declared unique=True): PostgreSQL's own "<table>_<columns>_key".
                return str(item.name) if item.name else f"{table.name}_{'_'.join(cols)}_key"
    if len(cols) == 1 and cols[0] in table.c and table.c[cols[0]].unique:
        return f"{table.name}_{cols[0]}_key"
    return None


def violated_constraint(exc: BaseException) -> str | None:
    """The name of the unique (or other) constraint an IntegrityError broke; None when unknown."""
    if not isinstance(exc, IntegrityError):
        return None
    orig = exc.orig
    diag = getattr(orig, "diag", None)  # psycopg (PostgreSQL)
    if diag is not None and getattr(diag, "constraint_name", None):
        return str(diag.constraint_name)
    return _sqlite_unique_name(str(orig))


def is_race_on(exc: BaseException, constraints: Iterable[str]) -> bool:
    """True only for an IntegrityError on one of these named constraints."""
    name = violated_constraint(exc)
    return name is not None and name in set(constraints)


def short_reason(exc: BaseException, limit: int = 300) -> str:
    """A one-line reason for logs and /healthz: the error's kind, the constraint when there is one, and
    the driver's first line. Never the statement or its parameters (they hold provider text)."""
    kind = type(exc).__name__
    name = violated_constraint(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        first = (str(exc.orig).strip().splitlines() or [""])[0]
        kind = f"{kind} ({type(exc.orig).__name__})"
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{kind} on {name}: {first}" if name else f"{kind}: {first}"
    return text[:limit]
