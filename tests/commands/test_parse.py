from __future__ import annotations

import pytest

from bot.commands.parse import DEFAULT_MODEL, parse, parse_channel, parse_start
from bot.errors import UserError
from bot.logs import redact
from bot.mrkdwn import code, escape


def test_parse_verbs() -> None:
    assert parse("").verb == "help"
    assert parse("  LIST 5 ").args == ("5",)
    assert parse('try ft:m "two words"').rest == 'ft:m "two words"'
    with pytest.raises(UserError, match="I don't know"):
        parse("launch x")
    with pytest.raises(UserError, match="Unbalanced quotes"):
        parse('start "a.jsonl')


def test_parse_start_full_and_defaults() -> None:
    r = parse_start(("file-1", "model=gpt-4.1-mini", "validation=file-2", "epochs=4", "batch=8", "lr=0.3", "suffix=a_b-c.1", "seed=9"))
    assert (r.file, r.model, r.validation, r.suffix, r.seed) == ("file-1", "gpt-4.1-mini", "file-2", "a_b-c.1", 9)
    assert r.hyperparameters == {"n_epochs": 4, "batch_size": 8, "learning_rate_multiplier": 0.3}
    d = parse_start(("x.jsonl",))
    assert d.model == DEFAULT_MODEL and d.hyperparameters == {} and d.method == "supervised"
    dpo = parse_start(("x.jsonl", "method=dpo", "beta=0.5"))
    assert dpo.method == "dpo" and dpo.hyperparameters == {"beta": 0.5}


@pytest.mark.parametrize("bad", [("a", "lr=nan"), ("a", "lr=0"), ("a", "seed=-1"), ("a", "suffix=has space"), ("a", "suffix=<!here>"), ("a", "epochs="), ()])
def test_parse_start_rejects(bad: tuple[str, ...]) -> None:
    with pytest.raises(UserError):
        parse_start(bad)


def test_user_text_in_errors_is_escaped() -> None:
    with pytest.raises(UserError) as err:
        parse_start(("a", "<!channel>=1"))
    assert "<!channel>" not in err.value.message and "&lt;!channel&gt;" in err.value.message


def test_channels() -> None:
    assert parse_channel("<#C0123|general>") == "C0123"
    assert parse_channel("C0123ABC") == "C0123ABC"
    with pytest.raises(UserError):
        parse_channel("#general")


def test_escape_and_redact() -> None:
    assert escape("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
    assert code("a`b") == "`a'b`"
    line = redact("token xoxb-123-456-abcdef and key sk-proj-abcdefghijkl and xapp-1-A1-2")
    assert "abcdef" not in line and "abcdefghijkl" not in line and "xapp-1-A1-2" not in line


def test_command_text_is_unescaped_once() -> None:
    # Slack escapes what a person types; mentions it made itself stay as Slack wrote them
    cmd = parse("try ft:m a &lt;b&gt; &amp;lt; c &amp;&amp; <@U1|bob>")
    assert cmd.rest == "ft:m a <b> &lt; c && <@U1|bob>"
    with pytest.raises(UserError) as err:
        parse("frob&lt;!here&gt;")
    assert "<!here>" not in err.value.message and "&lt;!here&gt;" in err.value.message
    assert parse("start a.jsonl suffix=x&amp;y").args == ("a.jsonl", "suffix=x&y")
