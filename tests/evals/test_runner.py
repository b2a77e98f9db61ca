"""The store and the runner against the OpenAI sandbox through the real openai client, on SQLite and
PostgreSQL: exact figures on the crafted dataset, each (example, model) asked once however many
workers run and whoever dies, failures retried then counted, a model that cannot be asked."""

from __future__ import annotations

import threading

import pytest

from bot.evals import store
from bot.evals.examples import parse_bytes
from bot.evals.runner import EvalRunner
from bot.provider.openai_adapter import OpenAIProvider
from bot.sandbox.state import Faults
from storage.db import Database
from storage.models import EvalAnswer
from tests.evals.conftest import BASE, expected, train
from tests.evals.crafted import dataset, jsonl


def _run(db: Database, model: str, rows, key: str = "k1", baseline: str = BASE) -> int:  # noqa: ANN001
    examples = parse_bytes(jsonl(rows)).examples
    spec = store.RunSpec(request_key=key, model=model, provider="openai", baseline=baseline, baseline_provider="openai", scores=("exact", "similarity", "json", "tools"), source_file="file-x", source_note="test")
    run, created = store.create_run(db, spec, examples, [10] * len(examples), skipped={}, estimate={})
    assert created
    return run.id


def _provider(sandbox) -> OpenAIProvider:  # noqa: ANN001
    return OpenAIProvider(api_key="sk-test", base_url=sandbox.url, max_retries=0, timeout=5)


def test_figures_on_the_crafted_dataset(db_url, sandbox) -> None:  # noqa: ANN001
    rows = dataset()
    _, model, _ = train(sandbox, rows)
    sandbox.state.memory.noise = 0.25
    db = Database(db_url)
    try:
        run_id = _run(db, model, rows)
        progress: list[int] = []
        out = EvalRunner(db, {"openai": _provider(sandbox)}, "w1", concurrency=4, on_progress=lambda run, k, n: progress.append(k)).drive(run_id)
        assert out.status == "done"
        summary = out.run.summary
        want = expected(rows, model, BASE, 0.25)
        for name, w in want.items():
            c = summary["comparisons"][name]
            assert c["n"] == w["n"]
            assert c["model"] == pytest.approx(w["model"]) and c["baseline"] == pytest.approx(w["baseline"])
            assert c["ci_low"] <= c["diff"] <= c["ci_high"]
        assert summary["comparisons"]["exact"]["n"] == 10 and summary["comparisons"]["tools"]["n"] == 2
        assert summary["scored"] == 12 and summary["slots"]["model"]["failed"] == 0
        assert summary["slots"]["model"]["usd"] is not None and summary["slots"]["model"]["latency_p50_ms"] is not None
        assert progress and progress[-1] == 12 and progress == sorted(progress)
        assert len(summary["most_different"]) == 3
        # each (model, prompt) asked exactly once
        assert sorted(set(sandbox.state.memory.asked.values())) == [1] and len(sandbox.state.memory.asked) == 24
        # asked again: the same run, nothing asked
        again, created = store.create_run(db, store.RunSpec(request_key="k1", model=model, provider="openai", baseline=BASE, baseline_provider="openai", scores=(), source_file=None, source_note=""), [], [], skipped={}, estimate={})
        assert not created and again.id == run_id and again.status == "done"
    finally:
        db.dispose()


