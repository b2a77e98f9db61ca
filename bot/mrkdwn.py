"""Escaping for Slack's mrkdwn: user and provider text must not become mentions, links or markup."""

from __future__ import annotations

import re

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# A cut can leave half an entity (`&am`) or half a control sequence (`<@U12`) at the end.
_DANGLING = re.compile(r"(&[a-z]{0,4}|<[^<>]*)$")


def escape(text: object) -> str:
    """Escape &, < and > as Slack requires, so `<!channel>` or `<http://x|y>` stay literal text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What a person typed, from the text Slack sends (it escapes &, < and > in commands)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clip(text: object, limit: int) -> str:
    """Raw text escaped, at most `limit` characters long, cut before escaping so no entity is split."""
    raw = str(text)
    if len(raw) <= limit and len(escaped := escape(raw)) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for ch in raw[:limit]:
        piece = _ENTITIES.get(ch, ch)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def truncate(mrkdwn: str, limit: int) -> str:
    """Shorten text that is already mrkdwn without leaving half an entity or control sequence."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    return _DANGLING.sub("", mrkdwn[: limit - 1]) + "…"


def code(text: object, limit: int = 200) -> str:
    """Inline code for ids and names; backticks inside would end the span, so they are dropped."""
    return "`" + clip(str(text).replace("`", "'"), limit) + "`"
