"""Slack's checks on the newer blocks ftbot posts: `table` and `alert`, as slack_sdk 3.48 types them.

Kept apart from the server so the stand-in's other rules (and rate limits) change independently.
Each check returns Slack's error and the message it puts in `response_metadata`, or None.
"""

from __future__ import annotations

from typing import Any

MAX_TABLE_ROWS = 100
MAX_TABLE_CELLS = 20
CELL_TYPES = {"raw_text", "raw_number", "rich_text"}
ALIGNS = {"left", "center", "right"}
ALERT_LEVELS = {"default", "info", "warning", "error", "success"}  # slack_sdk AlertBlock.valid_levels
TEXT_TYPES = {"plain_text", "mrkdwn"}

Problem = tuple[str, str]


def _bad(why: str, where: str) -> Problem:
    return ("invalid_blocks", f"{why} {where}")


def _cell_problem(cell: Any, where: str) -> Problem | None:
    if not isinstance(cell, dict) or cell.get("type") not in CELL_TYPES:
        kind = cell.get("type") if isinstance(cell, dict) else type(cell).__name__
        return _bad(f"unsupported cell type {kind!r}: must be one of {sorted(CELL_TYPES)}", where)
    if cell["type"] == "raw_text":
        text = cell.get("text")
        if not isinstance(text, str) or not text:
            return _bad("must be at least 1 character", f"{where}/text")
    elif cell["type"] == "raw_number":
        if not isinstance(cell.get("text"), str | int | float):
            return _bad("missing required field: text", where)
    else:
        elements = cell.get("elements")
        if not isinstance(elements, list) or not elements:
            return _bad("missing required field: elements", where)
    return None


def table_problem(block: dict[str, Any], where: str) -> Problem | None:
    rows = block.get("rows")
    if not isinstance(rows, list) or not rows:
        return _bad("missing required field: rows", where)
    if len(rows) > MAX_TABLE_ROWS:
        return _bad(f"no more than {MAX_TABLE_ROWS} items allowed", f"{where}/rows")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not row:
            return _bad("must be a non-empty array of cells", f"{where}/rows/{i}")
        if len(row) > MAX_TABLE_CELLS:
            return _bad(f"no more than {MAX_TABLE_CELLS} items allowed", f"{where}/rows/{i}")
        for j, cell in enumerate(row):
            problem = _cell_problem(cell, f"{where}/rows/{i}/{j}")
            if problem:
                return problem
    settings = block.get("column_settings")
    if settings is not None:
        if not isinstance(settings, list) or len(settings) > MAX_TABLE_CELLS:
            return _bad(f"must be an array of no more than {MAX_TABLE_CELLS} items", f"{where}/column_settings")
        for k, s in enumerate(settings):
            if s is None:
                continue
            if not isinstance(s, dict):
                return _bad("must be an object", f"{where}/column_settings/{k}")
            if "align" in s and s["align"] not in ALIGNS:
                return _bad(f"must be one of {sorted(ALIGNS)}", f"{where}/column_settings/{k}/align")
            if "is_wrapped" in s and not isinstance(s["is_wrapped"], bool):
                return _bad("must be a boolean", f"{where}/column_settings/{k}/is_wrapped")
    return None


def alert_problem(block: dict[str, Any], where: str) -> Problem | None:
    text = block.get("text")
    if not isinstance(text, dict) or text.get("type") not in TEXT_TYPES:
        return _bad("missing required field: text (a plain_text or mrkdwn object)", where)
    if not isinstance(text.get("text"), str) or not text["text"]:
        return _bad("must be at least 1 character", f"{where}/text/text")
    if "level" in block and block["level"] not in ALERT_LEVELS:
        return _bad(f"must be one of {sorted(ALERT_LEVELS)}", f"{where}/level")
    return None


CHECKS = {"table": table_problem, "alert": alert_problem}


def newer_blocks_problem(blocks: list[Any]) -> Problem | None:
    """The first table or alert rule `blocks` breaks, including Slack's one table per message."""
    tables = 0
    for i, b in enumerate(blocks):
        if not isinstance(b, dict):
            continue
        check = CHECKS.get(b.get("type"))  # type: ignore[arg-type]
        if check is None:
            continue
        where = f"[json-pointer:/blocks/{i}]"
        problem = check(b, where)
        if problem:
            return problem
        if b["type"] == "table":
            tables += 1
            if tables > 1:
                return _bad("only one table block is allowed per message", where)
    return None
