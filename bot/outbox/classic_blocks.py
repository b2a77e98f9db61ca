"""Newer Block Kit blocks drawn with classic ones, for a workspace (or surface) whose Slack refuses
them: a `table` as a preformatted section, an `alert` as a section led by its level's emoji, a
`markdown` block as a mrkdwn section, anything else newer (cards, carousels, …) as a section of the
text it carries. Pure: blocks in, blocks out, each within Slack's section limit whatever the size.
"""

from __future__ import annotations

from typing import Any

from bot.mrkdwn import clip, escape, truncate

# Block types ftbot may send that every surface has taken for years; anything else is "newer".
CLASSIC = frozenset({"section", "header", "context", "actions", "divider", "image", "rich_text", "input", "file", "video"})
SECTION_LIMIT = 3000
LEVEL_EMOJI = {"error": ":rotating_light:", "warning": ":warning:", "success": ":white_check_mark:", "info": ":information_source:", "default": ":speech_balloon:"}


def newer_types(blocks: Any) -> set[str]:
    return {str(b.get("type")) for b in blocks or [] if isinstance(b, dict) and b.get("type") not in CLASSIC}


def to_classic(blocks: list[dict[str, Any]], types: set[str] | frozenset[str]) -> list[dict[str, Any]]:
    """`blocks` with every block whose type is in `types` drawn classic (dropped only when it has no
    text at all)."""
    out: list[dict[str, Any]] = []
    for b in blocks:
        kind = b.get("type") if isinstance(b, dict) else None
        if kind not in types:
            out.append(b)
            continue
        drawn = {"table": table_section, "alert": alert_section, "markdown": markdown_section}.get(str(kind), other_section)(b)
        if drawn is not None:
            out.append(drawn)
    return out


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _cell_text(cell: Any) -> str:
    if not isinstance(cell, dict):
        return str(cell)
    if cell.get("type") in ("raw_text", "raw_number"):
        return str(cell.get("text", ""))
    return _rich_text(cell.get("elements") or [])


def _rich_text(elements: list[Any]) -> str:
    """The plain words of rich-text elements (a mention as @U…, a link as its text or address)."""
    parts: list[str] = []
    for el in elements:
        if not isinstance(el, dict):
            continue
        t = el.get("type")
        if t == "text":
            parts.append(str(el.get("text", "")))
        elif t == "user":
            parts.append(f"@{el.get('user_id', '')}")
        elif t == "channel":
            parts.append(f"#{el.get('channel_id', '')}")
        elif t == "link":
            parts.append(str(el.get("text") or el.get("url") or ""))
        elif t == "emoji":
            parts.append(f":{el.get('name', '')}:")
        elif isinstance(el.get("elements"), list):
            parts.append(_rich_text(el["elements"]))
    return "".join(parts)


def table_section(block: dict[str, Any]) -> dict[str, Any] | None:
    """The rows as aligned columns in a code block, cut (with a note saying how many rows) to fit."""
    rows = [[_cell_text(c).replace("\n", " ") for c in row] for row in block.get("rows") or [] if isinstance(row, list)]
    if not rows:
        return None
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    widths = [min(40, max(len(r[i]) for r in rows)) for i in range(n)]
    settings = block.get("column_settings") or []
    right = {i for i, s in enumerate(settings) if isinstance(s, dict) and s.get("align") == "right"}

    def line(r: list[str]) -> str:
        cells = [(c if len(c) <= widths[i] else c[: widths[i] - 1] + "…") for i, c in enumerate(r)]
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    budget = SECTION_LIMIT - 60  # the fences and the note
    kept: list[str] = []
    used = 0
    for r in rows:
        text = escape(line(r))
        if used + len(text) + 1 > budget:
            break
        kept.append(text)
        used += len(text) + 1
    if not kept:  # one enormous row: cut it
        kept = [truncate(escape(line(rows[0])), budget)]
    note = f"\n_{len(rows) - len(kept)} more rows not shown_" if len(kept) < len(rows) else ""
    return _section("```" + "\n".join(kept) + "```" + note)


def alert_section(block: dict[str, Any]) -> dict[str, Any] | None:
    text = block.get("text") if isinstance(block.get("text"), dict) else {}
    words = str(text.get("text") or "")
    if not words:
        return None
    emoji = LEVEL_EMOJI.get(str(block.get("level") or "default"), LEVEL_EMOJI["default"])
    body = truncate(words, SECTION_LIMIT - len(emoji) - 1) if text.get("type") == "mrkdwn" else clip(words, SECTION_LIMIT - len(emoji) - 1)
    return _section(f"{emoji} {body}")


def markdown_section(block: dict[str, Any]) -> dict[str, Any] | None:
    words = str(block.get("text") or "")
    return _section(truncate(words, SECTION_LIMIT)) if words else None


def other_section(block: dict[str, Any]) -> dict[str, Any] | None:
    """A newer block ftbot has no drawing for: the text it carries, plain."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if v.get("type") in ("plain_text", "mrkdwn") and isinstance(v.get("text"), str):
                found.append(v["text"])
                return
            for k, x in v.items():
                if k not in ("type", "action_id", "block_id", "value", "url", "image_url"):
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(block)
    words = " · ".join(w for w in found if w.strip())
    return _section(clip(words, SECTION_LIMIT)) if words else None