def test_two_workers_never_ask_the_same_example_twice(db_url, sandbox) -> None:  # noqa: ANN001
    rows = dataset(20, 0, 0)
    _, model, _ = train(sandbox, rows)
    sandbox.state.faults = Faults(latency=0.02)
    db = Database(db_url)
    try:
        run_id = _run(db, model, rows)
        # Two workers on the same run: the run lease lets one drive; answer claims keep even a
        # second driver (the lease taken over) from asking what the first holds.
        results = []
        runners = [EvalRunner(db, {"openai": _provider(sandbox)}, f"w{i}", concurrency=3) for i in range(2)]
        threads = [threading.Thread(target=lambda r=r: results.append(r.drive(run_id))) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 2 and "done" in [r.status for r in results]
        assert store.get_run(db, run_id).status == "done"
        assert sorted(set(sandbox.state.memory.asked.values())) == [1] and len(sandbox.state.memory.asked) == 40
        # every answer row claimed and stored once
        with db.session() as s:
            assert {a.attempts for a in s.query(EvalAnswer).filter_by(run_id=run_id)} == {1}
    finally:
        db.dispose()


def test_a_batch_outlasting_the_lease_is_not_asked_twice(db_url, sandbox) -> None:  # noqa: ANN001
    # A claim covers several rounds of requests: with a 2.5 s lease and 0.6 s answers a batch (12 rounds) outlasts
    # it, so a second worker could take the run and its rows while the first still asks them.
    rows = dataset(12, 0, 0)
    _, model, _ = train(sandbox, rows)
    sandbox.state.faults = Faults(latency=0.6)
    db = Database(db_url)
    try:
        run_id = _run(db, model, rows)
        results = []
        first = EvalRunner(db, {"openai": _provider(sandbox)}, "w0", concurrency=2, lease_seconds=2.5)
        second = EvalRunner(db, {"openai": _provider(sandbox)}, "w1", concurrency=2, lease_seconds=2.5)
        t0 = threading.Thread(target=lambda: results.append(first.drive(run_id)))
        t0.start()

        def keep_trying() -> None:  # the second worker keeps reaching for the run while the first drives it
            while t0.is_alive():
                results.append(second.drive(run_id))
                t0.join(0.3)

        t1 = threading.Thread(target=keep_trying)
        t1.start()
        t0.join(120)
        t1.join(120)
        assert store.get_run(db, run_id).status == "done"
        assert sorted(set(sandbox.state.memory.asked.values())) == [1] and len(sandbox.state.memory.asked) == 24
        with db.session() as s:
            assert {a.status for a in s.query(EvalAnswer).filter_by(run_id=run_id)} == {"done"}
    finally:
        db.dispose()


def test_a_killed_worker_is_resumed_without_asking_again(db_url, sandbox) -> None:  # noqa: ANN001
    rows = dataset(20, 0, 0)
    _, model, _ = train(sandbox, rows)
    db = Database(db_url)
    try:
        run_id = _run(db, model, rows)
        stop = threading.Event()
        seen: list[int] = []

        def progress(run, k, n) -> None:  # noqa: ANN001
            seen.append(k)
            if k >= 6:
                stop.set()  # the worker stops between requests, as a shut-down one does

        first = EvalRunner(db, {"openai": _provider(sandbox)}, "w-first", concurrency=2, on_progress=progress, stop=stop).drive(run_id)
        assert first.status == "waiting" and 6 <= store.examples_settled(db, run_id, ["model", "baseline"]) < 20
        asked_before = dict(sandbox.state.memory.asked)
        second = EvalRunner(db, {"openai": _provider(sandbox)}, "w-second", concurrency=2).drive(run_id)
        assert second.status == "done" and second.run.summary["scored"] == 20
        assert sorted(set(sandbox.state.memory.asked.values())) == [1] and len(sandbox.state.memory.asked) == 40
        assert all(sandbox.state.memory.asked[k] == 1 for k in asked_before)
    finally:
        db.dispose()


def test_a_provider_failing_half_the_requests_is_retried_then_counted(db_url, sandbox) -> None:  # noqa: ANN001
    rows = dataset(16, 0, 0)
    _, model, _ = train(sandbox, rows)
    sandbox.state.fault_rng.seed(11)
    sandbox.state.faults = Faults(rate=0.5, kinds=("500", "429"), path_contains="/chat/completions", retry_after=0.01)
    db = Database(db_url)
    try:
        run_id = _run(db, model, rows)
        out = EvalRunner(db, {"openai": _provider(sandbox)}, "w1", concurrency=4, max_attempts=2, sleep=lambda s: None).drive(run_id)
        assert out.status == "done"
        s = out.run.summary
        failed = s["slots"]["model"]["failed"] + s["slots"]["baseline"]["failed"]
        assert failed > 0 and s["scored"] < 16  # at 50 % with two attempts about a quarter fail
        with db.session() as sess:
            answers = list(sess.query(EvalAnswer).filter_by(run_id=run_id))
        assert {a.status for a in answers} <= {"done", "failed"}
        assert sum(a.status == "failed" for a in answers) == failed
        assert s["comparisons"]["exact"]["n"] == s["scored"]
        assert all(a.error for a in answers if a.status == "failed")
    finally:
        db.dispose()


def test_a_model_that_cannot_be_asked_ends_the_run_with_the_reason(db_url, sandbox) -> None:  # noqa: ANN001
    rows = dataset(10, 0, 0)
    db = Database(db_url)
    try:
        run_id = _run(db, "ft:gpt-4o-mini-2024-07-18:sandbox::gone", rows)
        out = EvalRunner(db, {"openai": _provider(sandbox)}, "w1", concurrency=1).drive(run_id)
        assert out.status == "failed" and "cannot be asked" in out.run.summary["error"]
        assert sum(sandbox.state.memory.asked.values()) <= 2  # stopped at the first refusal (baseline maybe once)
    finally:
        db.dispose()
