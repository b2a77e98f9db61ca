"""Which function answers which `/ft` verb. Verb modules register here; ft.py only reads it, so the
verbs never import the command listener (no cycle) and help lists exactly the verbs that work."""

from __future__ import annotations

from collections.abc import Callable

Handler = Callable[..., None]
HANDLERS: dict[str, Handler] = {}


def handles(*verbs: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for v in verbs:
            HANDLERS[v] = fn
        return fn

    return deco


def registered() -> frozenset[str]:
    return frozenset(HANDLERS)
