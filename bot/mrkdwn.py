"""Escaping for Slack's mrkdwn: user and provider text must not become mentions, links or markup."""

from __future__ import annotations


def escape(text: object) -> str:
    """Escape &, < and > as Slack requires, so `<!channel>` or `<http://x|y>` stay literal text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: object) -> str:
    """Inline code for ids and names; backticks inside would end the span, so they are dropped."""
    return "`" + escape(text).replace("`", "'") + "`"
