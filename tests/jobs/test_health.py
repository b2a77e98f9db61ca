"""Training-health analysis on crafted metric streams (the end-to-end path is in tests/worker)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from bot.jobs.health import CheckpointSample, HealthSettings, MetricSample, assess
from bot.messages.health import health_message
from bot.slack_standin.server import _message_problem

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def stream(train, valid=None, *, every: float = 10.0, eval_every: int = 5):  # noqa: ANN001, ANN201
    out = []
    for i, tl in enumerate(train, start=1):
        vl = valid[(i // eval_every) - 1] if valid and i % eval_every == 0 and (i // eval_every) - 1 < len(valid) else None
        out.append(MetricSample(i, tl, vl, None, T0 + timedelta(seconds=every * i)))
    return out


def kinds(findings) -> list[str]:  # noqa: ANN001
    return [f.kind for f in findings]


def test_a_healthy_run_says_nothing() -> None:
    train = [2.0 * 0.97**i for i in range(100)]
    valid = [2.0 * 0.95**i for i in range(20)]
    pts = stream(train, valid)
    assert assess(pts, status="running", total_steps=100, now=pts[-1].created_at + timedelta(seconds=5)) == []


def test_overfitting_names_the_best_step_and_its_checkpoint() -> None:
    train = [2.0 * 0.97**i for i in range(100)]  # keeps falling
    valid = [1.5 - 0.1 * i for i in range(8)] + [0.8 + 0.08 * i for i in range(12)]  # best at eval 8, then rises
    pts = stream(train, valid)
    ckpts = [CheckpointSample(25, "ft:m:o::j:ckpt-step-25"), CheckpointSample(50, "ft:m:o::j:ckpt-step-50"), CheckpointSample(75, "ft:m:o::j:ckpt-step-75")]
    found = assess(pts, status="running", total_steps=100, checkpoints=ckpts, now=pts[-1].created_at)
    assert kinds(found) == ["overfitting"]
    f = found[0]
    # The smoothed validation loss is best a little after the raw minimum (eval 8 = step 40).
    assert 40 <= f.step <= 60 and f.model in {"ft:m:o::j:ckpt-step-25", "ft:m:o::j:ckpt-step-50"}
    assert "has not improved" in f.detail and not f.severe


def test_full_validation_loss_is_preferred_when_reported() -> None:
    pts = [MetricSample(s, 1.0 / s, None, fv, T0 + timedelta(seconds=s)) for s, fv in [(10, 0.9), (20, 0.7), (30, 0.75), (40, 0.8), (50, 0.85)]]
    found = assess(pts, status="running", total_steps=50, now=T0 + timedelta(seconds=51), cfg=HealthSettings(patience=3))
    assert kinds(found) == ["overfitting"] and found[0].step == 20


def test_a_plateau_is_not_overfitting() -> None:
    train = [1.0] * 100
    valid = [1.0] * 20
    pts = stream(train, valid)
    assert "overfitting" not in kinds(assess(pts, status="running", total_steps=100, now=pts[-1].created_at))


def test_nan_loss_is_severe_divergence_at_once() -> None:
    pts = stream([1.0, 0.9, float("nan"), 0.8])
    found = assess(pts, status="running", total_steps=100, now=pts[-1].created_at)
    assert kinds(found) == ["divergence"] and found[0].severe and found[0].step == 3
    assert math.isnan(pts[2].train_loss)


def test_loss_climbing_past_a_fifth_of_the_steps_is_divergence_but_not_before() -> None:
    train = [1.0] * 10 + [1.0 + 0.1 * i for i in range(20)]  # climbs to ~2.9
    early = stream(train[:15])
    assert assess(early, status="running", total_steps=100, now=early[-1].created_at) == []  # 15 % done: warm-up
    pts = stream(train)
    found = assess(pts, status="running", total_steps=100, now=pts[-1].created_at)
    assert kinds(found) == ["divergence"] and "early level" in found[0].detail


def test_stalled_running_job_and_long_queue() -> None:
    pts = stream([1.0 - 0.01 * i for i in range(20)], every=10)
    last = pts[-1].created_at
    assert assess(pts, status="running", total_steps=100, now=last + timedelta(minutes=4)) == []  # under the 5-minute floor
    found = assess(pts, status="running", total_steps=100, now=last + timedelta(minutes=6))
    assert kinds(found) == ["stalled"] and found[0].severe
    q = assess([], status="queued", total_steps=None, status_since=T0, now=T0 + timedelta(hours=3))
    assert kinds(q) == ["queued_long"] and "3.0 hours" in q[0].detail
    assert assess([], status="queued", total_steps=None, status_since=T0, now=T0 + timedelta(hours=1)) == []


def test_on_success_the_best_checkpoint_and_billed_tokens() -> None:
    ckpts = [CheckpointSample(10, "ft:a:ckpt-step-10", 0.50), CheckpointSample(20, "ft:a:ckpt-step-20", 0.42), CheckpointSample(30, "ft:a:ckpt-step-30", 0.61)]
    found = assess([], status="succeeded", total_steps=30, checkpoints=ckpts, now=T0, final_model="ft:a", trained_tokens=120_000, estimated_tokens=100_000)
    assert kinds(found) == ["best_checkpoint", "billed_tokens"]
    assert found[0].model == "ft:a:ckpt-step-20" and "+20%" in found[1].detail
    same = assess([], status="succeeded", total_steps=30, checkpoints=ckpts[:2], now=T0, final_model="ft:a", trained_tokens=105_000, estimated_tokens=100_000)
    assert same == []  # the final checkpoint is the best; tokens within 10 %


def test_message_escapes_and_stays_within_limits() -> None:
    pts = stream([1.0, float("inf")])
    f = assess(pts, status="running", total_steps=10, now=pts[-1].created_at)[0]
    msg = health_message("ftjob-<!channel>", f, in_channel=True)
    assert "<!channel>" not in msg["text"] and "<!channel>" not in json.dumps(msg["blocks"])
    assert msg["blocks"][0] == {"type": "alert", "level": "error", "text": {"type": "mrkdwn", "text": ":rotating_light: *Training diverged* on `ftjob-&lt;!channel&gt;`"}}
    assert _message_problem(msg) is None
    over = assess(stream([2.0 * 0.97**i for i in range(100)], [1.5 - 0.1 * i for i in range(8)] + [0.8 + 0.08 * i for i in range(12)]), status="running", total_steps=200, now=T0)
    assert [health_message("ftjob-1", x)["blocks"][0]["level"] for x in over if x.kind == "overfitting"] == ["warning"]


def test_the_summary_folded_poll_by_poll_through_json_judges_like_the_whole_series() -> None:
    import json

    from bot.jobs.health import Summary, assess_summary, summarise

    train = [2.0 * 0.97**i for i in range(100)]
    valid = [1.5 - 0.1 * i for i in range(8)] + [0.8 + 0.08 * i for i in range(12)]
    pts = stream(train, valid)
    stored: dict = {}
    for i in range(0, 100, 7):  # polls bring 7 points at a time; the summary lives in a JSON column between them
        s = summarise(pts[i : i + 7], summary=Summary.from_dict(stored))
        stored = json.loads(json.dumps(s.to_dict()))
    again = summarise(pts[40:60], summary=Summary.from_dict(stored))  # a repeated poll folds nothing twice
    assert again.to_dict() == stored
    facts = {"status": "running", "total_steps": 100, "now": pts[-1].created_at}
    assert assess_summary(Summary.from_dict(stored), **facts) == assess(pts, **facts)
    assert len(json.dumps(stored)) < 4000  # a few numbers, however long the run


def test_a_resumed_job_is_not_stalled_by_its_pause_and_a_silent_start_is() -> None:
    pts = stream([1.0 - 0.01 * i for i in range(20)], every=10)
    last = pts[-1].created_at
    resumed = last + timedelta(hours=1)
    later = resumed + timedelta(minutes=4)
    assert assess(pts, status="running", total_steps=100, status_since=resumed, now=later) == []
    assert kinds(assess(pts, status="running", total_steps=100, status_since=resumed, now=resumed + timedelta(minutes=6))) == ["stalled"]
    # Running, yet not one step reported: judged against the queue threshold (2 hours by default).
    assert assess([], status="running", total_steps=100, status_since=T0, now=T0 + timedelta(hours=1)) == []
    silent = assess([], status="running", total_steps=100, status_since=T0, now=T0 + timedelta(hours=3))
    assert kinds(silent) == ["stalled"] and "no step has been reported yet" in silent[0].detail
    assert assess(pts, status="paused", total_steps=100, status_since=last, now=last + timedelta(days=1)) == []


def test_nan_survives_json_storage_as_a_string_and_is_read_back() -> None:
    import json

    from bot.jobs.health import as_loss
    from bot.jobs.store import json_safe

    data = json.loads(json.dumps(json_safe({"step": 3, "train_loss": float("nan"), "valid_loss": float("inf"), "x": [float("-inf")]}), allow_nan=False))
    assert data == {"step": 3, "train_loss": "NaN", "valid_loss": "Infinity", "x": ["-Infinity"]}
    assert math.isnan(as_loss(data["train_loss"])) and as_loss(data["valid_loss"]) == math.inf
    assert as_loss("0.5") is None and as_loss(True) is None and as_loss(2) == 2.0


def test_health_settings_defaults_and_one_line_errors() -> None:
    import pytest

    from bot.jobs.health_watch import health_settings
    from bot.settings import SettingsError, load_settings

    cfg = health_settings(load_settings({}, dotenv_path=None))
    assert cfg == HealthSettings()
    s = load_settings({"FTBOT_HEALTH_PATIENCE": "5", "FTBOT_HEALTH_STALL_MINUTES": "0.5", "FTBOT_HEALTH_ALERTS": "0"}, dotenv_path=None)
    assert health_settings(s).patience == 5 and health_settings(s).stall_minimum == timedelta(seconds=30) and not s.health_alerts
    for name, value in [("FTBOT_HEALTH_PATIENCE", "0"), ("FTBOT_HEALTH_PATIENCE", "three"), ("FTBOT_HEALTH_DIVERGENCE", "1"), ("FTBOT_HEALTH_QUEUED_MINUTES", "nan"), ("FTBOT_HEALTH_ALERTS", "maybe")]:
        with pytest.raises(SettingsError) as e:
            load_settings({name: value}, dotenv_path=None)
        assert name in str(e.value) and "\n" not in str(e.value)


def test_a_few_full_validation_losses_leave_the_judging_to_the_step_series() -> None:
    # Three epochs, so three full validation losses: too few for a patience of 3, yet the smoothed
    # step validation loss shows the run overfitting within them.
    train = [2.0 * 0.97**i for i in range(90)]
    valid = [1.5 - 0.1 * i for i in range(8)] + [0.8 + 0.08 * i for i in range(10)]
    pts = stream(train, valid)
    pts = [MetricSample(p.step, p.train_loss, p.valid_loss, {30: 0.8, 60: 1.1, 90: 1.5}.get(p.step), p.created_at) for p in pts]
    found = assess(pts, status="running", total_steps=90, now=pts[-1].created_at)
    assert kinds(found) == ["overfitting"] and 40 <= found[0].step <= 60


def test_a_long_noisy_plateau_is_never_overfitting_while_a_real_one_is_found() -> None:
    import random

    from bot.jobs.health import Summary, overfitting

    cfg = HealthSettings()

    def fired(seed: int, total: int, overfit: bool) -> bool:
        rng, s = random.Random(seed), Summary()
        for k in range(1, total + 1):
            noise = rng.uniform(-0.04, 0.04)
            if overfit:
                tl = 1.9 * math.exp(-5.0 * k / total) + 0.02 + noise * 0.3
                vl = 1.9 * math.exp(-5.0 * k / total) + 0.3 + 0.6 * max(0.0, k / total - 0.4) + rng.uniform(-0.03, 0.03)
            else:  # the sandbox's own curve: training flattens out, validation follows it with noise
                tl = 1.9 * math.exp(-3.0 * k / total) + 0.12 + noise
                vl = tl + 0.08 + rng.uniform(0, 0.05)
            evaluated = k % 10 == 0
            s.add(MetricSample(k, tl, vl if evaluated else None, None, T0 + timedelta(seconds=k)), cfg)
            if evaluated and overfitting(s, (), cfg) is not None:  # judged at every evaluation, as polls do
                return True
        return False

    assert not any(fired(seed, 3000, overfit=False) for seed in range(20))
    assert all(fired(seed, 1000, overfit=True) for seed in range(20))
