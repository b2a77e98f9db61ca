"""Training data for Gemini tuning on Vertex AI: OpenAI chat JSONL converted to Gemini's shape.

Gemini's example: `{"systemInstruction": {"parts": [{"text": …}]}, "contents": [{"role": "user" |
"model", "parts": [{"text": …}]}]}` (shared/reference/vertex.md). A file already in that shape is
taken as it is, byte for byte per line.

Two passes over a local file, each in constant memory (one line at a time, never the whole file):
`check()` reads everything and names, by line, what cannot be converted (tool calls, images, audio
or files, a `weight` of 0, preference pairs, a system message in the middle of a conversation…),
and measures Gemini's limits; only when it finds nothing blocking does `write_converted()` stream the
converted lines to their destination (a bucket object opened for writing). So nothing is uploaded
from a file that cannot be used.

Token counts are approximate: Gemini's tokenizer is not available offline, so text is counted in
OpenAI's o200k_base encoding plus a few tokens per turn; the report says so.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from bot.provider.vertex_models import (
    MAX_EXAMPLE_TOKENS,
    MAX_TRAINING_EXAMPLES,
    MAX_TRAINING_FILE_BYTES,
    MAX_VALIDATION_EXAMPLES,
)

# A line longer than this is refused without being read whole (a text example within Gemini's
# 131,072 tokens is far smaller; this bounds memory for a file with no line breaks at all).
MAX_LINE_BYTES = 32 * 1024 * 1024
# Problems named in full; beyond this they are counted.
MAX_NAMED = 50
TURN_OVERHEAD_TOKENS = 4
GEMINI = "gemini"
OPENAI_CHAT = "openai-chat"
PROMPT_COMPLETION = "prompt-completion"
_ROLES = {"user": "user", "assistant": "model"}
_SYSTEM_ROLES = {"system", "developer"}
_MESSAGE_KEYS = {"role", "content", "weight"}
_GEMINI_KEYS = {"contents", "systemInstruction", "tools"}


class Unconvertible(ValueError):
    """This example cannot be expressed in Gemini's format; the message says why."""


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    reason: str


@dataclass
class GeminiCheck:
    """What `check()` found. `problems` block the upload; `warnings` do not (Vertex drops an
    example over the token limit and reports it in the job's dataset statistics)."""

    path: str
    validation: bool = False
    format: str | None = None  # gemini | openai-chat | prompt-completion (the first example's)
    examples: int = 0
    blank_lines: int = 0
    output_bytes: int = 0  # the converted file's size
    total_tokens: int = 0  # approximate, one pass over the data
    max_example_tokens: int = 0
    min_example_tokens: int = 0
    # Examples' token counts for the median and p90: all of them up to SAMPLE_SIZE, then a uniform
    # reservoir sample (fixed seed: the same file gives the same report), so memory stays bounded.
    token_sample: list[int] = field(default_factory=list, repr=False)
    sample_rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False, compare=False)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    warnings: list[Problem] = field(default_factory=list)
    warning_count: int = 0
    weight_one_messages: int = 0  # `weight: 1` dropped: Gemini trains on every model turn anyway
    tokens_approximate: bool = True
    token_method: str = "approximate: counted in OpenAI's o200k_base encoding, not Gemini's tokenizer"

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def _add(self, bucket: list[Problem], line: int, reason: str, *, warning: bool = False) -> None:
        if warning:
            self.warning_count += 1
        else:
            self.problem_count += 1
        if len(bucket) < MAX_NAMED:
            bucket.append(Problem(line, reason))

    def problem(self, line: int, reason: str) -> None:
        self._add(self.problems, line, reason)

    def warning(self, line: int, reason: str) -> None:
        self._add(self.warnings, line, reason, warning=True)

    def summary(self) -> str:
        """One plain-text paragraph (escaping is the Block Kit builder's job)."""
        what = "validation" if self.validation else "training"
        head = f"{self.examples} {what} examples ({self.format or 'no examples'}), about {self.total_tokens:,} tokens ({self.token_method})"
        if self.ok:
            return head + "."
        named = "; ".join(f"line {p.line}: {p.reason}" for p in self.problems[:5])
        more = f" and {self.problem_count - 5} more" if self.problem_count > 5 else ""
        return f"{head}. Cannot be used for Gemini: {named}{more}."


# ---- reading lines --------------------------------------------------------------------------


