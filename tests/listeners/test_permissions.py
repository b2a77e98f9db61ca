"""Operators as a user group: the check answers before Slack's 3-second limit whatever
usergroups.users.list does, cached members expire, and a failing lookup never grants access."""

from __future__ import annotations

import threading

from tests.conftest import wait_for

GROUP = "S0OPS"


def _group_chat(make_chat, slack, sqlite_url, **kw):  # noqa: ANN001, ANN003, ANN202
    slack.set_usergroup(GROUP, ["U0OPS1"])
    chat = make_chat(sqlite_url, operators=("U0BOSS", GROUP), **kw)
    return chat, chat.bot.services.extras["operators"]


def _lookups(slack) -> int:  # noqa: ANN001
    return len(slack.calls("usergroups.users.list"))


def test_members_are_looked_up_once_and_cached(make_chat, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    chat, _ = _group_chat(make_chat, slack, sqlite_url)
    fid = chat.upload()
    assert "Started" in chat.ask(f"start {fid} seed=1", user="U0OPS1")["text"]
    assert "Started" in chat.ask(f"start {fid} seed=2", user="U0OPS1")["text"]
    assert ":lock: Only operators" in chat.ask(f"start {fid} seed=3", user="U0002")["ack"]["text"]
    assert _lookups(slack) == 1
    assert "Started" in chat.ask(f"start {fid} seed=4", user="U0BOSS")["text"]  # listed by id: no lookup
    assert _lookups(slack) == 1 and len(sandbox.state.jobs) == 3


def test_a_slow_lookup_does_not_hold_the_ack(make_chat, slack, sandbox, sqlite_url, monkeypatch) -> None:  # noqa: ANN001
    chat, _ = _group_chat(make_chat, slack, sqlite_url)
    release = threading.Event()
    answer = slack._m_usergroups_users_list

    def slow(args):  # noqa: ANN001, ANN202
        release.wait(10)  # Slack taking its time
        return answer(args)

    monkeypatch.setattr(slack, "_m_usergroups_users_list", slow)
    fid = chat.upload()
    checking = chat.ask(f"start {fid}", user="U0OPS1")["ack"]
    assert "Checking with Slack who the operators are" in checking["text"] and checking["response_type"] == "ephemeral"
    again = chat.ask(f"start {fid} seed=2", user="U0OPS1")["ack"]  # still waiting: one lookup, same answer
    assert "Checking" in again["text"] and _lookups(slack) == 1
    assert len(sandbox.state.jobs) == 0
    release.set()
    wait_for(lambda: "Started" in chat.ask(f"start {fid} seed=3", user="U0OPS1").get("text", ""))
    assert len(sandbox.state.jobs) == 1


def test_a_failing_lookup_grants_nothing(make_chat, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    chat, _ = _group_chat(make_chat, slack, sqlite_url)
    slack.fail("usergroups.users.list", 500, count=2)
    fid = chat.upload()
    refused = chat.ask(f"start {fid}", user="U0OPS1")["ack"]
    assert "Slack could not tell me who the operators are" in refused["text"]
    n = len(slack.responses())
    assert chat.click("job_cancel", "ftjob-x", user="U0OPS1").status == 200  # a click gets the same, in Slack
    assert "Slack could not tell me" in wait_for(lambda: slack.responses()[n:])[0]["text"]
    assert len(sandbox.state.jobs) == 0
    # Slack answers again: the next request looks again, without a restart
    assert "Started" in chat.ask(f"start {fid} seed=1", user="U0OPS1")["text"]


def test_members_expire_and_errors_do_not_keep_access(make_chat, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    chat, operators = _group_chat(make_chat, slack, sqlite_url)
    fid = chat.upload()
    assert "Started" in chat.ask(f"start {fid} seed=1", user="U0OPS1")["text"]
    operators.ttl = 0.2
    slack.set_usergroup(GROUP, ["U0OTHER"])  # U0OPS1 leaves the group
    # (until the cached answer expires these are still allowed, each a new job: that is the cache's promise)
    wait_for(lambda: ":lock: Only operators" in chat.ask(f"start {fid} seed=2", user="U0OPS1").get("ack", {}).get("text", ""))
    slack.set_usergroup(GROUP, ["U0OPS1"])
    wait_for(lambda: "Started" in chat.ask(f"start {fid} seed=3", user="U0OPS1").get("text", ""))
    # now Slack fails for good: once the cached answer expires, access is not kept
    slack.fail("usergroups.users.list", 500, count=1000)
    wait_for(lambda: "Slack could not tell me" in chat.ask(f"start {fid} seed=4", user="U0OPS1").get("ack", {}).get("text", ""))
    before = len(sandbox.state.jobs)
    assert "Slack could not tell me" in chat.ask(f"start {fid} seed=5", user="U0OPS1")["ack"]["text"]
    assert len(sandbox.state.jobs) == before
