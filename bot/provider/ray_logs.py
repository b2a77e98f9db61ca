"""A trainer's log, as Ray returns it, turned into ftbot's events: metric points and readable lines.

Pure text handling (no `ray` here). What it understands:

- Hugging Face `Trainer` log dicts, which TRL, Axolotl and most open trainers print:
  `{'loss': 0.53, 'grad_norm': 1.2, 'learning_rate': 2e-05, 'epoch': 0.5}` and, with a validation
  set, `{'eval_loss': 0.61, 'eval_runtime': 1.1, …, 'epoch': 1.0}`. `nan` and `inf` are read too (a
  diverged run prints exactly these). Each becomes a "metrics" event shaped like OpenAI's
  (`step`, `total_steps`, `train_loss`, `valid_loss`, …) so the card, the health checks and the chart
  need nothing Ray-specific.
- The step: the dict's own `step` / `global_step` when it has one; otherwise the training progress bar
  (`tqdm`'s ` 12/200 [`), whose total is the run's total steps (confirmed by the Trainer's
  `Total optimization steps = 200` line when printed); otherwise the count of loss dicts so far.
- Other lines are events. A chatty trainer must not flood Slack: progress bars and blank lines are
  dropped, and of one read's remaining lines the notable ones (checkpoints, warnings, errors,
  tracebacks) are all kept while the rest beyond the last few are folded into one "… N more lines"
  event. The poll interval paces the reads, so a job adds at most one reply per poll to its thread.

Event ids carry the log line they end at (`L<line>…`), so the reader resumes after the last event ftbot
stored, even in a fresh process.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace
from typing import Any

# Shown per read, beyond the notable lines: the newest this many plain lines.
KEEP_PLAIN = 8
KEEP_NOTABLE = 20
NOTABLE = re.compile(r"checkpoint|error|exception|traceback|warn|killed|out of memory|saving model|running training|total optimization steps|running entrypoint", re.I)
PROGRESS = re.compile(r"(?:^|\|)\s*(\d+)/(\d+)\s*\[")
TOTAL_STEPS = re.compile(r"Total optimization steps\s*=\s*([\d,]+)")
BARE_NUMBER = re.compile(r"(?<=[:\s\[,(])(-?inf|nan)(?=\s*[,}\])])")
# HF's metric names -> ftbot's (OpenAI's) names.
TRAIN_KEYS = {"loss": "train_loss", "mean_token_accuracy": "train_mean_token_accuracy", "learning_rate": "learning_rate", "grad_norm": "grad_norm", "epoch": "epoch"}
EVAL_KEYS = {"eval_loss": "valid_loss", "eval_mean_token_accuracy": "valid_mean_token_accuracy", "epoch": "epoch"}


@dataclass(frozen=True)
class LogState:
    """What earlier lines said that later lines need: the progress bar's step and total."""

    step: int | None = None
    total: int | None = None
    bar_total: int | None = None  # the training bar's total, to tell it from an evaluation's bar
    metric_count: int = 0


@dataclass
class Parsed:
    """One read: events in line order (dicts: id, line, type, level, message, data), and the state."""

    events: list[dict[str, Any]] = field(default_factory=list)
    state: LogState = LogState()
    next_line: int = 0


def event_line(event_id: str | None) -> int | None:
    """The log line an event id ends at (None for ids not made here)."""
    m = re.match(r"L(\d+)", event_id or "")
    return int(m.group(1)) if m else None


def complete_lines(text: str) -> list[str]:
    """The log's finished lines (a last line still being written waits for its newline)."""
    lines = text.split("\n")
    return lines[:-1]


def _number(value: Any) -> float | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in {"NaN", "Infinity", "-Infinity"}:
        return value
    return None


