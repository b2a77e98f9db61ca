"""The approval request message, edited in place from pending to its final state. Pure.

User- and provider-supplied text (model names, reasons, errors) is trimmed, then escaped, in the
blocks and in the `text` fallback alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.mrkdwn import code, escape, truncate

APPROVE = "approval_approve"
REJECT = "approval_reject"
MAX_REASON = 500
MAX_ERROR = 600
MAX_NAMES = 40  # approvers listed by name; more are counted

TITLES = {"delete_model": "Delete a fine-tuned model", "job_budget": "Start a job over the budget", "eval_budget": "Run an evaluation over the budget"}
FINAL = {
    "done": ":white_check_mark: *{done}*",
    "failed": ":x: *Failed*: {error}",
    "rejected": ":no_entry: *Rejected* by <@{by}>",
    "expired": ":hourglass: *Expired* without enough approvals",
}


@dataclass(frozen=True)
class ApprovalView:
    id: int
    kind: str  # delete_model | job_budget
    target: str  # the model, or the training file of the job to start
    requested_by: str
    status: str  # pending | executing | done | failed | rejected | expired
    required: int
    approvers: Sequence[str] = ()
    reason: str | None = None
    job_ref: str | None = None  # the job that made the model
    expires_at: datetime | None = None
    decided_by: str | None = None
    error: str | None = None
    # job_budget: the estimate in USD (None: could not be made, with estimate_note saying why)
    estimate_usd: float | None = None
    estimate_note: str | None = None
    budget_usd: float | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


def _trim(text: str | None, n: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    # Already escaped: cut without leaving half an entity or mention.
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def approvals_line(v: ApprovalView) -> str:
    names = " ".join(f"<@{u}>" for u in v.approvers[:MAX_NAMES])
    more = f" and {len(v.approvers) - MAX_NAMES} more" if len(v.approvers) > MAX_NAMES else ""
    got = f"{len(v.approvers)} of {v.required}"
    return f"*Approvals:* {got}" + (f" ({names}{more})" if names else " so far")


def _what(v: ApprovalView) -> list[str]:
    if v.kind == "delete_model":
        lines = [f"*Model:* {code(_trim(v.target, 200))}"]
        if v.job_ref:
            lines.append(f"*Made by job:* {code(v.job_ref)}")
        return lines
    if v.kind == "eval_budget":
        lines = [f"*Evaluate:* {code(_trim(v.target, 200))} against {code(_trim(str(v.spec.get('baseline') or '?'), 200))}", f"*Examples:* {int(v.spec.get('examples') or 0)}"]
    else:
        lines = [f"*Training file:* {code(_trim(v.target, 200))}"]
    model = v.spec.get("model") if v.kind != "eval_budget" else None
    if model:
        lines.append(f"*Base model:* {code(_trim(str(model), 200))}")
    if v.estimate_usd is not None:
        lines.append(f"*Estimated cost:* {_usd(v.estimate_usd)}")
    else:
        lines.append(f"*Estimated cost:* unknown ({escape(_trim(v.estimate_note or 'no estimate could be made', 300))})")
    if v.budget_usd is not None:
        lines.append(f"*Budget per job:* {_usd(v.budget_usd)}")
    return lines


def _done_text(v: ApprovalView) -> str:
    if v.kind == "delete_model":
        return "Deleted"
    if v.kind == "eval_budget":
        return "Evaluation started"
    job = v.result.get("job")
    return f"Started job {code(job)}" if job else "Started"


def status_line(v: ApprovalView) -> str:
    if v.status == "pending":
        until = f", until {v.expires_at:%Y-%m-%d %H:%M} UTC" if v.expires_at else ""
        return f":ballot_box_with_ballot: Waiting for approvals{until}"
    if v.status == "executing":
        return ":hourglass_flowing_sand: Approved; " + ("deleting…" if v.kind == "delete_model" else "starting…")
    template = FINAL.get(v.status, "*{status}*")
    return template.format(done=_done_text(v), error=escape(_trim(v.error or "unknown error", MAX_ERROR)), by=v.decided_by or "someone", status=escape(v.status))


def fallback_text(v: ApprovalView) -> str:
    what = {"delete_model": f"delete model {_trim(v.target, 200)}", "eval_budget": f"evaluate {_trim(v.target, 200)}"}.get(v.kind, f"start a job on {_trim(v.target, 200)}")
    state = {"pending": f"{len(v.approvers)} of {v.required} approvals", "executing": "approved", "done": "done", "failed": "failed", "rejected": "rejected", "expired": "expired"}.get(v.status, v.status)
    return escape(f"Approval request #{v.id}: {what} ({state})")


def approval_message(v: ApprovalView) -> dict[str, Any]:
    lines = [f"*{TITLES.get(v.kind, 'Approval request')}* (request #{v.id})", *_what(v), f"*Asked by:* <@{v.requested_by}>"]
    if v.reason:
        lines.append(f"*Reason:* {escape(_trim(v.reason, MAX_REASON))}")
    blocks: list[dict[str, Any]] = [_section("\n".join(lines)), _section(approvals_line(v)), _section(status_line(v))]
    if v.status == "pending":
        value = str(v.id)
        blocks.append(
            {
                "type": "actions",
                "block_id": f"approval_{v.id}",
                "elements": [
                    {"type": "button", "action_id": APPROVE, "style": "primary", "value": value, "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "action_id": REJECT, "style": "danger", "value": value, "text": {"type": "plain_text", "text": "Reject"}},
                ],
            }
        )
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Needs {v.required} approvals from people other than <@{v.requested_by}>; one Reject closes it."}]})
    return {"text": fallback_text(v), "blocks": blocks}


def unposted_notice(request_id: int, kind: str, target: str, channel: str, error: str) -> dict[str, Any]:
    """To the requester, when Slack refused the request's message: nobody could have voted."""
    what = f"deleting {code(_trim(target, 200))}" if kind == "delete_model" else f"the job on {code(_trim(target, 200))}"
    text = (
        f":x: Your approval request #{request_id} ({what}) could not be posted in <#{channel}>: "
        f"Slack said `{escape(_trim(error, 200))}`. It is closed as failed; invite me to that channel "
        "(or set FTBOT_APPROVAL_CHANNEL to one I am in) and ask again."
    )
    return {"text": text, "blocks": [_section(text)]}
