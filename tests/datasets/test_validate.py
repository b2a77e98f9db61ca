"""Each check of the validator on small crafted files, with exact line numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.datasets.validate import MAX_DEPTH, Report, epochs_for, validate_file

MODEL = "gpt-4o-mini-2024-07-18"


def ok_chat(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ],
        **extra,
    }


def write(tmp_path: Path, lines: list[Any], name: str = "train.jsonl") -> Path:
    p = tmp_path / name
    out = []
    for line in lines:
        out.append(line if isinstance(line, str) else json.dumps(line))
    p.write_text("\n".join(out) + "\n", encoding="utf-8")
    return p


def run(tmp_path: Path, lines: list[Any], **kw: Any) -> Report:
    return validate_file(write(tmp_path, lines), model=kw.pop("model", MODEL), **kw)


def kinds(issues) -> dict[str, list[int]]:  # noqa: ANN001
    return {i.kind: i.lines for i in issues}


def padded(bad: list[Any], at: int) -> list[Any]:
    """Ten clean examples with `bad` inserted so the first bad one is on line `at`."""
    lines: list[Any] = [ok_chat(i) for i in range(10)]
    lines[at - 1 : at - 1] = bad
    return lines


def test_a_clean_file_is_clean(tmp_path: Path) -> None:
    r = run(tmp_path, [ok_chat(i) for i in range(12)])
    assert r.ok and r.verdict == "clean", r.to_dict()
    assert (r.format, r.examples, r.lines) == ("chat", 12, 12)
    assert r.tokens is not None and r.tokens.encoding == "o200k_base"


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        ("", "blank_line"),
        ("   ", "blank_line"),
        ("not json at all", "not_json"),
        ('{"messages": []} {"messages": []}', "not_json"),
        ("[1, 2, 3]", "not_json"),
        ('"a string"', "not_json"),
        ({"hello": "world"}, "unknown_format"),
        ({"messages": []}, "missing_messages_list"),
        ({"messages": "hi"}, "missing_messages_list"),
        ({"messages": ["hi", {"role": "assistant", "content": "x"}]}, "message_not_object"),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}, "message_missing_key"),
        ({"messages": [{"role": "user", "content": "q", "colour": "red"}, {"role": "assistant", "content": "x"}]}, "message_unrecognized_key"),
        ({"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "x"}]}, "unrecognized_role"),
        ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}, "missing_content"),
        ({"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]}, "bad_content"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}, {"role": "assistant", "content": "x"}]}, "bad_content"),
        ({"messages": [{"role": "user", "content": "q", "name": 7}, {"role": "assistant", "content": "x"}]}, "bad_name"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x", "weight": 0.5}]}, "bad_weight"),
        ({"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "x"}]}, "bad_weight"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x", "weight": True}]}, "bad_weight"),
        ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}, "no_assistant"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x", "weight": 0}]}, "no_assistant"),
        ({"prompt": "p", "completion": "c"}, "mixed_formats"),
        ({"input": {"messages": [{"role": "user", "content": "q"}]}, "preferred_output": []}, "mixed_formats"),
    ],
)
def test_each_error_on_its_line(tmp_path: Path, bad: Any, kind: str) -> None:
    r = run(tmp_path, padded([bad, bad], at=4))
    assert not r.ok
    found = kinds(r.errors)
    assert kind in found, r.to_dict()
    assert found[kind] == [4, 5]
    assert next(i for i in r.errors if i.kind == kind).count == 2


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]


def call(cid: str = "call_1", name: str = "get_weather") -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": '{"city": "Oslo"}'}}


def tool_example(messages: list[dict[str, Any]], tools: Any = TOOLS) -> dict[str, Any]:
    ex: dict[str, Any] = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "weather?"}, *messages]}
    if tools is not None:
        ex["tools"] = tools
    return ex


def test_tool_calls_answered_and_declared_are_fine(tmp_path: Path) -> None:
    good = tool_example(
        [
            {"role": "assistant", "tool_calls": [call()]},
            {"role": "tool", "tool_call_id": "call_1", "content": "12C"},
            {"role": "assistant", "content": "It is 12C."},
        ]
    )
    final_call = tool_example([{"role": "assistant", "tool_calls": [call()]}])  # learning to call: no reply needed
    r = run(tmp_path, [good] * 6 + [final_call] * 6)
    assert r.ok, r.to_dict()
    assert r.format == "chat with tools"


@pytest.mark.parametrize(
    ("messages", "tools", "kind"),
    [
        ([{"role": "assistant", "tool_calls": [call()]}, {"role": "assistant", "content": "done"}], TOOLS, "unanswered_tool_call"),
        ([{"role": "tool", "tool_call_id": "call_9", "content": "x"}, {"role": "assistant", "content": "done"}], TOOLS, "unmatched_tool_reply"),
        ([{"role": "assistant", "tool_calls": [call(name="launch")]}], TOOLS, "undeclared_tool"),
        ([{"role": "assistant", "tool_calls": [call()]}], None, "undeclared_tool"),
        ([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "get_weather"}}]}], TOOLS, "bad_tool_calls"),
        ([{"role": "assistant", "content": "x"}], [{"type": "function"}], "bad_tools"),
    ],
)
def test_tool_errors(tmp_path: Path, messages: list[dict[str, Any]], tools: Any, kind: str) -> None:
    r = run(tmp_path, padded([tool_example(messages, tools)], at=7))
    assert kinds(r.errors).get(kind) == [7], r.to_dict()


def test_warnings_never_block(tmp_path: Path) -> None:
    no_system = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    no_user = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    lines = [ok_chat(i) for i in range(10)] + [no_system, no_user, ok_chat(3)]
    r = run(tmp_path, lines)
    assert r.ok and r.verdict == "warnings"
    w = kinds(r.warnings)
    assert w["no_system"] == [11] and w["no_user"] == [12] and w["duplicate"] == [13]
    assert next(i for i in r.warnings if i.kind == "duplicate").detail == "repeats line 4"


def test_too_long_examples_are_a_warning(tmp_path: Path) -> None:
    long = ok_chat(99)
    long["messages"][2]["content"] = "word " * 300
    r = run(tmp_path, [ok_chat(i) for i in range(10)] + [long], token_limit=200)
    assert r.ok
    assert kinds(r.warnings)["too_long"] == [11]
    assert r.tokens.over_limit == 1 and r.tokens.billed_per_epoch == sum(min(200, n) for n in [r.tokens.max] + [r.tokens.min] * 0) + (r.tokens.total - r.tokens.max)


def test_validation_file_shares_examples(tmp_path: Path) -> None:
    train = write(tmp_path, [ok_chat(i) for i in range(12)])
    valid = write(tmp_path, [ok_chat(100 + i) for i in range(9)] + [ok_chat(5)], name="valid.jsonl")
    r = validate_file(train, model=MODEL, validation=valid)
    assert r.validation is not None
    shared = next(i for i in r.validation.warnings if i.kind == "shared_with_validation")
    assert shared.lines == [10] and shared.detail == "line 6 of the training file" and shared.where() == "line 10 (line 6 of the training file)"
    assert r.ok and r.verdict == "warnings"


def test_only_the_first_lines_are_listed_with_a_count(tmp_path: Path) -> None:
    r = run(tmp_path, padded(["garbage"] * 40, at=1))
    issue = next(i for i in r.errors if i.kind == "not_json")
    assert issue.lines == [1, 2, 3, 4, 5] and issue.count == 40


def test_formats_detected_and_checked_against_the_model(tmp_path: Path) -> None:
    pref = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    r = run(tmp_path, [pref] * 10)
    assert r.format == "preference" and not kinds(r.errors), r.to_dict()
    r = run(tmp_path, [pref] * 10, model="gpt-3.5-turbo-0125")
    assert "format_not_supported" in kinds(r.errors)
    legacy = [{"prompt": f"p{i}", "completion": " c"} for i in range(10)]
    assert run(tmp_path, legacy, model="babbage-002").ok
    assert "format_not_supported" in kinds(run(tmp_path, legacy).errors)


def test_fewer_than_ten_examples_is_an_error(tmp_path: Path) -> None:
    r = run(tmp_path, [ok_chat(i) for i in range(9)])
    assert [i.kind for i in r.errors] == ["too_few_examples"]


def test_a_bom_is_tolerated_but_latin1_is_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + b"\n".join(json.dumps(ok_chat(i)).encode() for i in range(10)))
    assert validate_file(p, model=MODEL).ok
    p.write_bytes(b"\n".join([json.dumps(ok_chat(i)).encode() for i in range(10)] + ['{"messages": "caf\xe9"}'.encode("latin-1")]))
    assert kinds(validate_file(p, model=MODEL).errors) == {"not_utf8": [11]}


def test_nesting_deeper_than_any_real_example(tmp_path: Path) -> None:
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    inside = '{"messages": [{"role": "user", "content": "q", "x": ' + deep + '}, {"role": "assistant", "content": "a"}]}'
    very = "[" * 100_000 + "]" * 100_000
    r = run(tmp_path, padded([inside, very], at=2))
    assert kinds(r.errors) == {"too_deep": [2, 3]}


def test_epochs_rule() -> None:
    assert [epochs_for(n) for n in (5, 10, 33, 34, 100, 8333, 8334, 30000, 60000)] == [20, 10, 3, 3, 3, 3, 2, 1, 1]


def test_price_override_wins(tmp_path: Path) -> None:
    r = run(tmp_path, [ok_chat(i) for i in range(10)], price_overrides={"gpt-4o-mini": 100.0})
    assert r.tokens.usd_per_million == 100.0 and r.tokens.price_source == "FTBOT_PRICE_TABLE"
    assert r.tokens.estimated_usd == round(r.tokens.billed_total * 100 / 1e6, 2)


def test_broken_completion_and_preference_examples(tmp_path: Path) -> None:
    legacy = [{"prompt": f"p{i}", "completion": " c"} for i in range(10)]
    legacy[2:2] = [{"prompt": 3, "completion": "c"}, {"prompt": "p", "completion": ""}]
    assert kinds(run(tmp_path, legacy, model="davinci-002").errors) == {"bad_completion": [3, 4]}
    pref = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    broken = [dict(pref, preferred_output=[]), dict(pref, non_preferred_output=[{"role": "user", "content": "x"}]), dict(pref, input={"messages": []})]
    r = run(tmp_path, [pref] * 5 + broken + [pref] * 5)
    assert kinds(r.errors) == {"bad_preference": [6, 7], "missing_messages_list": [8]}


def test_memory_stays_bounded_past_max_tracked(tmp_path: Path) -> None:
    from bot.datasets.validate import Validator

    lines = [ok_chat(i) for i in range(300)] + [ok_chat(7)]
    path = write(tmp_path, lines)
    v = Validator(MODEL, max_tracked=100)
    r = v.validate(path)
    # Still checked against the tracked examples, never more than 100 kept; percentiles sampled.
    assert kinds(r.warnings)["duplicate"] == [301]
    assert len(v.counts) == 100 and r.tokens.exact_percentiles is False
    exact = validate_file(path, model=MODEL).tokens
    assert (r.tokens.min, r.tokens.max, r.tokens.total, r.tokens.mean) == (exact.min, exact.max, exact.total, exact.mean)