def _lines(fh: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the line break) for each line; None for a line too long to read
    (skipped to its end in chunks, never held whole)."""
    n = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        n += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:
                rest = fh.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield n, None
            continue
        yield n, raw.rstrip(b"\r\n")


# ---- one example ----------------------------------------------------------------------------


def _text_parts(content: Any, where: str) -> list[dict[str, str]]:
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                raise Unconvertible(f"{where}: a content part is not an object")
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                parts.append({"text": part["text"]})
            elif kind in {"image_url", "input_image"}:
                raise Unconvertible(f"{where} has an image: ftbot converts text only (upload the file in Gemini's format with the images in Cloud Storage)")
            elif kind in {"input_audio", "audio"}:
                raise Unconvertible(f"{where} has audio: ftbot converts text only")
            elif kind == "file":
                raise Unconvertible(f"{where} has a file part: ftbot converts text only")
            else:
                raise Unconvertible(f"{where} has a content part of type {str(kind)[:40]!r}, which has no Gemini equivalent here")
        return parts
    if content is None:
        return []
    raise Unconvertible(f"{where}: content must be text or a list of parts")


def from_openai_chat(example: dict[str, Any], check: GeminiCheck | None = None) -> dict[str, Any]:
    """One OpenAI chat example as Gemini's; raises Unconvertible naming the first obstacle."""
    if "input" in example and "preferred_output" in example:
        raise Unconvertible("a preference (DPO) example: Vertex's supervised tuning takes conversations only")
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Unconvertible("'messages' must be a non-empty list")
    if example.get("tools") or example.get("functions"):
        raise Unconvertible("declares tools: tool use is not converted to Gemini's format")
    system: list[dict[str, str]] = []
    contents: list[dict[str, Any]] = []
    for i, m in enumerate(messages, 1):
        where = f"message {i}"
        if not isinstance(m, dict):
            raise Unconvertible(f"{where} is not an object")
        role = m.get("role")
        if m.get("tool_calls") or m.get("function_call"):
            raise Unconvertible(f"{where} makes a tool call: tool calls are not converted to Gemini's format")
        if role in {"tool", "function"}:
            raise Unconvertible(f"{where} is a tool result: tool calls are not converted to Gemini's format")
        extra = sorted(set(m) - _MESSAGE_KEYS - {"refusal"})
        if extra:
            raise Unconvertible(f"{where} has {', '.join(map(str, extra))[:80]}, which Gemini's format cannot carry")
        if "weight" in m:
            weight = m["weight"]
            if weight == 0 and not isinstance(weight, bool):
                raise Unconvertible(f"{where} has weight 0 (not trained on): Gemini trains on every model turn, so the example would teach that answer; remove the message or the example")
            if weight != 1 or isinstance(weight, bool):
                raise Unconvertible(f"{where} has weight {str(weight)[:20]}: only 0 or 1 exist, and Gemini has no weights")
            if check is not None:
                check.weight_one_messages += 1
        if m.get("refusal"):
            raise Unconvertible(f"{where} is a refusal, which Gemini's format cannot carry")
        if role in _SYSTEM_ROLES:
            if contents:
                raise Unconvertible(f"{where} is a {role} message after the conversation started: Gemini takes one system instruction, before it")
            system += _text_parts(m.get("content"), where)
            continue
        if role not in _ROLES:
            raise Unconvertible(f"{where} has role {str(role)[:30]!r}; Gemini knows user and model (OpenAI's user and assistant)")
        parts = _text_parts(m.get("content"), where)
        if not parts or not any(p["text"] for p in parts):
            raise Unconvertible(f"{where} ({role}) has no text")
        contents.append({"role": _ROLES[role], "parts": parts})
    if not any(c["role"] == "model" for c in contents):
        raise Unconvertible("no assistant message: Gemini learns from the model's turns")
    if contents[-1]["role"] != "model":
        raise Unconvertible("the conversation ends with a user message: the last turn must be the assistant's answer")
    out: dict[str, Any] = {}
    if system:
        out["systemInstruction"] = {"parts": system}
    out["contents"] = contents
    return out


def from_prompt_completion(example: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = example.get("prompt"), example.get("completion")
    if not isinstance(prompt, str) or not isinstance(completion, str) or not completion:
        raise Unconvertible("prompt and completion must both be text (the completion not empty)")
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}, {"role": "model", "parts": [{"text": completion}]}]}


def check_gemini(example: dict[str, Any]) -> None:
    """An example already in Gemini's format, taken as is: only its structure is checked."""
    extra = sorted(set(example) - _GEMINI_KEYS)
    if extra:
        raise Unconvertible(f"has {', '.join(extra)[:80]}: a Gemini example has contents, systemInstruction and tools")
    contents = example.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Unconvertible("'contents' must be a non-empty list")
    for i, c in enumerate(contents, 1):
        if not isinstance(c, dict) or c.get("role") not in {"user", "model"}:
            raise Unconvertible(f"contents {i} must have role user or model")
        if not isinstance(c.get("parts"), list) or not c["parts"] or not all(isinstance(p, dict) for p in c["parts"]):
            raise Unconvertible(f"contents {i} must have a non-empty list of parts")
    if contents[-1]["role"] != "model":
        raise Unconvertible("the last of contents must be the model's turn")
    si = example.get("systemInstruction")
    if si is not None and (not isinstance(si, dict) or not isinstance(si.get("parts"), list)):
        raise Unconvertible("systemInstruction must be an object with a list of parts")


