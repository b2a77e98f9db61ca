"""Datasets into ftbot from Slack, end to end over HTTP: the `/ft upload` form, a file shared in a DM
(delivered as two events and retried), "upload anyway", Slack's sign-in page, big files through the
Uploads API, reuse of identical bytes, `/ft files` and `/ft start <name>`."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from bot.datasets import intake
from bot.messages.table import table_texts
from storage.models import Dataset
from tests.conftest import wait_for


def chat_lines(n: int, tag: str = "") -> bytes:
    return b"".join(
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": f"question {tag}{i}"},
                    {"role": "assistant", "content": f"answer {tag}{i}"},
                ]
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def file_values(fid: str, name: str) -> dict[str, Any]:
    return {
        "file": {"file": {"type": "file_input", "files": [{"id": fid, "name": name}]}},
        "model": {"model": {"type": "static_select", "selected_option": {"value": "gpt-4o-mini-2024-07-18"}}},
    }


def posts(slack, channel: str) -> list[dict[str, Any]]:  # noqa: ANN001
    return [c.args for c in slack.calls("chat.postMessage") if c.args.get("channel") == channel]


def sandbox_files(sandbox) -> list[dict[str, Any]]:  # noqa: ANN001
    with sandbox.state.lock:
        return [dict(f, content=sandbox.state.file_content[f["id"]]) for f in sandbox.state.files.values()]


def datasets(bot) -> list[Dataset]:  # noqa: ANN001
    with bot.services.db.session() as s:
        rows = s.scalars(select(Dataset).order_by(Dataset.id)).all()
        s.expunge_all()
        return rows


@pytest.fixture
def bot(start_bot, sqlite_url):  # noqa: ANN001
    return start_bot(sqlite_url)


def test_upload_form_checks_uploads_and_reuses_identical_bytes(bot, slack, sandbox) -> None:  # noqa: ANN001
    reply = bot.slack.command("upload", trigger_id="123.456")
    assert reply.status == 200
    opened = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    element = opened["blocks"][0]["element"]
    assert element["type"] == "file_input" and element["filetypes"] == ["jsonl"] and element["max_files"] == 1

    content = chat_lines(12)
    f = slack.add_user_file("support.jsonl", content)
    meta = opened["private_metadata"]
    assert bot.slack.view_submission("upload_dataset", file_values(f["id"], "support.jsonl"), private_metadata=meta).status == 200
    report = wait_for(lambda: posts(slack, "C0001"))[0]
    assert "support.jsonl" in report["text"] and "clean" in report["text"]
    blocks = json.dumps(report["blocks"])
    assert "/ft start support" in blocks and "<@U0001>" in blocks and "Estimated cost" in blocks
    [uploaded] = sandbox_files(sandbox)
    assert uploaded["content"] == content and uploaded["filename"] == "support.jsonl"  # byte for byte
    [row] = datasets(bot)
    assert (row.name, row.provider_file_id, row.verdict, row.example_count, row.uploaded_by) == ("support.jsonl", uploaded["id"], "clean", 12, "U0001")
    assert row.tokens and row.bytes == len(content)

    # The same bytes again under another name: no second upload, a second name for the same file.
    g = slack.add_user_file("support-v2.jsonl", content)
    bot.slack.view_submission("upload_dataset", file_values(g["id"], "support-v2.jsonl"), private_metadata=meta)
    second = wait_for(lambda: posts(slack, "C0001")[1:])[0]
    assert "already uploaded" in json.dumps(second["blocks"]) and uploaded["id"] in second["text"]
    assert len(sandbox_files(sandbox)) == 1
    assert [d.provider_file_id for d in datasets(bot)] == [uploaded["id"]] * 2

    # `/ft files` lists it; `/ft start support` (no .jsonl) finds it.
    before = len(slack.responses())
    bot.slack.command("files")
    answer = wait_for(lambda: slack.responses()[before:])[0]
    rows = table_texts(next(b for b in answer["blocks"] if b["type"] == "table"))
    mine = [r for r in rows[1:] if r[0] == "support-v2.jsonl"]
    assert mine and mine[0][1] == uploaded["id"] and mine[0][3] == "12" and mine[0][6] == "<@U0001>", rows
    before = len(slack.responses())
    bot.slack.command("start support-v2 model=gpt-4o-mini-2024-07-18")
    started = wait_for(lambda: slack.responses()[before:])[0]
    assert "Started" in started["text"], started
    with sandbox.state.lock:
        assert [j.obj["training_file"] for j in sandbox.state.jobs.values()] == [uploaded["id"]]


def test_a_form_without_a_file_is_refused_in_the_form(bot) -> None:  # noqa: ANN001
    reply = bot.slack.view_submission("upload_dataset", {"file": {"file": {"type": "file_input", "files": []}}})
    assert reply.json == {"response_action": "errors", "errors": {"file": "Choose one .jsonl file."}}


def test_a_file_shared_in_a_dm_twice_and_retried_is_handled_once(bot, slack, sandbox) -> None:  # noqa: ANN001
    content = chat_lines(15, "dm")
    f = slack.add_user_file("dm.jsonl", content)
    message = {"type": "message", "subtype": "file_share", "channel": "D0001", "channel_type": "im", "user": "U0002", "ts": "1700000000.000100", "files": [{"id": f["id"], "name": "dm.jsonl"}]}
    shared = {"type": "file_shared", "file_id": f["id"], "user_id": "U0002", "channel_id": "D0001", "file": {"id": f["id"]}, "event_ts": "1700000000.000200"}
    assert bot.slack.event(message).status == 200
    assert bot.slack.event(shared, event_id="EvSHARED").status == 200
    assert bot.slack.event(shared, event_id="EvSHARED", retry_num=1).status == 200
    wait_for(lambda: len(slack.calls("files.info")) >= 3)
    report = wait_for(lambda: posts(slack, "D0001"))[0]
    assert "<@U0002>" in json.dumps(report["blocks"])
    time.sleep(0.5)  # what must NOT happen: a second report or upload from the other deliveries
    assert len(posts(slack, "D0001")) == 1
    [uploaded] = sandbox_files(sandbox)
    assert uploaded["content"] == content
    assert [d.uploaded_by for d in datasets(bot)] == ["U0002"]


def test_errors_block_the_upload_until_upload_anyway(bot, slack, sandbox) -> None:  # noqa: ANN001
    content = chat_lines(5) + b"not json\n"
    f = slack.add_user_file("small.jsonl", content)
    bot.slack.event({"type": "file_shared", "file_id": f["id"], "user_id": "U0001", "channel_id": "C0002"})
    report = wait_for(lambda: posts(slack, "C0002"))[0]
    text = json.dumps(report["blocks"], ensure_ascii=False)
    assert "Not one JSON object — line 6" in text and "5 examples: the provider requires at least 10" in text
    assert sandbox_files(sandbox) == [] and datasets(bot) == []
    button = next(b for b in report["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["action_id"] == "dataset_upload_anyway"
    bot.slack.block_action("dataset_upload_anyway", button["value"], channel="C0002")
    second = wait_for(lambda: posts(slack, "C0002")[1:])[0]
    assert "uploaded as" in json.dumps(second["blocks"]).lower()
    [uploaded] = sandbox_files(sandbox)
    assert uploaded["content"] == content
    assert [d.verdict for d in datasets(bot)] == ["errors"]


def test_slacks_sign_in_page_is_explained_not_validated(bot, slack, sandbox) -> None:  # noqa: ANN001
    f = slack.add_user_file("locked.jsonl", chat_lines(12))
    slack.withhold_downloads()
    try:
        bot.slack.event({"type": "file_shared", "file_id": f["id"], "user_id": "U0001", "channel_id": "C0003"})
        report = wait_for(lambda: posts(slack, "C0003"))[0]
    finally:
        slack.withhold_downloads(False)
    assert "sign-in page" in report["text"] and "files:read" in report["text"]
    assert sandbox_files(sandbox) == [] and datasets(bot) == []
    # Nothing was claimed for good: sharing it again once the scope is there works.
    bot.slack.event({"type": "file_shared", "file_id": f["id"], "user_id": "U0001", "channel_id": "C0003"})
    wait_for(lambda: posts(slack, "C0003")[1:])
    assert len(sandbox_files(sandbox)) == 1


def test_a_big_file_streams_and_goes_up_in_parts(bot, slack, sandbox, monkeypatch) -> None:  # noqa: ANN001
    # The thresholds are parameters, so "bigger than the Files API takes" stays small and fast here.
    monkeypatch.setattr(bot.services.provider, "files_api_limit", 10_000)
    monkeypatch.setattr(bot.services.provider, "upload_part_size", 4_096)
    content = chat_lines(300, "big")
    assert len(content) > 10_000
    f = slack.add_user_file("big.jsonl", content)
    bot.slack.event({"type": "file_shared", "file_id": f["id"], "user_id": "U0001", "channel_id": "C0004"})
    wait_for(lambda: posts(slack, "C0004"))
    [uploaded] = sandbox_files(sandbox)
    assert uploaded["content"] == content
    assert sandbox.state.requests.get("add_part", 0) == -(-len(content) // 4_096)

    # Larger than ftbot accepts at all: refused before anything is read.
    monkeypatch.setattr(intake, "LIMITS", intake.Limits(max_bytes=1_000))
    g = slack.add_user_file("huge.jsonl", chat_lines(40, "huge"))
    bot.slack.event({"type": "file_shared", "file_id": g["id"], "user_id": "U0001", "channel_id": "C0005"})
    refused = wait_for(lambda: posts(slack, "C0005"))[0]
    assert "at most 1,000" in refused["text"]


def test_other_files_and_the_bots_own_are_ignored(bot, slack, sandbox) -> None:  # noqa: ANN001
    png = slack.add_user_file("chart.png", b"\x89PNG...", filetype="png")
    mine = slack.add_user_file("mine.jsonl", chat_lines(12))
    bot.slack.event({"type": "file_shared", "file_id": png["id"], "user_id": "U0001", "channel_id": "C0006"})
    bot.slack.event({"type": "file_shared", "file_id": mine["id"], "user_id": "UBOT", "channel_id": "C0006"})
    wait_for(lambda: slack.calls("files.info"))
    time.sleep(0.5)  # what must NOT happen: an answer about either file
    assert posts(slack, "C0006") == [] and sandbox_files(sandbox) == []


def test_only_operators_may_upload(start_bot, sqlite_url, slack, sandbox) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url, operators=("U0OPS",))
    f = slack.add_user_file("team.jsonl", chat_lines(12))
    shared = {"type": "file_shared", "file_id": f["id"], "user_id": "U0001", "channel_id": "C0007"}
    message = {"type": "message", "subtype": "file_share", "channel": "C0007", "user": "U0001", "ts": "1700000001.000100", "files": [{"id": f["id"], "name": "team.jsonl"}]}
    bot.slack.event(shared)
    bot.slack.event(message)  # Slack announces one share twice: the refusal is said once
    denied = wait_for(lambda: slack.calls("chat.postEphemeral"))[0].args
    assert denied["user"] == "U0001" and "Only operators" in denied["text"]
    wait_for(lambda: len(slack.calls("files.info")) >= 2)
    assert len(slack.calls("chat.postEphemeral")) == 1
    assert posts(slack, "C0007") == [] and sandbox_files(sandbox) == []
    reply = bot.slack.view_submission("upload_dataset", file_values(f["id"], "team.jsonl"))
    assert "Only operators" in json.dumps(reply.json)


def test_report_survives_a_slack_outage_and_falls_back_to_a_dm(start_bot, sqlite_url, slack) -> None:  # noqa: ANN001
    """The report goes through the outbox: a failing Slack delays it, the worker delivers it once; from a
    private channel the bot is not in, it comes as a DM instead."""
    bot = start_bot(sqlite_url, worker=True)
    slack.fail("chat.postMessage", 500, count=3)  # more than a Slack client retries: the outbox sends it later
    f = slack.add_user_file("outage.jsonl", chat_lines(12, "o"))
    assert bot.slack.view_submission("upload_dataset", file_values(f["id"], "outage.jsonl"), private_metadata=json.dumps({"channel": "C0001"})).status == 200
    report = wait_for(lambda: [m for m in slack.channel_messages("C0001") if "outage.jsonl" in m.get("text", "")], timeout=15)
    assert len(report) == 1 and slack.calls("chat.postMessage")[0].status == 500  # the first attempt failed

    slack.set_channel("G0SECRET", private=True, member=False)
    g = slack.add_user_file("secret.jsonl", chat_lines(12, "s"))
    bot.slack.view_submission("upload_dataset", file_values(g["id"], "secret.jsonl"), private_metadata=json.dumps({"channel": "G0SECRET"}))
    dm = wait_for(lambda: [m for m in slack.channel_messages("U0001") if "secret.jsonl" in m.get("text", "")], timeout=15)
    assert len(dm) == 1 and not slack.channel_messages("G0SECRET")


def test_a_claim_left_by_a_dead_process_is_taken_over(bot, slack, sandbox) -> None:  # noqa: ANN001
    """A process killed mid-download leaves its claim unfinished: a later share of the file is handled
    (and answered) once the claim is old enough; a fresh unfinished claim still means "in hand"."""
    from datetime import timedelta

    from storage.models import DatasetIntake
    from storage.types import utcnow

    fresh = slack.add_user_file("fresh.jsonl", chat_lines(12, "f"))
    stale = slack.add_user_file("stale.jsonl", chat_lines(12, "s"))
    with bot.services.db.session() as s:
        s.add(DatasetIntake(team_id="T0001", slack_file_id=fresh["id"], kind="validate", user_id="U0001", channel_id="C0004", created_at=utcnow()))
        s.add(DatasetIntake(team_id="T0001", slack_file_id=stale["id"], kind="validate", user_id="U0001", channel_id="C0004", created_at=utcnow() - timedelta(hours=1)))
    for f in (fresh, stale):
        assert bot.slack.event({"type": "file_shared", "file_id": f["id"], "user_id": "U0001", "channel_id": "C0004"}).status == 200
    report = wait_for(lambda: [m for m in slack.channel_messages("C0004") if "stale.jsonl" in m.get("text", "")])
    assert len(report) == 1 and [d.name for d in datasets(bot)] == ["stale.jsonl"]

    def finished() -> dict:
        with bot.services.db.session() as s:
            return {r.slack_file_id: r.finished_at for r in s.scalars(select(DatasetIntake))}

    wait_for(lambda: finished()[stale["id"]] is not None)
    assert finished()[fresh["id"]] is None
    assert not [m for m in slack.channel_messages("C0004") if "fresh.jsonl" in m.get("text", "")]


def test_a_file_shared_with_ray_as_the_default_is_checked_for_ray_not_gpt_4o_mini(start_bot, sqlite_url, slack, tmp_path) -> None:  # noqa: ANN001
    """A Ray cluster trains on the team's own GPUs: no OpenAI price, no OpenAI retirement notice, the
    Ray adapter's default model and epochs, and the upload form offers Ray's base models."""
    pytest.importorskip("ray.job_submission", reason="the ray extra is not installed (pip install -e '.[dev,ray]')")
    import socket

    from bot.provider.ray_adapter import RayProvider
    from bot.provider.ray_defaults import BASE_MODELS, DEFAULTS

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # no head is needed to check and store a dataset
    bot = start_bot(sqlite_url)
    bot.services.providers = {"ray": RayProvider(f"http://127.0.0.1:{closed}", entrypoint="python t.py {train} {output}", storage=str(tmp_path / "store"), max_retries=0, timeout=2)}
    bot.services.default_provider = "ray"

    bot.slack.command("upload", trigger_id="123.456")
    opened = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    offered = [o["value"] for b in opened["blocks"] for o in b.get("element", {}).get("options", [])]
    assert offered and offered == list(BASE_MODELS), offered

    f = slack.add_user_file("ray.jsonl", chat_lines(12, "ray"))
    message = {"type": "message", "subtype": "file_share", "channel": "D0001", "channel_type": "im", "user": "U0001", "ts": "1700000000.000100", "files": [{"id": f["id"], "name": "ray.jsonl"}]}
    assert bot.slack.event(message).status == 200
    report = wait_for(lambda: posts(slack, "D0001"))[0]
    everything = json.dumps(report["blocks"], ensure_ascii=False) + report["text"]
    assert "your own cluster: no price" in everything, everything
    assert "$" not in everything and "OpenAI" not in everything and "gpt-4o-mini" not in everything
    assert "retir" not in everything.lower()
    assert f"{DEFAULTS['n_epochs']} epochs ×" in everything and "approximate" in everything
    [row] = datasets(bot)
    assert row.provider == "ray" and row.provider_file_id.startswith("file-")
