"""Ask the models: claim answer rows, send each prompt through the provider interface, record each
answer the moment it arrives. Requests in flight are bounded per provider (FTBOT_EVAL_CONCURRENCY);
a rate limit waits what the provider's Retry-After says; a failing request is retried a few times,
then counted as failed. A model that cannot be asked at all (unknown, no endpoint, refused) ends
the run with the provider's reason before more is spent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.evals import scorers, store
from bot.evals.judging import judge_order
from bot.provider.base import (
    ChatReply,
    ModelNotServed,
    Provider,
    ProviderAuthError,
    ProviderError,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderPermissionError,
    ProviderRateLimited,
)
from storage.db import Database
from storage.models import EvalRun

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # requests per answer before it is counted as failed
MAX_CLAIMS = 5  # claims of one row (its workers kept dying) before it is counted as failed
ROUNDS = 4  # answer rows claimed at once, in multiples of the requests that may be in flight
MAX_WAIT = 60.0  # the longest Retry-After honoured in one wait
ANSWER_TOKENS = 512
SEED = 1234  # sent to providers that take one: the same prompt, the same answer where they can


class CannotAsk(Exception):
    """The model cannot be asked at all here: the run stops with this reason."""


@dataclass
class Outcome:
    status: str  # done | cancelled | failed | lost (another worker holds it) | waiting
    run: EvalRun | None = None


# What the runner tells the world: progress (run, k, n) and the end (run, status, summary) to plan
# messages in the transaction that ends the run.
Progress = Callable[[EvalRun, int, int], None]


class EvalRunner:
    def __init__(
        self,
        db: Database,
        providers: Mapping[str, Provider],
        owner: str,
        *,
        concurrency: int = 8,
        lease_seconds: float = 120.0,
        max_attempts: int = MAX_ATTEMPTS,
        on_progress: Progress | None = None,
        on_end: Callable[[Any, EvalRun, str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stop: threading.Event | None = None,
    ) -> None:
        self.db = db
        self.providers = providers
        self.owner = owner
        self.concurrency = max(1, concurrency)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.on_progress = on_progress
        self.on_end = on_end
        self.sleep = sleep
        self.stop = stop or threading.Event()
        self._locks: dict[str, threading.Semaphore] = {}
        self._abort = threading.Event()  # the model cannot be asked: the rest of the batch is not sent
        self._ok: dict[str, int] = {}

    # ---- one run ------------------------------------------------------------------------------

    def drive(self, run_id: int) -> Outcome:
        if not store.take_run(self.db, run_id, self.owner, self.lease):
            return Outcome("lost")
        store.set_status(self.db, run_id, "running", frm=["pending"])
        run = store.get_run(self.db, run_id)
        assert run is not None
        slots = ["model", "baseline"]
        for name in {run.provider, run.baseline_provider, run.judge_provider} - {None}:
            self._locks.setdefault(name, threading.Semaphore(self.concurrency))
        # Twice the requests allowed in flight: a thread recording its answer does not hold back the
        # next request (the per-provider semaphores bound what is in flight).
        workers = 2 * self.concurrency * len({run.provider, run.baseline_provider})
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"eval{run_id}") as pool:
                for phase in (slots, ["judge"] if run.judge else []):
                    if not phase:
                        continue
                    done = self._phase(pool, run, phase, workers)
                    if done is not None:
                        return done
        except CannotAsk as exc:
            return self._end(run_id, "failed", str(exc))
        unanswered = nothing_answered(self.db, run)
        if unanswered:
            return self._end(run_id, "failed", unanswered)
        return self._end(run_id, "done", None)

    def _phase(self, pool: ThreadPoolExecutor, run: EvalRun, slots: list[str], batch: int) -> Outcome | None:
        while True:
            if self.stop.is_set():
                store.release_run(self.db, run.id, self.owner)
                return Outcome("waiting")
            current = store.get_run(self.db, run.id)
            if current is None or current.status not in {"pending", "running"}:
                return Outcome(current.status if current else "failed", current)
            if current.cancel_requested_by:
                return self._end(run.id, "cancelled", None)
            if not store.take_run(self.db, run.id, self.owner, self.lease):
                return Outcome("lost")
            # A few rounds of requests per claim: fewer round trips to the database, and the pool
            # stays full while the rounds run (the semaphores bound what is in flight).
            # The first example alone first: a model that cannot be asked is found out before the
            # other model is paid to answer every example.
            probing = not any(self._ok.get(s) for s in slots)
            claimed = store.claim_answers(self.db, run.id, self.owner, self.lease, slots=slots, limit=len(slots) if probing else batch * ROUNDS)
            if not claimed:
                c = store.counts(self.db, run.id)
                if any(c.get(s, {}).get("claimed") for s in slots):
                    # Another worker's claim, or one a dead worker left: wait for it to end or run out.
                    self.sleep(0.5)
                    continue
                return None
            for result in pool.map(self._answer, [current] * len(claimed), claimed):
                if isinstance(result, CannotAsk):
                    self._abort.set()
                    raise result
            if self.on_progress is not None:
                k = store.examples_settled(self.db, run.id, ["model", "baseline"])
                self.on_progress(current, k, current.examples)

    def _end(self, run_id: int, status: str, error: str | None) -> Outcome:
        run = store.get_run(self.db, run_id)
        if run is None:
            return Outcome("failed")
        from bot.evals.summary import summarise

        summary = summarise(run, store.rows(self.db, run_id))
        if error:
            summary["error"] = error
        ok = store.finish(self.db, run_id, self.owner, summary, status=status, plan=(lambda s, r: self.on_end(s, r, status)) if self.on_end else None)
        return Outcome(status if ok else "lost", store.get_run(self.db, run_id))

    # ---- one answer -------------------------------------------------------------------------

    def _target(self, run: EvalRun, slot: str) -> tuple[str, str]:
        if slot == "model":
            return run.provider, run.model
        if slot == "baseline":
            return run.baseline_provider, run.baseline
        return run.judge_provider or run.provider, run.judge or ""

    def _messages(self, run: EvalRun, c: store.Claimed) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None] | None:
        if c.slot != "judge":
            return c.prompt["messages"], c.prompt.get("tools")
        pair = store.pair_of(self.db, run.id, c.example_id)
        if pair is None:
            return None  # one of the two answers failed: nothing to judge
        model_first = judge_order(run.id, c.example_id)
        first, second = (pair[0], pair[1]) if model_first else (pair[1], pair[0])
        ref = c.reference.get("content") or str(c.reference.get("tool_calls"))
        return scorers.judge_messages(c.prompt["messages"], ref, first, second), None

    def _answer(self, run: EvalRun, c: store.Claimed) -> CannotAsk | None:
        provider_name, model = self._target(run, c.slot)
        if c.attempts > MAX_CLAIMS:
            store.record_failure(self.db, c, self.owner, "claimed too often (its workers stopped)", final=True)
            return None
        built = self._messages(run, c)
        if built is None:
            store.record_failure(self.db, c, self.owner, "no pair of answers to judge", final=True)
            return None
        messages, tools = built
        provider = self.providers.get(provider_name)
        if provider is None:
            return CannotAsk(f"the provider {provider_name} is not enabled here")
        error = "not asked"
        for attempt in range(self.max_attempts):
            if self._abort.is_set():
                store.record_failure(self.db, c, self.owner, "not asked: the run stopped", final=False)
                return None
            if self.stop.is_set():
                store.record_failure(self.db, c, self.owner, "worker stopping", final=False)
                return None
            started = time.monotonic()
            try:
                with self._locks[provider_name]:
                    # Renewed per request, not per batch: a batch (slow answers, Retry-After waits)
                    # can outlast the claim, and a row another worker claimed since is theirs to ask.
                    if not store.extend_claim(self.db, c, self.owner, self.lease, run_id=run.id):
                        return None
                    reply: ChatReply = provider.chat(model, messages, tools=tools, max_tokens=ANSWER_TOKENS if c.slot != "judge" else 8, temperature=0.0, seed=SEED)
            except ProviderRateLimited as exc:
                error = exc.reason
                self.sleep(min(MAX_WAIT, exc.retry_after if exc.retry_after is not None else 2.0 ** attempt))
                continue
            except (ProviderNotFound, ProviderAuthError, ProviderPermissionError, ModelNotServed) as exc:
                store.record_failure(self.db, c, self.owner, exc.reason, final=False)
                return CannotAsk(f"{model} cannot be asked: {exc.reason}")
            except ProviderInvalidRequest as exc:
                # This example refused (a content filter, a prompt over the context): counted with the
                # provider's reason, and the others asked. Only a run where nothing could be answered fails.
                reason = exc.reason if not exc.code or exc.code in exc.reason else f"{exc.code}: {exc.reason}"
                store.record_failure(self.db, c, self.owner, reason, final=True, refused=True)
                return None
            except ProviderError as exc:
                error = exc.reason
                self.sleep(min(MAX_WAIT, 0.25 * 2 ** attempt))
                continue
            latency = int((time.monotonic() - started) * 1000)
            calls = [{"name": t.name, "arguments": t.arguments} for t in reply.tool_calls]
            store.record_answer(self.db, c, self.owner, content=reply.content, tool_calls=calls, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens, latency_ms=latency)
            self._ok[c.slot] = self._ok.get(c.slot, 0) + 1
            return None
        store.record_failure(self.db, c, self.owner, error, final=True)
        return None


def nothing_answered(db: Database, run: EvalRun) -> str | None:
    """Why the run has no figure at all, naming the model(s) that answered no example; None when
    some example has both answers. A run that scored something is done, whatever it could not ask."""
    if not run.examples:
        return None
    c = store.counts(db, run.id)
    if store.examples_scored(db, run.id):
        return None
    silent = []
    for slot, model in (("model", run.model), ("baseline", run.baseline)):
        got = c.get(slot, {})
        if not got.get("done"):
            why = store.first_error(db, run.id, slot)
            silent.append(f"{model} answered none of the {run.examples} examples" + (f" ({why})" if why else ""))
    return "; ".join(silent) or "no example was answered by both models"

