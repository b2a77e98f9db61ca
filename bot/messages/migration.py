"""Block Kit for `/ft migrate` and `/ft migrations`. Pure: plain data in, a message out, within
Slack's limits whatever the data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.mrkdwn import clip, code, escape
from bot.provider.base import provider_label

CONFIRM_ACTION = "migration_confirm"
CANCEL_ACTION = "migration_cancel"
ICONS = {
    "copying": ":truck:", "checking": ":mag:", "ready": ":raised_hand:", "starting": ":rocket:", "training": ":gear:",
    "evaluating": ":bar_chart:", "done": ":white_check_mark:", "failed": ":x:", "cancelled": ":no_entry_sign:",
}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2990]}}


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _hyper(h: dict[str, Any]) -> str:
    names = {"n_epochs": "epochs", "batch_size": "batch", "learning_rate": "lr", "learning_rate_multiplier": "lr multiplier", "beta": "beta"}
    parts = [f"{names.get(k, k)} {v:g}" if isinstance(v, float) else f"{names.get(k, k)} {v}" for k, v in sorted(h.items())]
    return escape(", ".join(parts)) if parts else "the provider's defaults"


def migration_preview(m: Any) -> dict[str, Any]:
    """`m`: a bot.migration.flow.MigrationView in state ready. Confirm / Cancel carry its id."""
    src = f"{code(m.source_model)} at {escape(provider_label(m.source_provider))}" + (f" (made by {code(m.source_job_id)})" if m.source_job_id else "")
    lines = [f"*Migration #{m.id}: ready to start*", f"*From* {src}", f"*To* {code(m.target_base_model or '?')} at {escape(provider_label(m.target_provider))}"]
    for what in ("training", "validation"):
        f = m.files.get(what)
        if f:
            again = "already there, reused" if f.get("reused") else "copied"
            lines.append(f"*{what.capitalize()} data* {f.get('examples', 0):,} examples, {_size(int(f.get('bytes') or 0))}, {again} as {code(f.get('target', '?'))} (sha256 {escape(str(f.get('sha256', ''))[:12])}…, checked for the target)")
    recipe = m.recipe or {}
    lines.append(f"*Recipe* {escape(recipe.get('method', 'supervised'))}: {_hyper(recipe.get('hyperparameters') or {})}")
    cost = f"${m.estimate_usd:,.2f}" if m.estimate_usd is not None else "not known"
    lines.append(f"*Estimated cost* {cost}" + (f" ({clip(m.estimate_note, 300)})" if m.estimate_note else ""))
    notes = "\n".join(f"• {clip(n, 300)}" for n in (recipe.get("notes") or [])[:6])
    value = str(m.id)
    blocks = [
        _section("\n".join(lines)),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (notes or "no notes")[:2990]}]},
        {
            "type": "actions",
            "block_id": f"migration_{m.id}",
            "elements": [
                {"type": "button", "action_id": CONFIRM_ACTION, "text": {"type": "plain_text", "text": "Confirm"}, "style": "primary", "value": value},
                {"type": "button", "action_id": CANCEL_ACTION, "text": {"type": "plain_text", "text": "Cancel"}, "value": value},
            ],
        },
    ]
    text = f"Migration #{m.id}: {clip(m.source_model, 200)} to {clip(m.target_base_model or '?', 120)} at {escape(provider_label(m.target_provider))}, ready: Confirm or Cancel."
    return {"text": text, "blocks": blocks}


def migration_line(m: Any) -> str:
    state = f"{ICONS.get(m.state, ':grey_question:')} *{escape(m.state)}*"
    if m.state == "failed" and m.error:
        state += f": {clip(m.error, 400)}"
    if m.state == "cancelled" and m.error:
        state += f" ({clip(m.error, 100)})"
    job = f" · job {code(m.target_job_id)}" if m.target_job_id else ""
    new = f" → {code(m.target_model)}" if m.target_model else ""
    return (
        f"#{m.id} {code(m.source_model)} ({escape(provider_label(m.source_provider))}) → {code(m.target_base_model or '?')} "
        f"({escape(provider_label(m.target_provider))}){new}\n      {state}{job}"
    ) + (f"\n      :scales: {clip(parity, 600)}" if (parity := getattr(m, "parity", None)) else "")


def migrations_answer(ms: Sequence[Any]) -> dict[str, Any]:
    if not ms:
        return {"text": "No migrations yet. `/ft migrate MODEL` moves a model to another provider.", "blocks": [_section("No migrations yet. `/ft migrate MODEL` moves a model to another provider.")]}
    lines = [migration_line(m) for m in ms[:20]]
    blocks = [_section(f"*Migrations* ({len(ms)})")]
    chunk: list[str] = []
    for line in lines:
        if sum(len(c) + 1 for c in chunk) + len(line) > 2900:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Parity: how often the new model gives the old one's saved answers, and both models' scores on the references (the full report is in the new job's thread)."}]})
    return {"text": f"{len(ms)} migrations", "blocks": blocks}


def migration_outcome(m: Any, *, repeat: bool = False, held_request: int | None = None) -> str:
    """The answer to Confirm / Cancel (mrkdwn, short)."""
    if held_request is not None:
        return f":moneybag: Migration #{m.id} is over the job budget: I asked for approval (request #{held_request}); the job starts once approved."
    if repeat:
        job = f", job {code(m.target_job_id)}" if m.target_job_id else ""
        return f"Migration #{m.id} is {escape(m.state)} already{job}: nothing new was started."
    if m.state == "cancelled":
        return f":no_entry_sign: Migration #{m.id} cancelled: nothing was started (the copied files stay at {escape(provider_label(m.target_provider))})."
    return f":rocket: Migration #{m.id}: started {code(m.target_job_id or '?')} on {code(m.target_base_model or '?')} at {escape(provider_label(m.target_provider))}. Its card follows."


def kept_answer(k: Any) -> str:
    """`k`: a bot.migration.keep.Kept."""
    where = escape(provider_label(k.provider))
    head = f":floppy_disk: Saved {k.asked} new answer{'s' if k.asked != 1 else ''} of {code(k.model)} at {where} from {k.source}"
    if k.saved_before:
        head += f" ({k.saved_before} were saved already)"
    head += f": {k.total} kept for comparing its replacement."
    if k.failed:
        head += f"\n:warning: {k.failed} prompt{'s' if k.failed != 1 else ''} got no answer ({clip(k.first_error or 'no reason given', 300)}); run it again to ask them."
    if k.held:
        head += (
            f"\n:hourglass: {k.held} prompt{'s are' if k.held != 1 else ' is'} being asked by another `/ft keep` right now (not counted here); "
            "run it again once that one has answered to see them saved."
        )
    if k.malformed:
        shown = ", ".join(f"line {n} ({clip(why, 120)})" for n, why in k.malformed[:5])
        more = f" and {len(k.malformed) - 5} more" if len(k.malformed) > 5 else ""
        head += f"\n:warning: {len(k.malformed)} malformed example{'s' if len(k.malformed) != 1 else ''} left out, never asked: {shown}{more}."
    return head
