"""The cookbook's toy dataset and its published figures; token counts equal to tiktoken's; hostile files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import tiktoken

from bot.datasets import tokens
from bot.datasets.validate import validate_file

DATA = Path(__file__).parent.parent / "data"
TOY = DATA / "toy_chat_fine_tuning.jsonl"  # a verbatim copy of the cookbook's examples/data file


def test_the_toy_dataset_reproduces_the_notebooks_figures() -> None:
    assert TOY.stat().st_size == 27_385
    # The notebook's settings: cl100k_base, a 4,096-token cap.
    r = validate_file(TOY, model="gpt-3.5-turbo-0125", token_limit=4096)
    t = r.tokens
    assert r.examples == 5 and r.format == "chat"
    assert (t.messages_min, t.messages_max, t.messages_mean, t.messages_median) == (2, 9, 3.8, 3)
    assert (t.min, t.max, t.mean, t.median) == (26, 8032, 1648.4, 45)
    assert (t.assistant_min, t.assistant_max) == (4, 8000)
    assert t.total == 45 + 111 + 26 + 28 + 8032
    assert (t.billed_per_epoch, t.epochs, t.billed_total) == (4306, 20, 86120)
    w = {i.kind: i.lines for i in r.warnings}
    assert w["no_system"] == [3] and w["no_user"] == [4]
    # What the notebook misses: 5 examples is an error; no format error otherwise.
    assert [i.kind for i in r.errors] == ["too_few_examples"]
    # With today's limits nothing is truncated.
    for model in ("gpt-3.5-turbo-0125",):
        assert validate_file(TOY, model=model).tokens.over_limit == 0
    assert validate_file(TOY, model="gpt-4o-mini-2024-07-18").tokens.over_limit == 0


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_counts_equal_tiktokens_own(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken.get_encoding itself, fed the same rank file through its cache (no network)."""
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(tokens.rank_file_bytes(name))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    theirs = tiktoken.get_encoding(name)
    ours = tokens.get_encoding(name)
    texts = [line for line in TOY.read_text().splitlines()] + ["héllo wörld 12345 😀 <|endoftext|> \n\n  tabs\t", "日本語のテキスト", ""]
    for text in texts:
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)
    assert ours.encode("hello world") == ([15339, 1917] if name == "cl100k_base" else [24912, 2375])


def test_model_families_pick_their_encoding() -> None:
    assert tokens.encoding_name_for("gpt-4o-mini-2024-07-18") == "o200k_base"
    assert tokens.encoding_name_for("gpt-4.1-2025-04-14") == "o200k_base"
    assert tokens.encoding_name_for("ft:gpt-4o-mini-2024-07-18:acme::abc") == "o200k_base"
    assert tokens.encoding_name_for("gpt-3.5-turbo-0125") == "cl100k_base"
    assert tokens.encoding_name_for("gpt-4-0613") == "cl100k_base"


def kinds(r) -> set[str]:  # noqa: ANN001
    return {i.kind for i in r.errors}


def test_hostile_small_files(tmp_path: Path) -> None:
    cases = {
        "empty.jsonl": (b"", {"empty"}),
        "binary.jsonl": (os.urandom(1 << 16), None),
        "utf16.jsonl": ("\n".join(json.dumps({"prompt": "p", "completion": "c"}) for _ in range(12)).encode("utf-16"), {"utf16"}),
        "csv.jsonl": (b"name,age\nalice,3\nbob,4\n", {"not_json"}),
    }
    for name, (content, expected) in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        r = validate_file(p, model="gpt-4o-mini-2024-07-18")
        assert not r.ok, name
        if expected is not None:
            assert kinds(r) == expected, (name, r.to_dict())
        else:
            assert kinds(r) <= {"not_utf8", "binary", "not_json", "blank_line", "line_too_long"}, r.to_dict()


def test_a_200mb_line_is_skipped_unread(tmp_path: Path) -> None:
    p = tmp_path / "huge-line.jsonl"
    with p.open("wb") as f:
        f.write(b'{"messages": [{"role": "user", "content": "')
        block = b"a" * (1 << 20)
        for _ in range(200):
            f.write(block)
        f.write(b'"}]}\n')
        for i in range(10):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}).encode() + b"\n")
    r = validate_file(p, model="gpt-4o-mini-2024-07-18")
    assert {i.kind: i.lines for i in r.errors} == {"line_too_long": [1]}
    assert r.examples == 10 and r.lines == 11 and r.bytes == p.stat().st_size


def test_a_1gb_binary_file_stops_early(tmp_path: Path) -> None:
    p = tmp_path / "huge.jsonl"
    with p.open("wb") as f:
        f.truncate(1 << 30)  # sparse: takes no disk
    r = validate_file(p, model="gpt-4o-mini-2024-07-18")
    assert kinds(r) == {"binary"} and r.stopped_early and r.bytes == 1 << 30


def test_random_structures_never_crash(tmp_path: Path) -> None:
    """Every key of every format filled with random JSON of the wrong types: a report, never an exception."""
    import random

    rng = random.Random(1)
    keys = ["role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call", "messages", "tools", "functions", "input", "type", "function", "id"]

    def val(d: int = 0):  # noqa: ANN202
        opts = [lambda: None, lambda: True, lambda: 0, lambda: 1.5, lambda: "x", lambda: "assistant"]
        if d < 4:
            opts += [
                lambda: [val(d + 1) for _ in range(rng.randrange(3))],
                lambda: {k: val(d + 1) for k in rng.sample(keys, rng.randrange(4))},
                lambda: [{"type": rng.choice(["text", "image_url", [1]]), "text": val(d + 1), "image_url": val(d + 1)}],
                lambda: [{"id": val(d + 1), "type": "function", "function": {"name": val(d + 1), "arguments": val(d + 1)}}],
            ]
        return rng.choice(opts)()

    roles = ["system", "user", "assistant", "tool", "developer", [1], None, {}]
    for trial in range(60):
        lines = []
        for _ in range(12):
            kind = rng.randrange(4)
            if kind == 0:
                msgs = [{k: (rng.choice(roles) if k == "role" else val()) for k in rng.sample(keys[:7], rng.randrange(1, 7))} for _ in range(rng.randrange(1, 4))]
                ex = {"messages": msgs, "tools": val(), "functions": val()}
            elif kind == 1:
                ex = {"input": {"messages": [{"role": rng.choice(roles), "content": val()}], "tools": val()}, "preferred_output": val(), "non_preferred_output": [{"role": "assistant", "content": val()}]}
            elif kind == 2:
                ex = {"prompt": val(), "completion": val()}
            else:
                ex = val()
            lines.append(json.dumps(ex))
        p = tmp_path / f"fuzz{trial}.jsonl"
        p.write_text("\n".join(lines))
        json.dumps(validate_file(p, model=rng.choice(["gpt-4o-mini-2024-07-18", "babbage-002", "unknown-model"])).to_dict())