def metric_dict(text: str) -> dict[str, Any] | None:
    """The HF log dict in this line, when it has a training or evaluation loss."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start or "loss" not in text:
        return None
    body = BARE_NUMBER.sub(lambda m: {"nan": "'NaN'", "inf": "'Infinity'", "-inf": "'-Infinity'"}[m.group(1)], text[start : end + 1])
    try:
        value = ast.literal_eval(body)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, dict) or not ({"loss", "eval_loss"} & value.keys()):
        return None
    if _number(value.get("loss", value.get("eval_loss"))) is None:
        return None
    return value


def _segments(line: str) -> list[str]:
    # tqdm redraws with carriage returns: each redraw is its own segment, the last one is current.
    return [s for s in line.split("\r") if s.strip()]


def _progress(seg: str, state: LogState) -> LogState | None:
    m = PROGRESS.search(seg)
    if not m:
        return None
    n, total = int(m.group(1)), int(m.group(2))
    expected = state.total or state.bar_total
    if expected is not None and total != expected:
        return state  # another bar (evaluation, data loading): not the training step
    return replace(state, step=n, bar_total=total)


def _metric_event(d: dict[str, Any], line: int, state: LogState) -> tuple[dict[str, Any], LogState]:
    is_eval = "eval_loss" in d and "loss" not in d
    step_raw = d.get("step", d.get("global_step"))
    if isinstance(step_raw, int | float) and not isinstance(step_raw, bool):
        step = int(step_raw)
    elif state.step is not None:
        step = state.step
    else:
        step = state.metric_count + (0 if is_eval else 1)
    if not is_eval:
        state = replace(state, metric_count=state.metric_count + 1)
    total = state.total or state.bar_total
    data: dict[str, Any] = {"step": step, "total_steps": total}
    for src, dst in (EVAL_KEYS if is_eval else TRAIN_KEYS).items():
        v = _number(d.get(src))
        if v is not None:
            data[dst] = v
    train, valid = data.get("train_loss"), data.get("valid_loss")
    parts = [f"Step {step}/{total or '?'}:"]
    if train is not None:
        parts.append(f"training loss={train:.4g}" if isinstance(train, float) else f"training loss={train}")
    if valid is not None:
        parts.append(f"validation loss={valid:.4g}" if isinstance(valid, float) else f"validation loss={valid}")
    event = {"id": f"L{line}-{'e' if is_eval else 'm'}{step}", "line": line, "type": "metrics", "level": "info", "message": " ".join(parts), "data": data}
    return event, state


def parse(lines: list[str], first_line: int, state: LogState, *, emit: bool = True) -> Parsed:
    """Read `lines` (the log's lines from number `first_line` on) after `state`."""
    out = Parsed(state=state, next_line=first_line + len(lines))
    plain: list[tuple[int, str]] = []
    metrics: list[dict[str, Any]] = []
    for offset, raw in enumerate(lines):
        line_no = first_line + offset
        for seg in _segments(raw):
            text = seg.strip()
            m = TOTAL_STEPS.search(text) if "optimization" in text else None
            if m:
                state = replace(state, total=int(m.group(1).replace(",", "")))
            moved = _progress(text, state) if "/" in text and "[" in text else None
            if moved is not None:
                state = moved
                continue
            if not emit and "{" in text and "loss" in text:
                # Rebuilding the state only: a training dict needs counting, not reading.
                # Counted as _metric_event counts (a dict with "loss" is a training step), whether
                # the trainer printed a Python repr or JSON.
                d = metric_dict(text)
                if d is not None and "loss" in d:
                    state = replace(state, metric_count=state.metric_count + 1)
                continue
            d = metric_dict(text) if "{" in text else None
            if d is not None:
                event, state = _metric_event(d, line_no, state)
                metrics.append(event)
                continue
            plain.append((line_no, text))
    out.state = state
    if not emit:
        return out
    out.events = sorted(metrics + _shown(plain), key=lambda e: (e["line"], e["type"] != "metrics"))
    return _merge_same_step(out)


def _shown(plain: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Every notable line, the newest plain ones, and one event counting those left out."""
    notable = set([i for i, (_, t) in enumerate(plain) if NOTABLE.search(t)][-KEEP_NOTABLE:])
    ordinary = [i for i in range(len(plain)) if i not in notable]
    keep = notable | set(ordinary[-KEEP_PLAIN:])
    events = []
    folded: list[int] = []
    for i, (line_no, text) in enumerate(plain):
        if i in keep:
            level = "error" if re.search(r"error|exception|traceback|killed", text, re.I) else "warn" if re.search(r"warn", text, re.I) else "info"
            events.append({"id": f"L{line_no}", "line": line_no, "type": "log", "level": level, "message": text, "data": None})
        else:
            folded.append(line_no)
    if folded:
        # Stands where the last folded line was, so the order (and the resume point) stays right.
        last = folded[-1]
        events.append(
            {
                "id": f"L{last}-more{len(folded)}",
                "line": last,
                "type": "log",
                "level": "info",
                "message": f"… {len(folded)} more log line{'s' if len(folded) != 1 else ''} ({_span(folded)} of the job's log, which the Ray dashboard shows whole)",
                "data": {"folded_lines": len(folded)},
            }
        )
    return events


def _span(lines: list[int]) -> str:
    first, last = lines[0] + 1, lines[-1] + 1  # people count lines from 1
    return f"line {first}" if first == last else f"lines {first}–{last}"


def _merge_same_step(out: Parsed) -> Parsed:
    """A training and an evaluation dict logged at the same step make one metric point."""
    merged: list[dict[str, Any]] = []
    by_step: dict[int, dict[str, Any]] = {}
    for e in out.events:
        if e["type"] != "metrics":
            merged.append(e)
            continue
        step = e["data"]["step"]
        first = by_step.get(step)
        if first is None:
            by_step[step] = e
            merged.append(e)
            continue
        for k, v in e["data"].items():
            if v is not None and first["data"].get(k) is None:
                first["data"][k] = v
        if "valid_loss" in e["data"] and "validation loss" not in first["message"]:
            v = e["data"]["valid_loss"]
            first["message"] += f", validation loss={v:.4g}" if isinstance(v, float) else f", validation loss={v}"
        # The merged point takes the later line, so the resume point covers both.
        first["line"] = e["line"]
        first["id"] = f"L{e['line']}-m{step}"
    merged.sort(key=lambda e: (e["line"], e["type"] != "metrics"))
    out.events = merged
    return out
