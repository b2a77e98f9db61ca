"""The `/ft start` form, submitted as Slack sends it (signed HTTP view_submission)."""

from __future__ import annotations

from tests.conftest import wait_for

META = '{"channel": "C0001"}'


def _form(file_id: str, **fields: str) -> dict:
    values = {"file": {"value": {"type": "static_select", "selected_option": {"value": file_id}}}, "model": {"value": {"type": "static_select", "selected_option": {"value": "gpt-4o-mini-2024-07-18"}}}}
    for k, v in fields.items():
        values[k] = {"value": {"type": "number_input" if k in {"epochs", "batch", "lr", "beta"} else "plain_text_input", "value": v}}
    return values


def _ephemerals(slack) -> list[str]:  # noqa: ANN001
    return [c.args["text"] for c in slack.calls("chat.postEphemeral")]


def test_field_errors_show_in_the_form(chat, sandbox) -> None:  # noqa: ANN001
    fid = chat.upload()
    cases = {
        "epochs": ("99", "`epochs` must be from 1 to 50, got 99."),
        "lr": ("-1", "`lr` must be above 0 and at most 100, got `-1`."),
        "suffix": ("a b", "`suffix` may use letters, digits, `.`, `_` and `-` only."),
    }
    for field, (value, message) in cases.items():
        bad = chat.bot.slack.view_submission("start_job", _form(fid, **{field: value}), private_metadata=META)
        assert bad.status == 200 and bad.json == {"response_action": "errors", "errors": {field: message}}
    beta = chat.bot.slack.view_submission("start_job", _form(fid, beta="0.1"), private_metadata=META)
    assert beta.json["errors"] == {"beta": "`beta` only applies to `method=dpo`."}
    # a hostile value is quoted back as typed (plain text in the form, not an escaped entity)
    hostile = chat.bot.slack.view_submission("start_job", _form(fid, lr="<!here>&"), private_metadata=META)
    assert hostile.json["errors"]["lr"] == "`lr` must be a number, got `<!here>&`."
    assert len(sandbox.state.jobs) == 0


def test_submission_starts_once_and_answers_in_the_channel(chat, sandbox, slack) -> None:  # noqa: ANN001
    fid = chat.upload()
    ok = chat.bot.slack.view_submission("start_job", _form(fid, epochs="2", suffix="form"), private_metadata=META, view_id="VSAME")
    assert ok.status == 200 and not ok.body.strip()
    started = wait_for(lambda: [t for t in _ephemerals(slack) if "Started" in t])[0]
    job_id = started.split("`")[1]
    again = chat.bot.slack.view_submission("start_job", _form(fid, epochs="2", suffix="form"), private_metadata=META, view_id="VSAME")
    assert again.status == 200
    wait_for(lambda: [t for t in _ephemerals(slack) if "Already started" in t])
    assert list(sandbox.state.jobs) == [job_id]
    call = slack.calls("chat.postEphemeral")[0].args
    assert call["channel"] == "C0001" and call["user"] == "U0001"
    card = wait_for(lambda: slack.channel_messages("C0001"))[0]
    assert job_id in card["text"]


def test_provider_refusal_after_the_form_closed_is_told_in_the_channel(chat, sandbox, slack) -> None:  # noqa: ANN001
    fid = chat.upload()
    reply = chat.bot.slack.view_submission("start_job", _form(fid) | {"model": {"value": {"type": "static_select", "selected_option": {"value": "gpt-9-ultra"}}}}, private_metadata=META)
    assert reply.status == 200
    refused = wait_for(lambda: [t for t in _ephemerals(slack) if "OpenAI refused" in t])[0]
    assert "gpt-9-ultra" in refused and len(sandbox.state.jobs) == 0
    unknown = chat.bot.slack.view_submission("start_job", _form("file-nope"), private_metadata=META)
    assert unknown.status == 200
    wait_for(lambda: [t for t in _ephemerals(slack) if "Unknown training file `file-nope`" in t])


def test_non_operator_submission_is_refused_in_the_form(make_chat, sandbox, sqlite_url) -> None:  # noqa: ANN001
    chat = make_chat(sqlite_url, operators=("U0BOSS",))
    fid = chat.upload()
    refused = chat.bot.slack.view_submission("start_job", _form(fid, epochs="2"), private_metadata=META, user="U0001")
    assert refused.status == 200 and refused.json["response_action"] == "errors"
    assert "Only operators" in refused.json["errors"]["file"]
    ok = chat.bot.slack.view_submission("start_job", _form(fid, epochs="2"), private_metadata=META, user="U0BOSS")
    assert ok.status == 200 and not ok.body.strip()
    wait_for(lambda: len(sandbox.state.jobs) == 1)
