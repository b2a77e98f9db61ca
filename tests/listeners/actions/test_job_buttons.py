"""Buttons, clicked as Slack sends them (signed HTTP): on job cards, on `/ft list`, in the App Home tab."""

from __future__ import annotations

import json

from bot.messages.table import table_texts
from tests.conftest import wait_for


def _held_job(chat, **kw) -> str:  # noqa: ANN001, ANN003
    """A job the sandbox keeps in validation until the test lets it go."""
    chat.sandbox.state.timing.validating_seconds = 3600
    return chat.start(**kw)


def _new_responses(slack, n: int) -> list[dict]:  # noqa: ANN001
    return wait_for(lambda: slack.responses()[n:])


def test_card_buttons_cancel_and_are_permission_checked(make_chat, sandbox, slack, sqlite_url) -> None:  # noqa: ANN001
    chat = make_chat(sqlite_url, operators=("U0BOSS",))
    job_id = _held_job(chat, user="U0BOSS")
    card = wait_for(lambda: slack.channel_messages("C0001"))[0]
    assert "job_cancel" in json.dumps(card["blocks"])
    n = len(slack.responses())
    assert chat.click("job_cancel", job_id, user="U0001").status == 200
    denied = _new_responses(slack, n)[0]
    assert ":lock: Only operators" in denied["text"] and denied["response_type"] == "ephemeral" and denied["replace_original"] is False
    assert sandbox.state.get_job(job_id)["status"] == "validating_files"
    n = len(slack.responses())
    assert chat.click("job_cancel", job_id, user="U0BOSS").status == 200
    done = _new_responses(slack, n)[0]
    assert done["text"].startswith(f"<@U0BOSS>: Cancelling `{job_id}`") and done["replace_original"] is False
    assert sandbox.state.get_job(job_id)["status"] == "cancelled"
    # a second click on the stale card says why nothing happens
    n = len(slack.responses())
    chat.click("job_cancel", job_id, user="U0BOSS")
    assert "only a queued, running or paused job can be cancelled" in _new_responses(slack, n)[0]["text"]


def test_pause_and_resume_buttons(chat, sandbox, slack) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.5
    job_id = _held_job(chat, extra="epochs=3 batch=1")
    n = len(slack.responses())
    chat.click("job_pause", job_id)
    assert "is validating files: only a running job can be paused" in _new_responses(slack, n)[0]["text"]
    sandbox.state.timing.validating_seconds = 0.05
    wait_for(lambda: sandbox.state.get_job(job_id)["status"] == "running")
    n = len(slack.responses())
    chat.click("job_pause", job_id)
    assert "Paused" in _new_responses(slack, n)[0]["text"]
    assert sandbox.state.get_job(job_id)["status"] == "paused"
    n = len(slack.responses())
    chat.click("job_resume", job_id)
    assert "Resuming" in _new_responses(slack, n)[0]["text"]
    assert sandbox.state.get_job(job_id)["status"] != "paused"


def test_list_paging_buttons(chat, slack) -> None:  # noqa: ANN001
    fid = chat.upload()
    ids = [chat.ask(f"start {fid} seed={i}")["text"].split("`")[1] for i in range(3)]
    first = chat.ask("list 2")
    older_button = next(e for b in first["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert older_button["text"]["text"] == "Older"
    n = len(slack.responses())
    chat.click("list_page", older_button["value"])
    older = _new_responses(slack, n)[0]
    text = json.dumps(older["blocks"], ensure_ascii=False)
    assert older["replace_original"] is True and "(3–3 of 3)" in text
    rows = table_texts(next(b for b in older["blocks"] if b["type"] == "table"))
    assert [r[2] for r in rows[1:]] == [ids[0]]
    buttons = [e for b in older["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Newer"]
    n = len(slack.responses())
    chat.click("list_page", "not-a-number")  # a tampered value: back to the first page
    assert "(1–3 of 3)" in json.dumps(_new_responses(slack, n)[0]["blocks"], ensure_ascii=False)


def _open_home(chat, slack, user: str) -> dict:  # noqa: ANN001
    n = len(slack.calls("views.publish"))
    assert chat.bot.slack.event({"type": "app_home_opened", "user": user, "channel": "D0001", "tab": "home"}).status == 200
    return wait_for(lambda: slack.calls("views.publish")[n:])[0].args["view"]


def test_home_cancel_by_operator_and_non_operator(make_chat, sandbox, slack, sqlite_url) -> None:  # noqa: ANN001
    chat = make_chat(sqlite_url, operators=("U0BOSS",))
    job_id = _held_job(chat, user="U0BOSS")
    home = _open_home(chat, slack, "U0001")
    assert f'"value": "{job_id}"' in json.dumps(home)

    n = len(slack.calls("views.publish"))
    reply = chat.click("job_cancel", job_id, user="U0001", view=home)
    assert reply.status == 200  # no response_url in the Home tab: no 500
    refused = wait_for(lambda: slack.calls("views.publish")[n:])[0].args
    assert refused["user_id"] == "U0001" and ":lock: Only operators" in refused["view"]["blocks"][0]["text"]["text"]
    assert job_id in json.dumps(refused["view"])  # the tab still shows the jobs
    assert sandbox.state.get_job(job_id)["status"] == "validating_files"

    home = _open_home(chat, slack, "U0BOSS")
    n = len(slack.calls("views.publish"))
    assert chat.click("job_cancel", job_id, user="U0BOSS", view=home).status == 200
    done = wait_for(lambda: slack.calls("views.publish")[n:])[0].args
    assert done["user_id"] == "U0BOSS" and f"Cancelling `{job_id}`" in done["view"]["blocks"][0]["text"]["text"]
    assert sandbox.state.get_job(job_id)["status"] == "cancelled"
    refreshed = json.dumps(done["view"])
    assert "job_cancel" not in refreshed and "cancelled" in refreshed  # the tab is redrawn from the new state

    # clicking the stale button again: the reason shows on the tab, not as an error page
    n = len(slack.calls("views.publish"))
    assert chat.click("job_cancel", job_id, user="U0BOSS", view=home).status == 200
    again = wait_for(lambda: slack.calls("views.publish")[n:])[0].args
    assert "only a queued, running or paused job can be cancelled" in again["view"]["blocks"][0]["text"]["text"]
    assert sum(1 for b in again["view"]["blocks"] if b.get("block_id") == "ftbot_notice") == 1
