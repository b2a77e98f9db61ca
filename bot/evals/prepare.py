"""From a request (`/ft eval`, a job that just succeeded, `ftbot eval`) to a run ready to ask: which
provider has each model, the baseline (by default the model's base), which file the examples come
from and why, the sample, and what it will cost. Bad input is a UserError saying what is wrong,
before anything is spent."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.datasets.resolve import resolve_file
from bot.errors import UserError
from bot.evals import costs, sampling
from bot.evals.examples import malformed_note, parse_lines
from bot.evals.scorers import DEFAULT_SCORES, SCORES
from bot.jobs.model_owner import find_model, one_owner
from bot.mrkdwn import code, escape
from bot.provider.base import ProviderError, provider_label
from bot.provider.together_models import serverless
from bot.services import Services
from storage.models import Job

USAGE = "/ft eval MODEL [vs=MODEL] [data=FILE] [n=N] [score=exact,similarity,json,tools,judge] [judge=MODEL] [endpoint=NAME]"
KEYS = ("vs", "data", "n", "score", "judge", "endpoint")


@dataclass(frozen=True)
class EvalRequest:
    model: str
    vs: str | None = None
    data: str | None = None
    n: int | None = None
    scores: tuple[str, ...] = DEFAULT_SCORES
    judge: str | None = None
    endpoint: str | None = None  # Together: the dedicated endpoint that serves `model`


def parse_request(args: tuple[str, ...], *, max_n: int = sampling.MAX_N) -> EvalRequest:
    positional = [a for a in args if "=" not in a]
    if len(positional) != 1:
        raise UserError("`eval` needs one model to evaluate." if not positional else f"`eval` takes one model, got {len(positional)}.", USAGE)
    opts: dict[str, str] = {}
    for pair in (a for a in args if "=" in a):
        key, _, value = pair.partition("=")
        key = key.lower()
        if key not in KEYS:
            raise UserError(f"Unknown option {code(key[:40])}. Known: {', '.join(KEYS)}.", USAGE)
        if key in opts:
            raise UserError(f"`{key}` is given twice.", USAGE)
        if not value:
            raise UserError(f"`{key}` has no value.", USAGE)
        opts[key] = value
    n = None
    if "n" in opts:
        raw = opts["n"]
        if not raw.isdigit() or not 1 <= int(raw) <= max_n:
            raise UserError(f"`n` must be a whole number from 1 to {max_n:,}, got {code(raw[:40])}.", USAGE)
        n = int(raw)
    scores = DEFAULT_SCORES
    if "score" in opts:
        scores = tuple(dict.fromkeys(s.strip().lower() for s in opts["score"].split(",") if s.strip()))
        bad = [s for s in scores if s not in SCORES]
        if bad or not scores:
            raise UserError(f"Unknown score {code(','.join(bad)[:60])}. Scores: {', '.join(SCORES)}.", USAGE)
    if "judge" in scores and "judge" not in opts:
        raise UserError("`score=judge` needs `judge=MODEL`: the model that compares the two answers.", USAGE)
    if "judge" in opts and "judge" not in scores:
        scores = (*scores, "judge")
    return EvalRequest(positional[0], opts.get("vs"), opts.get("data"), n, scores, opts.get("judge"), opts.get("endpoint"))


@dataclass
class Prepared:
    model: str
    provider: str
    baseline: str
    baseline_provider: str
    judge: str | None
    judge_provider: str | None
    source_file: str
    source_note: str
    sample: sampling.Sample
    estimate: dict[str, Any]
    job_id: int | None = None
    bases: dict[str, str | None] = field(default_factory=dict)


def _job_of(services: Services, team_id: str | None, model: str) -> Job | None:
    with services.db.session() as s:
        job = s.scalars(select(Job).where(Job.fine_tuned_model == model).order_by(Job.id.desc())).first()
        if job is not None and job.team_id not in (None, team_id):
            return None
        if job is not None:
            s.expunge(job)
        return job


# Providers whose model list includes the base models they serve: a name missing there is unknown.
# (Together's registry holds only a project's own models; Azure's API cannot list deployments: a
# name neither lists is sent as is, and its first request says whether it can be asked.)
LISTS_BASE_MODELS = frozenset({"openai"})


def owner_of(services: Services, team_id: str | None, model: str) -> str:
    """The enabled provider that serves `model`; a UserError when none does."""
    if not services.several_providers:
        only = services.default_provider
        if only not in LISTS_BASE_MODELS:
            return only
        try:
            found = find_model(services, team_id, model)
        except ProviderError as exc:
            raise UserError(f"Cannot check {code(model)} at {provider_label(only)}: {exc.reason}") from None
        if not found:
            raise UserError(f"Unknown model {code(model)}: {provider_label(only)} does not list it. `/ft models` lists yours.")
        return only
    owner = one_owner(find_model(services, team_id, model), model, prefer=services.default_provider)
    if owner is not None:
        return owner.provider
    if "together" in services.providers and "/" in model:
        return "together"  # Together's names are organisation/model; its base models are not listed
    if "azure" in services.providers:
        return "azure"  # deployments are not listed: Azure's API is asked as is
    raise UserError(f"Unknown model {code(model)}: no enabled provider ({', '.join(provider_label(p) for p in services.providers)}) lists it.")


def base_of(model: str, job: Job | None) -> str | None:
    if job is not None:
        return job.base_model
    if model.startswith("ft:") and model.count(":") >= 2:
        return model.split(":")[1]
    if ".ft-" in model:
        return model.split(".ft-")[0]
    return None


def _route(provider: str, req: EvalRequest, job: Job | None) -> tuple[str, str]:
    """(the name the model is asked under, a note for the report). At Together a fine-tuned model
    without a serverless route answers only from a dedicated endpoint: refused here, before any
    example is sampled or paid for, unless `endpoint=` names one."""
    if req.endpoint is not None:
        if provider != "together":
            raise UserError(
                f"`endpoint=` is a Together AI option (a dedicated endpoint serving the model); {code(req.model[:150])} is at {provider_label(provider)}: leave it out.",
                USAGE,
            )
        return req.endpoint, f"; {code(req.model[:150])} is asked through dedicated endpoint {code(req.endpoint[:150])}"
    if provider == "together" and job is not None and job.fine_tuned_model == req.model:
        lora = str((job.hyperparameters or {}).get("training_type", "lora")).lower() != "full"
        if not serverless(job.base_model, lora=lora):
            why = "full training" if not lora else f"a LoRA adapter on {job.base_model}, a base Together does not serve serverless"
            raise UserError(
                f"{code(req.model[:150])} ({why}) answers only from a dedicated endpoint at Together AI: pass `endpoint=NAME` "
                "naming one that serves it, or deploy one in Together's console (billed by the minute while it runs). Nothing was asked.",
                USAGE,
            )
    return req.model, ""


def choose_source(services: Services, team_id: str | None, job: Job | None, data: str | None, provider: str) -> tuple[str, str]:
    """(file id, where the examples come from and why)."""
    if data:
        fid = resolve_file(services, team_id or "", data, what="dataset", provider=provider)
        return fid, f"the dataset you named ({code(data[:80])}, {fid})"
    if job is not None and job.validation_file:
        return job.validation_file, f"the job's validation file ({job.validation_file}): held out from training"
    if job is not None and job.training_file:
        return job.training_file, (
            f"a sample of the job's training file ({job.training_file}): the job had no validation file, so these "
            "examples are NOT held out; the model saw them in training, so this measures what it learned, not how it generalises"
        )
    raise UserError("Which examples? This model was not trained by a job ftbot knows: give `data=FILE` (a dataset name or a file id).", USAGE)


def load_sample(services: Services, provider: str, file_id: str, n: int, *, seed: int, models: list[tuple[str, str | None]]) -> sampling.Sample:
    with tempfile.TemporaryDirectory(prefix="ftbot-eval-") as tmp:
        path = Path(tmp) / "data.jsonl"
        try:
            services.provider_for(provider).download_file(file_id, path)
        except ProviderError as exc:
            raise UserError(f"Could not read {code(file_id)} at {provider_label(provider)}: {exc.reason}") from None
        with path.open("rb") as f:
            parsed = parse_lines(f)
    if not parsed.examples:
        why = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(parsed.left_out.items())) or "the file is empty"
        bad = f" {escape(malformed_note(parsed.malformed))}." if parsed.malformed else ""
        raise UserError(f"{code(file_id)} has no example to score: each needs an assistant answer to compare with ({why}).{bad}", USAGE)
    got = sampling.sample(parsed.examples, n, seed=seed, models=models, left_out=parsed.left_out)
    got.malformed = list(parsed.malformed)
    if not got.examples:
        raise UserError(f"Every sampled example of {code(file_id)} is longer than the model's context ({got.skipped.get('too_long', 0)} skipped).", USAGE)
    return got


def prepare(services: Services, team_id: str | None, req: EvalRequest, *, default_n: int, job: Job | None = None, seed_key: str = "") -> Prepared:
    job = job or _job_of(services, team_id, req.model)
    provider = job.provider if job is not None and job.provider in services.providers else owner_of(services, team_id, req.model)
    base = base_of(req.model, job)
    asked_as, endpoint_note = _route(provider, req, job)
    baseline = req.vs or base
    if not baseline:
        raise UserError(f"Against which model? {code(req.model)} has no base model ftbot knows: add `vs=MODEL`.", USAGE)
    vs_job = _job_of(services, team_id, baseline) if req.vs else None
    if req.vs:
        baseline_provider = vs_job.provider if vs_job is not None and vs_job.provider in services.providers else owner_of(services, team_id, baseline)
    else:
        baseline_provider = provider
    judge_provider = owner_of(services, team_id, req.judge) if req.judge else None
    file_id, note = choose_source(services, team_id, job, req.data, provider)
    note += endpoint_note
    n = req.n or default_n
    models = [(req.model, base), (baseline, base_of(baseline, vs_job))]
    got = load_sample(services, provider, file_id, n, seed=sampling.seed_of(file_id, n, seed_key), models=models)
    if got.malformed:
        note += f"; {escape(malformed_note(got.malformed))}"
    # A dedicated endpoint bills by the minute, not per token: its cost is unknown, and the budget gate asks.
    asked = [
        costs.Asked("model", provider, req.model, base, billing="per_minute" if req.endpoint else "per_token"),
        costs.Asked("baseline", baseline_provider, baseline, base_of(baseline, vs_job)),
    ]
    if req.judge:
        asked.append(costs.Asked("judge", judge_provider or provider, req.judge, None))
    est = costs.estimate(asked, sum(got.prompt_tokens), got.answer_tokens, len(got.examples))
    for part, a in zip(est["parts"], asked, strict=True):
        part["base"] = a.base
    return Prepared(
        model=asked_as, provider=provider, baseline=baseline, baseline_provider=baseline_provider, judge=req.judge, judge_provider=judge_provider,
        source_file=file_id, source_note=note, sample=got, estimate=est, job_id=job.id if job is not None else None,
        bases={"model": base},
    )
