"""OpenAI chat JSONL -> Gemini's format: what converts, what is named by line, Gemini's limits,
hostile files, and constant memory on a large file."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest

from bot.datasets import gemini_format as gf


def _write(tmp_path, lines: list, name: str = "d.jsonl") -> str:  # noqa: ANN001
    path = tmp_path / name
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else json.dumps(x).encode() for x in lines) + b"\n")
    return str(path)


def _chat(user: str = "hi", answer: str = "hello", system: str | None = None) -> dict:
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": msgs}


def test_openai_chat_converts_to_gemini(tmp_path) -> None:  # noqa: ANN001
    multi = {"messages": [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "first", "weight": 1},
        {"role": "user", "content": "more?"},
        {"role": "assistant", "content": "second"},
    ]}
    path = _write(tmp_path, [_chat(system="S"), multi, {"prompt": "p", "completion": "c"}])
    result = gf.check(path)
    assert result.ok and result.examples == 3 and result.format == gf.OPENAI_CHAT and result.weight_one_messages == 1
    out = io.BytesIO()
    written = gf.write_converted(path, out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert written == len(out.getvalue()) == result.output_bytes
    assert lines[0] == {"systemInstruction": {"parts": [{"text": "S"}]}, "contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "hello"}]}]}
    assert lines[1]["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert [c["role"] for c in lines[1]["contents"]] == ["user", "model", "user", "model"]
    assert lines[1]["contents"][0]["parts"] == [{"text": "a"}, {"text": "b"}]
    assert lines[2] == {"contents": [{"role": "user", "parts": [{"text": "p"}]}, {"role": "model", "parts": [{"text": "c"}]}]}
    assert result.tokens_approximate and "approximate" in result.token_method and result.total_tokens > 0


def test_a_gemini_file_is_taken_byte_for_byte(tmp_path) -> None:  # noqa: ANN001
    raw = [
        b'{"contents": [{"role": "user", "parts": [{"text": "x"}]}, {"role": "model", "parts": [{"text": "y"}]}]}',
        b'{"systemInstruction": {"parts": [{"text": "s"}]}, "contents":[{"role":"user","parts":[{"fileData":{"fileUri":"gs://b/i.png","mimeType":"image/png"}}]},{"role":"model","parts":[{"text":"a cat"}]}]}',
    ]
    path = _write(tmp_path, raw)
    assert gf.check(path).format == gf.GEMINI
    out = io.BytesIO()
    gf.write_converted(path, out)
    assert out.getvalue() == b"\n".join(raw) + b"\n"


def test_what_cannot_be_converted_is_named_by_line(tmp_path) -> None:  # noqa: ANN001
    call = {"messages": [{"role": "user", "content": "w?"}, {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}
    tool_result = {"messages": [{"role": "user", "content": "w?"}, {"role": "tool", "content": "sunny", "tool_call_id": "1"}, {"role": "assistant", "content": "ok"}]}
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}, {"role": "assistant", "content": "a cat"}]}
    weight0 = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    dpo = {"input": {"messages": [{"role": "user", "content": "a"}]}, "preferred_output": [{"role": "assistant", "content": "b"}], "non_preferred_output": [{"role": "assistant", "content": "c"}]}
    late_system = {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "now be rude"}, {"role": "assistant", "content": "b"}]}
    ends_with_user = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}
    tools_declared = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "tools": [{"type": "function", "function": {"name": "f"}}]}
    path = _write(tmp_path, [_chat(), call, tool_result, image, weight0, dpo, late_system, ends_with_user, tools_declared, _chat()])
    result = gf.check(path)
    assert not result.ok and result.examples == 2
    by_line = {p.line: p.reason for p in result.problems}
    assert set(by_line) == {2, 3, 4, 5, 6, 7, 8, 9}
    assert "tool call" in by_line[2] and "tool result" in by_line[3] and "image" in by_line[4]
    assert "weight 0" in by_line[5] and "preference" in by_line[6] and "system message after" in by_line[7]
    assert "ends with a user message" in by_line[8] and "tools" in by_line[9]
    assert "line 2:" in result.summary()
    with pytest.raises(gf.Unconvertible, match="line 2"):
        gf.write_converted(path, io.BytesIO())


def test_a_hostile_or_broken_file(tmp_path) -> None:  # noqa: ANN001
    deep = b"[" * 5000 + b"]" * 5000
    huge_line = b'{"messages": "' + b"x" * (gf.MAX_LINE_BYTES + 10)  # no line break, no end
    lines = [
        b"\xef\xbb\xbf" + json.dumps(_chat()).encode(),  # a BOM: tolerated
        b"not json at all",
        b"\xff\xfe\x00binary",
        b"[1, 2, 3]",
        deep,
        b"",
        json.dumps({"contents": [{"role": "user", "parts": [{"text": "g"}]}, {"role": "model", "parts": [{"text": "h"}]}]}).encode(),
        json.dumps({"something": "else"}).encode(),
        json.dumps({"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "x", "name": "bob"}, {"role": "assistant", "content": "y"}]}).encode(),
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n" + huge_line)
    result = gf.check(path)
    by_line = {p.line: p.reason for p in result.problems}
    assert result.examples == 1 and result.blank_lines == 1
    assert by_line[2] == "is not valid JSON" and by_line[3] in {"is not UTF-8 text", "is not valid JSON"}
    assert by_line[4] == "is not a JSON object" and by_line[5] == "is not valid JSON"
    assert "one file, one format" in by_line[7] and "neither" in by_line[8]
    assert "wizard" in by_line[9] and "name" in by_line[10]
    assert "longer than 32 MB" in by_line[11]


def test_gemini_limits(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    long_answer = "word " * 140_000
    path = _write(tmp_path, [_chat(answer=long_answer), _chat()])
    result = gf.check(path)
    assert result.ok and result.warning_count == 1 and result.warnings[0].line == 1
    assert "approximate" in result.warnings[0].reason and "131,072" in result.warnings[0].reason
    assert result.max_example_tokens > gf.MAX_EXAMPLE_TOKENS
    # Validation files: at most 5,000 examples (a small limit patched in to keep the test fast).
    monkeypatch.setattr(gf, "MAX_VALIDATION_EXAMPLES", 3)
    many = _write(tmp_path, [_chat(user=f"q{i}") for i in range(4)], "val.jsonl")
    assert gf.check(many).ok
    v = gf.check(many, validation=True)
    assert not v.ok and "at most 3 in a validation file" in v.problems[0].reason
    monkeypatch.setattr(gf, "MAX_TRAINING_FILE_BYTES", 100)
    assert "Gemini takes at most 1 GB" in gf.check(many).problems[0].reason
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    assert gf.check(empty).problems[0].reason == "the file has no examples"


def test_problems_are_named_up_to_a_limit_and_counted_beyond(tmp_path) -> None:  # noqa: ANN001
    path = _write(tmp_path, [b"nope"] * (gf.MAX_NAMED + 25))
    result = gf.check(path)
    assert result.problem_count == gf.MAX_NAMED + 25 and len(result.problems) == gf.MAX_NAMED
    assert "and 70 more" in result.summary()


def test_conversion_streams_in_constant_memory(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "big.jsonl"
    line = json.dumps(_chat(user="x" * 2000, answer="y" * 2000)).encode() + b"\n"
    with path.open("wb") as fh:
        for _ in range(4000):  # about 16 MB
            fh.write(line)

    class Sink(io.RawIOBase):
        size = 0

        def write(self, b) -> int:  # noqa: ANN001
            self.size += len(b)
            return len(b)

    sink = Sink()
    tracemalloc.start()
    result = gf.check(path)
    written = gf.write_converted(path, sink)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.ok and result.examples == 4000 and written == sink.size == result.output_bytes
    assert peak < 4 * 1024 * 1024, peak  # a few lines' worth, not the file's 16 MB
