"""`ftbot eval`: an evaluation from a shell or a CI pipeline on a local JSONL file, through the same
store and runner as Slack's (so a re-run after a crash resumes, and the same request is answered
from the store without asking again), printed as text or JSON."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from bot.errors import UserError
from bot.evals import costs, sampling, store
from bot.evals.examples import malformed_note, parse_bytes
from bot.evals.prepare import base_of, owner_of
from bot.evals.runner import EvalRunner
from bot.evals.scorers import DEFAULT_SCORES, LABELS
from bot.services import Services
from storage.leases import worker_id


def evaluate_file(services: Services, model: str, path: Path, *, vs: str | None, n: int, concurrency: int) -> dict[str, Any]:
    content = path.read_bytes()
    provider = owner_of(services, None, model)
    baseline = vs or base_of(model, None)
    if not baseline:
        raise UserError(f"{model} has no base model ftbot can tell from its name: give --vs MODEL.")
    baseline_provider = owner_of(services, None, baseline) if vs else provider
    parsed = parse_bytes(content)
    if not parsed.examples:
        why = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(parsed.left_out.items())) or "the file is empty"
        bad = f" {malformed_note(parsed.malformed)}." if parsed.malformed else ""
        raise UserError(f"{path} has no example to score: each needs an assistant answer to compare with ({why}).{bad}")
    key = "cli:" + hashlib.sha256("|".join((model, baseline, hashlib.sha256(content).hexdigest(), str(n))).encode()).hexdigest()[:32]
    base = base_of(model, None)
    got = sampling.sample(parsed.examples, n, seed=sampling.seed_of(key), models=[(model, base), (baseline, base_of(baseline, None))], left_out=parsed.left_out)
    asked = [costs.Asked("model", provider, model, base), costs.Asked("baseline", baseline_provider, baseline, base_of(baseline, None))]
    est = costs.estimate(asked, sum(got.prompt_tokens), got.answer_tokens, len(got.examples))
    for part, a in zip(est["parts"], asked, strict=True):
        part["base"] = a.base
    note = f"the local file {path.name}" + (f"; {malformed_note(parsed.malformed)}" if parsed.malformed else "")
    # The newest run of this request: a failed one (the provider was down, the model not deployed
    # yet) is run again under a new key, never handed back; a done one is answered from the store.
    latest = store.find_latest_run(services.db, key)
    rerun_of = None
    if latest is not None and latest.status in {"failed", "cancelled"}:
        rerun_of = {"run": latest.id, "status": latest.status, "error": (latest.summary or {}).get("error") or latest.error}
        key = f"{key}:again:{latest.id}"
    elif latest is not None:
        key = latest.request_key  # running, or done: that run answers
    spec = store.RunSpec(request_key=key, model=model, provider=provider, baseline=baseline, baseline_provider=baseline_provider, scores=DEFAULT_SCORES, source_file=None, source_note=note)
    run, _ = store.create_run(services.db, spec, got.examples, got.prompt_tokens, skipped=got.skipped, estimate=est)
    if run.status not in store.FINAL:
        EvalRunner(services.db, services.providers, worker_id(), concurrency=concurrency).drive(run.id)
    run = store.get_run(services.db, run.id)
    out = {"run": run.id, "status": run.status, "model": model, "baseline": baseline, "estimate_usd": est["usd"], "price_source": est["source"], **(run.summary or {})}
    if parsed.malformed:
        out["malformed"] = [{"line": n, "why": why} for n, why in parsed.malformed]
    if rerun_of is not None:
        out["rerun_of"] = rerun_of
    return out


def first_score_lost(result: dict[str, Any]) -> bool:
    """The gate: the model scores below the baseline on the first score that has numbers."""
    for name in DEFAULT_SCORES:
        c = (result.get("comparisons") or {}).get(name) or {}
        if c.get("n"):
            return c["model"] < c["baseline"]
    return False


def render(result: dict[str, Any]) -> str:
    lines = [f"Evaluation of {result['model']} against {result['baseline']}: {result.get('scored', 0)} of {result.get('examples', 0)} examples scored ({result['status']})"]
    if result.get("rerun_of"):
        r = result["rerun_of"]
        lines.append(f"Ran again: the earlier run #{r['run']} of this request {r['status']}" + (f" ({r['error']})" if r.get("error") else ""))
    if result.get("error"):
        lines.append(f"Stopped: {result['error']}")
    for name, c in (result.get("comparisons") or {}).items():
        if not c.get("n"):
            lines.append(f"  {LABELS[name]:<12} n/a")
            continue
        lines.append(
            f"  {LABELS[name]:<12} model {c['model'] * 100:5.1f} %  baseline {c['baseline'] * 100:5.1f} %  diff {c['diff'] * 100:+5.1f} pts "
            f"[95 % CI {c['ci_low'] * 100:+.1f}, {c['ci_high'] * 100:+.1f}]  W/T/L {c['wins']}/{c['ties']}/{c['losses']}  n={c['n']}"
        )
    for slot, v in (result.get("slots") or {}).items():
        p50 = v.get("latency_p50_ms")
        usd = v.get("usd")
        lines.append(f"  {slot}: {v['model']}: answered {v['answered']}, failed {v['failed']}, p50 {p50:.0f} ms, tokens {v['prompt_tokens']}+{v['completion_tokens']}, cost {f'${usd:.4f}' if usd is not None else 'unknown'}" if p50 is not None else f"  {slot}: {v['model']}: no answer")
    for slot, v in (result.get("slots") or {}).items():
        if v.get("refused") or v.get("failed"):
            lines.append(f"  {slot}: {v.get('refused', 0)} refused, {v.get('failed', 0)} failed: " + "; ".join(v.get("errors") or []))
    if result.get("skipped"):
        lines.append("  left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(result["skipped"].items())))
    for m in result.get("malformed") or []:
        lines.append(f"  line {m['line']}: {m['why']}")
    return "\n".join(lines)
