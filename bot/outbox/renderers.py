"""What an outbox row says is sent, when it is drawn at send time: renderers, by name.

A row carries either the message itself (`payload` is the message: text, blocks) or the name of a
renderer and its plain data: `payload["render"]` names it, else a renderer registered under the
row's kind does (`card`, `card_update`, `chart`, `eval_csv`: rows written before renderers had
names keep being read the same way). Drawing at send time means a late message shows the latest
state (a card), and what is costly to draw (a chart, a CSV) is drawn once, by the sender.

Features register their renderers at start-up (bot/wiring.py): a new kind of message is one
renderer, and no edit of the sender. A renderer returns a message (a dict with `text` and maybe
`blocks`) or a File; a file renderer also names the file without drawing it, so an interrupted
upload can be looked for in the channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.db import Database

RENDER = "render"  # the payload key naming a row's renderer


@dataclass(frozen=True)
class Row:
    """What a renderer sees of the row it draws: plain data, and the database to read it from."""

    db: Database
    key: str
    kind: str
    job_id: int | None
    subscription_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class File:
    content: bytes | str
    filename: str
    title: str


class NotReady(Exception):
    """Cannot be drawn yet (its job row is not there): the sender tries again shortly."""


@dataclass(frozen=True)
class Renderer:
    render: Callable[[Row], dict[str, Any] | File]
    # A file renderer: the file's name, known without drawing it (None: the renderer draws a message).
    file_name: Callable[[Row], str] | None = None


_renderers: dict[str, Renderer] = {}


def register(name: str, render: Callable[[Row], dict[str, Any] | File], *, file_name: Callable[[Row], str] | None = None) -> None:
    """Register (or replace) the renderer called `name`."""
    _renderers[name] = Renderer(render, file_name)


def renderer_for(kind: str, payload: dict[str, Any], *, required: bool = False) -> Renderer | None:
    """The row's renderer, or None when its payload is the message. A row naming a renderer nobody
    registered (or, `required`, a kind that is always drawn) is an error, not a silent empty message."""
    name = payload.get(RENDER)
    found = _renderers.get(str(name) if name is not None else kind)
    if found is None and (name is not None or required):
        raise LookupError(f"no renderer {name or kind!r} is registered (bot/wiring.py registers them at start-up)")
    return found


def registered() -> list[str]:
    return sorted(_renderers)
