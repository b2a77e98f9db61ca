"""Slack `table` blocks within Slack's limits, for any list a message shows. Pure.

The JSON shape is slack_sdk's `TableBlock`: `rows` is a list of rows, each a list of cells; a cell is
`{"type": "raw_text", "text": …}` (shown verbatim: never parsed as mrkdwn, so user or provider text
can neither mention nor link and is not escaped, since an entity would show as `&amp;`) or a
`rich_text` block (used here for mentions and inline code). The first row is the header.

Slack's limits: at most 100 rows (header included) and 20 cells a row, `column_settings` at most 20
items, a raw_text cell at least one character, one table per message (Slack puts it at the bottom).
`table_block` refuses data over them; `table_blocks` cuts the rows to fit and says so in a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_ROWS = 100  # header included
MAX_BODY_ROWS = MAX_ROWS - 1
MAX_COLUMNS = 20
MAX_CELL = 500  # ours, not Slack's: a cell longer than this is unreadable in a table anyway
EMPTY = "–"  # raw_text needs at least one character

Cell = str | dict[str, Any]


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def raw(text: object) -> dict[str, Any]:
    """A plain cell; empty text becomes a dash, long text is cut."""
    s = " ".join(str(text).split()) if text is not None else ""
    return {"type": "raw_text", "text": _clip(s, MAX_CELL) or EMPTY}


def _rich(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": list(elements)}]}


def user_cell(user_id: str | None, *, otherwise: str = EMPTY) -> dict[str, Any]:
    """A mention of a Slack user (rendered as their name), or `otherwise` as plain text."""
    if not user_id:
        return raw(otherwise)
    return _rich({"type": "user", "user_id": user_id})


def code_cell(text: object) -> dict[str, Any]:
    """An id or a name in inline code (copyable); literal text, like raw_text."""
    s = _clip(str(text), MAX_CELL) if text is not None and str(text) else ""
    if not s:
        return raw(EMPTY)
    return _rich({"type": "text", "text": s, "style": {"code": True}})


def emoji_cell(emoji: str, text: object) -> dict[str, Any]:
    """An emoji (its name, with or without colons) then plain text, e.g. a status."""
    return _rich({"type": "emoji", "name": emoji.strip(":")}, {"type": "text", "text": " " + (_clip(str(text), MAX_CELL) or EMPTY)})


def _cell(c: Cell) -> dict[str, Any]:
    return c if isinstance(c, dict) else raw(c)


def table_block(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    align: Sequence[str | None] = (),
    wrapped: Sequence[int] = (),
    block_id: str | None = None,
) -> dict[str, Any]:
    """One `table` block: `header` then `rows` (each cell a str, or a cell dict from raw/user_cell/code_cell).

    `align`: per column "left" / "center" / "right" (None: left); `wrapped`: indexes of columns whose
    text wraps. Raises ValueError over Slack's limits (more than 99 rows, 20 columns, a row of
    another width than the header): cut with `table_blocks` instead.
    """
    width = len(header)
    if not 1 <= width <= MAX_COLUMNS:
        raise ValueError(f"a table has 1 to {MAX_COLUMNS} columns, not {width}")
    if len(rows) > MAX_BODY_ROWS:
        raise ValueError(f"a table has at most {MAX_BODY_ROWS} rows under its header, not {len(rows)}")
    for r in rows:
        if len(r) != width:
            raise ValueError(f"a row has {len(r)} cells, the header {width}")
    block: dict[str, Any] = {"type": "table", "rows": [[raw(h) for h in header]] + [[_cell(c) for c in r] for r in rows]}
    if align or wrapped:
        settings: list[dict[str, Any]] = []
        for i in range(width):
            s: dict[str, Any] = {}
            if i < len(align) and align[i]:
                s["align"] = align[i]
            if i in wrapped:
                s["is_wrapped"] = True
            settings.append(s)
        while settings and not settings[-1]:
            settings.pop()
        block["column_settings"] = settings
    if block_id:
        block["block_id"] = block_id
    return block


def table_blocks(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    more: str = "{n} more rows not shown",
    total: int | None = None,
    **kw: Any,
) -> list[dict[str, Any]]:
    """The table with as many rows as fit, then a context note on what was cut (if anything).

    `total`: how many rows exist if `rows` is already a cut; `more` is the note, with `{n}` the
    number of rows not shown (mrkdwn: escape what you put in it).
    """
    shown = list(rows[:MAX_BODY_ROWS])
    left = (len(rows) if total is None else total) - len(shown)
    out = [table_block(header, shown, **kw)]
    if left > 0:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(more.format(n=f"{left:,}"), 2000)}]})
    return out


def cell_text(cell: dict[str, Any]) -> str:
    """What a cell shows, as plain text (mentions as `<@U…>`): for fallbacks and tests."""
    if cell.get("type") in ("raw_text", "raw_number"):
        return str(cell.get("text", ""))
    parts: list[str] = []
    for section in cell.get("elements") or []:
        for el in section.get("elements") or []:
            if el.get("type") == "user":
                parts.append(f"<@{el.get('user_id')}>")
            elif el.get("type") == "emoji":
                parts.append(f":{el.get('name')}:")
            else:
                parts.append(str(el.get("text", "")))
    return "".join(parts)


def table_texts(block: dict[str, Any]) -> list[list[str]]:
    """The table as rows of plain text, header first."""
    return [[cell_text(c) for c in row] for row in block.get("rows") or []]