def detect(example: dict[str, Any]) -> str | None:
    if "contents" in example:
        return GEMINI
    if "messages" in example or ("input" in example and "preferred_output" in example):
        return OPENAI_CHAT
    if "prompt" in example and "completion" in example:
        return PROMPT_COMPLETION
    return None


def convert(example: dict[str, Any], fmt: str, check: GeminiCheck | None = None) -> dict[str, Any] | None:
    """The Gemini example for `example` read as `fmt`; None when it is Gemini's already (take the
    line as it is)."""
    if fmt == GEMINI:
        check_gemini(example)
        return None
    if fmt == OPENAI_CHAT:
        return from_openai_chat(example, check)
    return from_prompt_completion(example)


def approx_tokens(example: dict[str, Any]) -> int:
    from bot.datasets.tokens import count, get_encoding

    enc = get_encoding("o200k_base")
    total = 0
    turns = list(example.get("contents") or [])
    si = example.get("systemInstruction")
    if isinstance(si, dict):
        turns.append(si)
    for turn in turns:
        total += TURN_OVERHEAD_TOKENS
        for part in turn.get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += count(enc, part["text"])
    return total


# ---- the file -------------------------------------------------------------------------------


def _examples(fh: BinaryIO, check: GeminiCheck, *, count_tokens: bool = True) -> Iterator[tuple[int, bytes]]:
    """(line number, the line to write) for every usable example; problems go into `check`."""
    for n, raw in _lines(fh):
        if raw is None:
            check.problem(n, f"the line is longer than {MAX_LINE_BYTES // (1024 * 1024)} MB")
            continue
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a byte-order mark some editors write
        if not raw.strip():
            check.blank_lines += 1
            continue
        try:
            example = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reason = "is not UTF-8 text" if "utf-8" in str(exc).lower() else "is not valid JSON"
            check.problem(n, reason)
            continue
        if not isinstance(example, dict):
            check.problem(n, "is not a JSON object")
            continue
        fmt = detect(example)
        if fmt is None:
            check.problem(n, "is neither an OpenAI chat example (messages) nor a Gemini one (contents)")
            continue
        if check.format is None:
            check.format = fmt
        elif fmt != check.format and GEMINI in (fmt, check.format):
            check.problem(n, f"is in {fmt} format while the file began in {check.format}: one file, one format")
            continue
        try:
            converted = convert(example, fmt, check)
        except Unconvertible as exc:
            check.problem(n, str(exc))
            continue
        out = raw if converted is None else orjson.dumps(converted)
        tokens = approx_tokens(converted if converted is not None else example) if count_tokens else 0
        check.examples += 1
        check.total_tokens += tokens
        check.max_example_tokens = max(check.max_example_tokens, tokens)
        if count_tokens:
            check.min_example_tokens = tokens if check.examples == 1 else min(check.min_example_tokens, tokens)
            _sample(check, tokens)
        if tokens > MAX_EXAMPLE_TOKENS:
            check.warning(n, f"about {tokens:,} tokens (approximate), over Gemini's {MAX_EXAMPLE_TOKENS:,} an example: Vertex drops it")
        check.output_bytes += len(out) + 1
        yield n, out


SAMPLE_SIZE = 10_000


def _sample(check: GeminiCheck, tokens: int) -> None:
    if len(check.token_sample) < SAMPLE_SIZE:
        check.token_sample.append(tokens)
        return
    j = check.sample_rng.randrange(check.examples)
    if j < SAMPLE_SIZE:
        check.token_sample[j] = tokens


def check(path: str | Path, *, validation: bool = False) -> GeminiCheck:
    """Read the whole file once: what would be uploaded, and every reason it cannot be."""
    result = GeminiCheck(path=str(path), validation=validation)
    with open(path, "rb") as fh:
        for _ in _examples(fh, result):
            pass
    if result.examples == 0 and result.problem_count == 0:
        result.problem(0, "the file has no examples")
    if result.output_bytes > MAX_TRAINING_FILE_BYTES:
        result.problem(0, f"the converted file is {result.output_bytes / 1024**3:.2f} GB; Gemini takes at most 1 GB")
    limit = MAX_VALIDATION_EXAMPLES if validation else MAX_TRAINING_EXAMPLES
    if result.examples > limit:
        what = "a validation file" if validation else "a training file"
        result.problem(0, f"{result.examples:,} examples; Gemini takes at most {limit:,} in {what}")
    return result


def write_converted(path: str | Path, out: BinaryIO) -> int:
    """Stream the Gemini-format file into `out` (call after a clean `check`); returns the bytes
    written. Raises Unconvertible if the file changed since and now has a problem."""
    result = GeminiCheck(path=str(path))
    written = 0
    with open(path, "rb") as fh:
        for _, line in _examples(fh, result, count_tokens=False):  # counted by check() already
            if result.problem_count:
                break
            out.write(line)
            out.write(b"\n")
            written += len(line) + 1
    if result.problem_count:
        first = result.problems[0]
        raise Unconvertible(f"line {first.line}: {first.reason}")
    return written
