"""The scorers, statistics and example reading: pure functions, checked against hand-computed values."""

from __future__ import annotations

import json

import pytest

from bot.evals import scorers, stats
from bot.evals.examples import parse_bytes
from tests.evals.crafted import dataset, jsonl


def test_exact_is_whitespace_and_case_normalised() -> None:
    assert scorers.exact("  Paris\n", "paris") == 1.0
    assert scorers.exact("Paris, France", "Paris") == 0.0
    assert scorers.exact("x", None) is None


def test_similarity_is_rouge_l_f1() -> None:
    # reference "the cat sat" (3 tokens), answer "the cat sat down" (4): LCS 3, P 3/4, R 1, F1 6/7
    assert scorers.similarity("the cat sat down", "the cat sat") == pytest.approx(6 / 7)
    assert scorers.similarity("", "abc") == 0.0
    assert scorers.similarity("The CAT sat", "the cat sat") == 1.0


def test_json_applies_only_to_json_references() -> None:
    assert scorers.json_equal('{"b": 2, "a": 1}', '{"a":1,"b":2}') == 1.0
    assert scorers.json_equal('{"a": 1', '{"a": 1}') == 0.0
    assert scorers.json_equal("[1, 2]", '{"a": 1}') == 0.0
    assert scorers.json_equal("{}", "plain text") is None


def test_tool_calls_compare_names_and_parsed_arguments_in_any_order() -> None:
    ref = [{"name": "f", "arguments": '{"a": 1, "b": [1]}'}, {"name": "g", "arguments": "{}"}]
    assert scorers.tool_calls([{"name": "g", "arguments": "{ }"}, {"name": "f", "arguments": '{"b":[1],"a":1}'}], ref) == 1.0
    assert scorers.tool_calls([{"name": "f", "arguments": '{"a": 2, "b": [1]}'}, {"name": "g", "arguments": "{}"}], ref) == 0.0
    assert scorers.tool_calls([{"name": "f", "arguments": "not json"}], [{"name": "f", "arguments": "{}"}]) == 0.0
    assert scorers.tool_calls([], None) is None


def test_judge_verdicts() -> None:
    assert scorers.parse_verdict("A") == "A" and scorers.parse_verdict("**tie**.") == "TIE"
    assert scorers.parse_verdict("A or B") is None and scorers.parse_verdict("I cannot say") is None
    assert scorers.judge_score("A", model_first=True) == 1.0 and scorers.judge_score("A", model_first=False) == 0.0
    assert scorers.judge_score("TIE", model_first=True) == 0.5 and scorers.judge_score(None, model_first=True) is None


def test_paired_bootstrap_and_win_tie_loss() -> None:
    c = stats.compare([(1, 0)] * 6 + [(0, 0)] * 3 + [(0, 1)] + [(None, 1)])
    assert (c.n, c.wins, c.ties, c.losses) == (10, 6, 3, 1)
    assert c.model == pytest.approx(0.6) and c.baseline == pytest.approx(0.1) and c.diff == pytest.approx(0.5)
    assert c.ci_low < 0.5 < c.ci_high and -1 <= c.ci_low and c.ci_high <= 1
    same = stats.compare([(1, 1), (0, 0)])
    assert (same.diff, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    assert stats.compare([]).n == 0
    # deterministic for a seed
    assert stats.paired_bootstrap([1, 0, 1, 1], [0, 0, 1, 0], seed=3) == stats.paired_bootstrap([1, 0, 1, 1], [0, 0, 1, 0], seed=3)


def test_examples_take_the_last_assistant_turn_as_reference_and_the_rest_as_prompt() -> None:
    rows = dataset(2, 1, 1)
    dpo = {"input": {"messages": [{"role": "user", "content": "q"}]}, "preferred_output": [{"role": "assistant", "content": "good"}], "non_preferred_output": [{"role": "assistant", "content": "bad"}]}
    no_answer = {"messages": [{"role": "user", "content": "hello"}]}
    parsed = parse_bytes(jsonl([*rows, dpo, no_answer]) + b"\nnot json\n")
    assert len(parsed.examples) == 5 and parsed.left_out == {"no_reference": 1, "unreadable": 1}
    first = parsed.examples[0]
    assert [m["role"] for m in first.messages] == ["system", "user"] and first.reference == {"content": "City 0", "tool_calls": []}
    tool = parsed.examples[3]
    assert tool.tools and tool.reference["content"] is None and tool.reference["tool_calls"] == [{"name": "get_weather", "arguments": json.dumps({"city": "town 0"})}]
    assert parsed.examples[4].reference["content"] == "good"  # DPO: the preferred answer


def test_sampling_is_seeded_and_skips_examples_over_the_context() -> None:
    from bot.evals import sampling
    from bot.evals.examples import Example

    short = [Example(i, [{"role": "user", "content": f"q{i}"}], {"content": "a", "tool_calls": []}) for i in range(30)]
    huge = Example(99, [{"role": "user", "content": "word " * 130_000}], {"content": "a", "tool_calls": []})  # ~162k tokens > 128k
    got = sampling.sample([*short, huge], 31, seed=1, models=[("ft:gpt-4o-mini-2024-07-18:o::x", "gpt-4o-mini-2024-07-18"), ("gpt-4o-mini-2024-07-18", None)], left_out={"no_reference": 2})
    assert len(got.examples) == 30 and got.skipped == {"no_reference": 2, "too_long": 1}
    a = sampling.sample(short, 10, seed=7, models=[])
    b = sampling.sample(short, 10, seed=7, models=[])
    assert [e.line for e in a.examples] == [e.line for e in b.examples] and len(a.examples) == 10
    # gpt-4.1's million-token context keeps it
    assert len(sampling.sample([huge], 1, seed=1, models=[("gpt-4.1-2025-04-14", None)]).examples) == 1
