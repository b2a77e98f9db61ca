"""Validate a fine-tuning dataset in one streaming pass, in constant memory.

The file is read line by line with a cap on a line's length (a longer line is reported and skipped
without being held), each line parsed with orjson (whose own nesting limit means no RecursionError),
checked, and its token count computed in the target model's encoding. Strings are encoded in batches
on a few threads (tiktoken releases the GIL while it encodes).

Memory is bounded whatever the file's size:
- duplicate detection keeps a 64-bit hash (and first line number) of at most `max_tracked` examples;
  later examples are still checked against those, but not added;
- median and p90 are exact while at most `max_tracked` examples have been seen, then come from a
  uniform reservoir sample of that size (min, max, mean and totals stay exact).
"""

from __future__ import annotations

import os
import random
import re
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from bot import clock
from bot.datasets.models import CHAT, COMPLETION, PREFERENCE, TOOLS, model_facts
from bot.datasets.pricing import price_for
from bot.datasets.tokens import get_encoding
from bot.retirements.table import RetirementTable, table_for

MIN_EXAMPLES = 10
MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64  # a real example nests about 6 deep; a tool's JSON schema a dozen or two
MAX_TRACKED = 200_000
# The token-count memo: at most this many strings of at most this many characters (a few MB).
MEMO_ENTRIES = 20_000
MEMO_MAX_CHARS = 500
LINES_SHOWN = 5  # line numbers listed per kind of problem
RETIRING_WITHIN_DAYS = 90  # a model whose training or serving ends sooner is warned about
GIVE_UP_AFTER = 1000  # lines read with not one JSON object among them: not a JSONL file
BATCH = 2048
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call", "refusal"})
PART_TYPES = {"text": "text", "image_url": "image_url", "input_audio": "input_audio", "file": "file"}
BOM = b"\xef\xbb\xbf"

ERRORS = {
    "utf16": "The file is UTF-16, not UTF-8: save it as UTF-8",
    "not_utf8": "Not UTF-8 text",
    "binary": "Contains NUL bytes: a binary file, not JSON Lines text",
    "blank_line": "Blank line",
    "line_too_long": f"Line longer than {MAX_LINE_BYTES // (1024 * 1024)} MB (skipped unread)",
    "not_json": "Not one JSON object",
    "too_deep": f"JSON nested deeper than {MAX_DEPTH} levels",
    "unknown_format": "Neither chat (`messages`), preference (`input`/`preferred_output`/`non_preferred_output`) nor `prompt`/`completion`",
    "mixed_formats": "Format differs from the first example's",
    "missing_messages_list": "`messages` missing or not a non-empty list",
    "message_not_object": "A message is not a JSON object",
    "message_missing_key": "A message lacks `role` or `content`",
    "message_unrecognized_key": "A message has an unrecognised key",
    "unrecognized_role": "Unrecognised role (system, developer, user, assistant, tool)",
    "missing_content": "Empty or missing content",
    "bad_content": "Content is neither a string nor a list of valid parts",
    "bad_name": "`name` is not a string",
    "bad_weight": "`weight` must be 0 or 1, and only on assistant messages",
    "no_assistant": "No assistant message to learn from (none, or all with weight 0)",
    "bad_tool_calls": "Malformed `tool_calls` (each needs an id, type function, a name and string arguments)",
    "unanswered_tool_call": "A tool call is not answered by a `tool` message before the conversation goes on",
    "unmatched_tool_reply": "A `tool` message answers no earlier tool call",
    "undeclared_tool": "A tool call names a function that the example's `tools` list does not declare",
    "bad_tools": "`tools` is not a list of function definitions with names",
    "bad_preference": "`input` needs `messages`; `preferred_output` and `non_preferred_output` one assistant message each",
    "bad_completion": "`prompt` and `completion` must be strings, the completion not empty",
}
FILE_ERRORS = {
    "empty": "The file holds no examples",
    "too_few_examples": f"Fewer than {MIN_EXAMPLES} examples: the provider requires at least {MIN_EXAMPLES}",
    "format_not_supported": "The model does not accept this format",
}
WARNINGS = {
    "no_system": "No system message",
    "no_user": "No user message",
    "too_long": "Longer than the model's limit per example: will be truncated",
    "duplicate": "Exact duplicate of an earlier example",
    "shared_with_validation": "Also in the training file",
    "unknown_model": "Model not in ftbot's table: limits and formats assumed",
}


@dataclass
class Issue:
    kind: str
    message: str
    lines: list[int] = field(default_factory=list)
    count: int = 0  # lines with this problem (a line with it twice counts once)
    detail: str | None = None  # the first line's detail (or the file's, for a file-wide problem)
    details: list[str | None] = field(default_factory=list)  # one per line in `lines`

    def where(self) -> str:
        """`lines 3 (why), 7 (why) and 12 more` / `40 times` / `` (plain text; the Slack report escapes it).

        Each shown line carries its own detail, so one parser message is never shown for three lines.
        """
        if self.lines:
            more = f" and {self.count - len(self.lines):,} more" if self.count > len(self.lines) else ""
            shown = [f"{n} ({d})" if d else str(n) for n, d in zip(self.lines, self.details + [None] * len(self.lines), strict=False)]
            return f"line{'s' if self.count > 1 else ''} {', '.join(shown)}{more}"
        return f"{self.count:,} times" if self.count > 1 else ""

    def file_detail(self) -> str | None:
        """A detail not already shown next to a line (file-wide problems)."""
        return None if self.lines else self.detail


@dataclass
class TokenStats:
    encoding: str
    limit: int
    min: int = 0
    max: int = 0
    mean: float = 0.0
    median: float = 0.0
    p90: float = 0.0
    total: int = 0
    over_limit: int = 0
    billed_per_epoch: int = 0  # sum(min(limit, tokens))
    epochs: int = 0
    billed_total: int = 0
    exact_percentiles: bool = True
    usd_per_million: float | None = None
    price_source: str | None = None
    estimated_usd: float | None = None
    assistant_min: int = 0
    assistant_max: int = 0
    messages_min: int = 0
    messages_max: int = 0
    messages_mean: float = 0.0
    messages_median: float = 0.0
    approximate: bool = False  # counted with a tiktoken encoding standing in for the model's tokenizer
    price_note: str | None = None  # why there is no price, when the provider prices jobs itself


@dataclass
class Report:
    path: str
    model: str
    format: str | None
    examples: int
    lines: int
    bytes: int
    errors: list[Issue]
    warnings: list[Issue]
    tokens: TokenStats | None
    stopped_early: str | None = None
    validation: Report | None = None
    model_notice: str | None = None  # the base model is retired or retiring (from the retirement table)

    @property
    def ok(self) -> bool:
        return not self.errors and (self.validation is None or self.validation.ok)

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "errors"
        if self.warnings or (self.validation is not None and self.validation.warnings):
            return "warnings"
        return "clean"

    def error_count(self) -> int:
        return sum(i.count for i in self.errors) + (self.validation.error_count() if self.validation else 0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"], d["verdict"] = self.ok, self.verdict
        if self.validation is not None:
            d["validation"] = self.validation.to_dict()
        return d


class _Issues:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.by_kind: dict[str, Issue] = {}
        self.last_line: dict[str, int] = {}

    def add(self, kind: str, line: int | None = None, detail: str | None = None, *, message: str | None = None) -> None:
        issue = self.by_kind.get(kind)
        if issue is None:
            issue = self.by_kind[kind] = Issue(kind, message or self.names[kind], detail=detail)
        if line is not None and self.last_line.get(kind) == line:
            # The same problem again on the same line (two unknown roles): one line, its details merged.
            if detail and issue.lines and issue.lines[-1] == line:
                had = issue.details[-1]
                if had is None:
                    issue.details[-1] = detail
                elif detail not in had.split(", "):
                    issue.details[-1] = f"{had}, {detail}"[:200]
                if len(issue.lines) == 1:
                    issue.detail = issue.details[0]
            return
        issue.count += 1
        if line is not None:
            self.last_line[kind] = line
            if len(issue.lines) < LINES_SHOWN:
                issue.lines.append(line)
                issue.details.append(detail)

    def list(self) -> list[Issue]:
        return sorted(self.by_kind.values(), key=lambda i: (i.lines[0] if i.lines else 0, i.kind))


def _depth(obj: Any) -> int:
    """Nesting depth without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > deepest:
            deepest = d
            if d > MAX_DEPTH:
                return d
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values() if isinstance(v, dict | list))
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o if isinstance(v, dict | list))
    return deepest


_PARSER_WHERE = re.compile(r"^(?P<why>.*?):? line \d+ column (?P<col>\d+) \(char \d+\)$")


def _json_reason(message: str) -> str:
    """orjson's "unexpected character: line 1 column 97 (char 96)" counts within the parsed line, which
    reads like the file's line 1: say "column 97 of the line" instead."""
    m = _PARSER_WHERE.match(message)
    if m is None:
        return message[:200]
    return f"{m.group('why')[:150]} at column {m.group('col')} of the line"


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class _Example:
    """What one example contributes to the statistics once its strings are encoded."""

    __slots__ = ("line", "fixed", "first", "end", "assistant", "messages", "key")

    def __init__(self, line: int, key: int) -> None:
        self.line, self.key = line, key
        self.fixed = 0  # tokens counted without encoding: 3 per message, 1 per name, 3 per conversation
        self.first = self.end = 0  # slice of the batch's strings
        self.assistant: list[int] = []  # indexes of assistant contents in the batch's strings
        self.messages = 0


class Validator:
    def __init__(
        self,
        model: str,
        *,
        token_limit: int | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_tracked: int = MAX_TRACKED,
        threads: int | None = None,
        price_overrides: dict[str, float] | None = None,
        retirements: RetirementTable | None = None,
        today: date | None = None,
        provider: str | None = None,
    ) -> None:
        self.facts = model_facts(model, provider)
        self.retirements = retirements
        # Whose retirement dates apply: Azure retires the same base models later than OpenAI.
        self.provider = provider or self.facts.provider
        self.today = today or clock.today()
        self.model = model
        self.limit = token_limit or self.facts.limit
        self.max_line_bytes = max_line_bytes
        self.max_tracked = max_tracked
        # tiktoken encodes without the GIL: two slices of a batch on two cores (more threads than
        # cores only add switching). Measured on 2 cores: 1.39 s → 1.0 s for 40 MB.
        self.threads = threads if threads is not None else min(2, os.cpu_count() or 1)
        # System prompts and stock answers repeat across examples: a bounded memo of short strings.
        self._memo: dict[str, int] = {}
        self.price_overrides = price_overrides
        self.enc = get_encoding(self.facts.encoding)
        # Roles are half the strings of a chat file and always the same few: counted once.
        self.role_tokens = {r: len(self.enc.encode_ordinary(r)) for r in ROLES}
        self._pool: ThreadPoolExecutor | None = None

    # ---- public --------------------------------------------------------------------------------

    def validate(self, path: str | Path, validation: str | Path | None = None) -> Report:
        seen: dict[int, int] = {}
        try:
            report = self._run(Path(path), seen=seen, against=None)
            if validation is not None:
                report.validation = v = self._run(Path(validation), seen={}, against=seen)
                if v.tokens is not None:
                    # Not trained on: no epochs, no billed tokens, no cost (its tokens still count
                    # toward the limit per example, so those stay).
                    v.tokens.epochs = v.tokens.billed_per_epoch = v.tokens.billed_total = 0
                    v.tokens.usd_per_million = v.tokens.price_source = v.tokens.estimated_usd = None
            return report
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    # ---- one file ------------------------------------------------------------------------------

    def _run(self, path: Path, *, seen: dict[int, int], against: dict[int, int] | None) -> Report:
        self.errors, self.warnings = _Issues(ERRORS | FILE_ERRORS), _Issues(WARNINGS)
        self.format: str | None = None
        self.family: str | None = None
        self.examples = 0
        self.parsed_any = False
        self.counts = array("I")
        self.msg_counts = array("I")
        self.rng = random.Random(0)
        self.tok_min = self.tok_max = self.tok_total = self.over = self.billed = 0
        self.asst_min = self.asst_max = 0
        self.recorded = 0
        self.msg_min = self.msg_max = self.msg_total = 0
        self.seen, self.against = seen, against
        self.batch: list[_Example] = []
        self.strings: list[str] = []
        lineno, stopped, size = 0, None, 0
        if not self.facts.known:
            checked = "; Together's client checks the real limit when the job starts" if self.facts.provider == "together" else ""
            message = f"Model {self.model[:80]} is not in ftbot's table: assumed limit {self.limit:,} tokens, {self.facts.encoding}{checked}"
            if self.facts.provider == "ray":
                message = f"{self.model[:80]} on a Ray cluster: assumed limit {self.limit:,} tokens, {self.facts.encoding}; your entrypoint's tokenizer and maximum length decide"
            self.warnings.add("unknown_model", message=message)
        self.model_notice: str | None = None
        if against is None:
            self._retirement_warning()
        with open(path, "rb", buffering=1 << 20) as f:
            head = f.read(8192)
            f.seek(0)
            if head.startswith((b"\xff\xfe", b"\xfe\xff")):
                self.errors.add("utf16", 1)
                stopped = "UTF-16"
            elif _looks_binary(head):
                # Said once: a binary file's every "line" would otherwise be an error of its own.
                self.errors.add("binary")
                stopped = "not read further: its first bytes are binary data"
            while stopped is None:
                line = f.readline(self.max_line_bytes + 1)
                if not line:
                    break
                lineno += 1
                size += len(line)
                if lineno == 1 and line.startswith(BOM):
                    line = line[3:]
                if len(line) > self.max_line_bytes and not line.endswith(b"\n"):
                    if not self.parsed_any and b"\x00" in line[:4096]:
                        self.errors.add("binary", lineno)
                        stopped = "stopped at line 1's NUL bytes: a binary file" if lineno == 1 else f"stopped at line {lineno:,}: binary data"
                        continue
                    while True:  # skip the rest of the line without holding it
                        chunk = f.readline(1 << 20)
                        size += len(chunk)
                        if not chunk or chunk.endswith(b"\n"):
                            break
                    self.errors.add("line_too_long", lineno)
                else:
                    self._line(line, lineno)
                if len(self.batch) >= BATCH:
                    self._flush()
                if not self.parsed_any and lineno >= GIVE_UP_AFTER:
                    stopped = f"stopped after {lineno:,} lines: not one of them is a JSON object"
            if stopped is not None:
                f.seek(0, 2)
                size = f.tell()
        self._flush()
        if self.examples == 0 and not self.errors.by_kind:
            self.errors.add("empty")
        elif 0 < self.examples < MIN_EXAMPLES:
            self.errors.add("too_few_examples", message=f"{self.examples} examples: the provider requires at least {MIN_EXAMPLES}")
        if self.format is not None and self.format not in self.facts.formats:
            accepted = ", ".join(sorted(self.facts.formats))
            self.errors.add("format_not_supported", message=f"{self.model[:80]} does not accept {self.format} data (it takes: {accepted})")
        return Report(
            path=str(path),
            model=self.model,
            format=self.format,
            examples=self.examples,
            lines=lineno,
            bytes=size,
            errors=self.errors.list(),
            warnings=self.warnings.list(),
            tokens=self._stats() if self.recorded else None,  # nothing counted: no figures of zeros
            stopped_early=stopped,
            model_notice=self.model_notice,
        )

    def _retirement_warning(self) -> None:
        """A notice on the report, not a warning on the file: the data is fine, the model is going."""
        if self.retirements is None or self.facts.provider == "ray":
            return  # the team's own cluster retires nothing
        r = self.retirements.lookup(self.provider, self.facts.base)
        if r is None:
            return
        today = self.today
        ended = [d for d in (r.training_ends, r.serving_ends) if d is not None and d <= today]
        serving = f"its fine-tunes stop serving on {r.serving_ends}" if r.serving_ends else "no end of serving announced for its fine-tunes"
        if ended:
            message = f"{self.facts.base} is retired: " + (f"training ended on {r.training_ends}" if r.training_ends and r.training_ends <= today else "training still open") + f"; {serving}"
        elif r.training_ends is not None and (r.training_ends - today).days <= RETIRING_WITHIN_DAYS:
            message = f"{self.facts.base} is retiring: new fine-tuning jobs end on {r.training_ends}; {serving}"
        elif r.serving_ends is not None and (r.serving_ends - today).days <= RETIRING_WITHIN_DAYS:
            message = f"{self.facts.base} is retiring: {serving}"
        else:
            return
        self.model_notice = message

    def _line(self, raw: bytes, lineno: int) -> None:
        stripped = raw.strip()
        if not stripped:
            self.errors.add("blank_line", lineno)
            return
        try:
            obj = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            try:
                stripped.decode("utf-8")
            except UnicodeDecodeError:
                self.errors.add("not_utf8", lineno)
                return
            if b"\x00" in stripped:
                self.errors.add("binary", lineno)
            elif "recursion" in str(exc).lower() or "depth" in str(exc).lower():
                self.errors.add("too_deep", lineno)
            else:
                self.errors.add("not_json", lineno, _json_reason(str(exc)))
            return
        if not isinstance(obj, dict):
            self.errors.add("not_json", lineno, f"a JSON {type(obj).__name__.replace('str', 'string')}, not an object")
            return
        self.parsed_any = True
        if stripped.count(b"{") + stripped.count(b"[") > MAX_DEPTH and _depth(obj) > MAX_DEPTH:
            self.errors.add("too_deep", lineno)
            return
        self.examples += 1
        key = hash(stripped)
        first = self.seen.get(key)
        if first is not None:
            self.warnings.add("duplicate", lineno, f"repeats line {first}")
        elif len(self.seen) < self.max_tracked:
            self.seen[key] = lineno
        if self.against is not None and key in self.against:
            self.warnings.add("shared_with_validation", lineno, f"line {self.against[key]} of the training file")
        # The family is decided by the keys, so a broken first example still sets it.
        family = _family(obj)
        if family is not None:
            if self.family is None:
                self.family = family
            elif family != self.family:
                self.errors.add("mixed_formats", lineno, f"{family}, not {self.family}")
                return
        ex = _Example(lineno, key)
        ex.first = len(self.strings)
        fmt = self._example(obj, lineno, ex)
        ex.end = len(self.strings)
        if fmt is None:
            del self.strings[ex.first :]
            return
        if self.format is None or fmt == TOOLS:
            self.format = fmt
        self.batch.append(ex)

    # ---- formats -------------------------------------------------------------------------------

    def _example(self, obj: dict[str, Any], lineno: int, ex: _Example) -> str | None:
        if "messages" in obj:
            return self._chat(obj, lineno, ex)
        if "input" in obj or "preferred_output" in obj or "non_preferred_output" in obj:
            return self._preference(obj, lineno, ex)
        if "prompt" in obj or "completion" in obj:
            p, c = obj.get("prompt"), obj.get("completion")
            if not isinstance(p, str) or not isinstance(c, str) or not c:
                self.errors.add("bad_completion", lineno)
                return None
            self.strings += (p, c)
            ex.assistant.append(len(self.strings) - 1)
            ex.messages = 2
            return COMPLETION
        self.errors.add("unknown_format", lineno)
        return None

    def _tools(self, obj: dict[str, Any], lineno: int, ex: _Example) -> set[str] | None:
        declared: set[str] = set()
        tools, functions = obj.get("tools"), obj.get("functions")
        if tools is None and functions is None:
            return None
        for spec, nested in ((tools, True), (functions, False)):
            if spec is None:
                continue
            if not isinstance(spec, list):
                self.errors.add("bad_tools", lineno)
                continue
            for t in spec:
                fn = t.get("function") if nested and isinstance(t, dict) else t
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    self.errors.add("bad_tools", lineno)
                    break
                declared.add(fn["name"])
            # The definitions count toward the example's context.
            self.strings.append(_json_text(spec))
        return declared

    def _chat(self, obj: dict[str, Any], lineno: int, ex: _Example, *, need_assistant: bool = True) -> str | None:
        messages = obj.get("messages")
        if not isinstance(messages, list) or not messages:
            self.errors.add("missing_messages_list", lineno)
            return None
        declared = self._tools(obj, lineno, ex)
        uses_tools = declared is not None
        errors = self.errors
        has_system = has_user = learns = False
        pending: set[str] = set()
        bad = False
        ex.messages += len(messages)
        for m in messages:
            if not isinstance(m, dict):
                errors.add("message_not_object", lineno)
                bad = True
                continue
            role = m.get("role")
            content = m.get("content")
            if "role" not in m or ("content" not in m and "tool_calls" not in m and "function_call" not in m):
                errors.add("message_missing_key", lineno)
                bad = True
            if not MESSAGE_KEYS.issuperset(m):
                errors.add("message_unrecognized_key", lineno, ", ".join(sorted(str(k)[:40] for k in m if k not in MESSAGE_KEYS))[:200])
                bad = True
            if role not in ROLES:
                errors.add("unrecognized_role", lineno, str(role)[:40])
                bad = True
            calls = m.get("tool_calls")
            fcall = m.get("function_call")
            if pending and role != "tool":
                errors.add("unanswered_tool_call", lineno)
                bad = True
                pending.clear()
            if calls is not None or fcall is not None:
                uses_tools = True
                if role != "assistant" or not self._calls(calls, fcall, declared, lineno, pending):
                    bad = True
            elif content is None or content == "" or content == []:
                errors.add("missing_content", lineno)
                bad = True
            if content is not None and content != "":
                if isinstance(content, str):
                    self.strings.append(content)
                    if role == "assistant":
                        ex.assistant.append(len(self.strings) - 1)
                elif isinstance(content, list) and self._parts(content):
                    self.strings.append(_json_text(content))
                    if role == "assistant":
                        ex.assistant.append(len(self.strings) - 1)
                else:
                    errors.add("bad_content", lineno)
                    bad = True
            for key in ("tool_calls", "function_call", "tool_call_id"):
                if m.get(key) is not None:
                    self.strings.append(_json_text(m[key]))
            if isinstance(role, str):
                known = self.role_tokens.get(role)
                if known is None:
                    self.strings.append(role)
                else:
                    ex.fixed += known
            name = m.get("name")
            if name is not None:
                if isinstance(name, str):
                    self.strings.append(name)
                    ex.fixed += 1
                else:
                    errors.add("bad_name", lineno)
                    bad = True
            weight = m.get("weight")
            if "weight" in m:
                if role != "assistant" or isinstance(weight, bool) or weight not in (0, 1):
                    errors.add("bad_weight", lineno)
                    bad = True
                self.strings.append(_json_text(weight))
            if role == "tool":
                tid = m.get("tool_call_id")
                if not isinstance(tid, str) or tid not in pending:
                    errors.add("unmatched_tool_reply", lineno)
                    bad = True
                else:
                    pending.discard(tid)
            elif role == "system" or role == "developer":
                has_system = True
            elif role == "user":
                has_user = True
            elif role == "assistant":
                if weight != 0:
                    learns = True
        ex.fixed += 3 * len(messages)
        if need_assistant and not learns:
            errors.add("no_assistant", lineno)
            bad = True
        if not has_system:
            self.warnings.add("no_system", lineno)
        if not has_user:
            self.warnings.add("no_user", lineno)
        if bad:
            return None
        ex.fixed += 3
        return TOOLS if uses_tools else CHAT

    def _calls(self, calls: Any, fcall: Any, declared: set[str] | None, lineno: int, pending: set[str]) -> bool:
        ok = True
        names: list[str] = []
        if calls is not None:
            if not isinstance(calls, list) or not calls:
                self.errors.add("bad_tool_calls", lineno)
                return False
            for c in calls:
                fn = c.get("function") if isinstance(c, dict) else None
                if (
                    not isinstance(c, dict)
                    or not isinstance(c.get("id"), str)
                    or c.get("type", "function") != "function"
                    or not isinstance(fn, dict)
                    or not isinstance(fn.get("name"), str)
                    or not isinstance(fn.get("arguments"), str)
                ):
                    self.errors.add("bad_tool_calls", lineno)
                    return False
                pending.add(c["id"])
                names.append(fn["name"])
        if fcall is not None:
            if not isinstance(fcall, dict) or not isinstance(fcall.get("name"), str) or not isinstance(fcall.get("arguments"), str):
                self.errors.add("bad_tool_calls", lineno)
                return False
            names.append(fcall["name"])
        if declared is None or any(n not in declared for n in names):
            self.errors.add("undeclared_tool", lineno, ", ".join(n[:40] for n in names if declared is None or n not in declared)[:200])
            ok = False
        return ok

    def _parts(self, parts: list[Any]) -> bool:
        for p in parts:
            if not isinstance(p, dict):
                return False
            kind = p.get("type")
            if not isinstance(kind, str) or kind not in PART_TYPES or p.get(PART_TYPES[kind]) is None:
                return False
            if kind == "text" and not isinstance(p["text"], str):
                return False
            if kind == "image_url" and not (isinstance(p["image_url"], dict) and isinstance(p["image_url"].get("url"), str)):
                return False
        return True

    def _preference(self, obj: dict[str, Any], lineno: int, ex: _Example) -> str | None:
        inp, good, bad = obj.get("input"), obj.get("preferred_output"), obj.get("non_preferred_output")
        if not isinstance(inp, dict) or not isinstance(good, list) or not isinstance(bad, list):
            self.errors.add("bad_preference", lineno)
            return None
        for out in (good, bad):
            if len(out) != 1 or not isinstance(out[0], dict) or out[0].get("role") != "assistant" or not isinstance(out[0].get("content"), str) or not out[0]["content"]:
                self.errors.add("bad_preference", lineno)
                return None
        if self._chat(inp, lineno, ex, need_assistant=False) is None:
            return None
        for out in (good, bad):
            self.strings += ("assistant", out[0]["content"])
            ex.assistant.append(len(self.strings) - 1)
        ex.fixed += 6
        ex.messages += 2
        return PREFERENCE

    # ---- tokens --------------------------------------------------------------------------------

    def _flush(self) -> None:
        if not self.batch:
            return
        strings = self.strings
        if len(strings) > 256 and self.threads > 1:
            # A few large slices, not one task per string: tiktoken encodes without the GIL, the
            # per-task overhead of a thread pool would cost more than it saves.
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ftbot-tokens")
            step = -(-len(strings) // self.threads)
            parts = [self._pool.submit(self._lengths, strings[i : i + step]) for i in range(0, len(strings), step)]
            lengths = [n for p in parts for n in p.result()]
        else:
            lengths = self._lengths(strings)
        for ex in self.batch:
            n = ex.fixed + sum(lengths[ex.first : ex.end])
            asst = sum(lengths[i] for i in ex.assistant)
            self._record(n, asst, ex)
        self.batch, self.strings = [], []

    def _lengths(self, strings: list[str]) -> list[int]:
        core, enc, memo = self.enc._core_bpe, self.enc, self._memo
        out = []
        for s in strings:
            n = memo.get(s)
            if n is None:
                try:
                    n = len(core.encode_ordinary(s))
                except UnicodeEncodeError:  # lone surrogates: tiktoken's public method repairs them
                    n = len(enc.encode_ordinary(s))
                if len(s) <= MEMO_MAX_CHARS and len(memo) < MEMO_ENTRIES:
                    memo[s] = n  # a dict write is atomic under the GIL; two threads may both count one
            out.append(n)
        return out

    def _record(self, n: int, asst: int, ex: _Example) -> None:
        if not self.recorded:
            self.tok_min = self.tok_max = n
            self.asst_min = self.asst_max = asst
            self.msg_min = self.msg_max = ex.messages
        self.tok_min, self.tok_max = min(self.tok_min, n), max(self.tok_max, n)
        self.asst_min, self.asst_max = min(self.asst_min, asst), max(self.asst_max, asst)
        self.msg_min, self.msg_max = min(self.msg_min, ex.messages), max(self.msg_max, ex.messages)
        self.msg_total += ex.messages
        self.tok_total += n
        self.billed += min(self.limit, n)
        if n > self.limit:
            self.over += 1
            self.warnings.add("too_long", ex.line, f"{n:,} tokens")
        self.recorded += 1
        if len(self.counts) < self.max_tracked:
            self.counts.append(n)
            self.msg_counts.append(ex.messages)
        else:
            j = self.rng.randrange(self.recorded)
            if j < self.max_tracked:
                self.counts[j] = n
                self.msg_counts[j] = ex.messages

    def _stats(self) -> TokenStats:
        recorded = self.recorded
        if not recorded:
            return TokenStats(self.facts.encoding, self.limit)
        n = recorded
        epochs = self.facts.default_epochs or epochs_for(n)
        s = TokenStats(
            encoding=self.facts.encoding,
            limit=self.limit,
            min=self.tok_min,
            max=self.tok_max,
            mean=round(self.tok_total / n, 1),
            median=_percentile(self.counts, 50),
            p90=_percentile(self.counts, 90),
            total=self.tok_total,
            over_limit=self.over,
            billed_per_epoch=self.billed,
            epochs=epochs,
            billed_total=epochs * self.billed,
            exact_percentiles=recorded <= self.max_tracked,
            assistant_min=self.asst_min or 0,
            assistant_max=self.asst_max or 0,
            messages_min=self.msg_min,
            messages_max=self.msg_max,
            messages_mean=round(self.msg_total / n, 2),
            messages_median=_percentile(self.msg_counts, 50),
        )
        s.approximate = self.facts.approximate_tokens
        # On Ray only the operator's own table prices a job: a published list is for someone else's GPUs.
        price = price_for(self.model, self.price_overrides, published=self.facts.provider != "ray")
        if price is None and self.facts.provider == "together":
            s.price_note = "Together prices each job itself (by model size, LoRA or full): ftbot asks for its estimate when the job starts"
        if price is None and self.facts.provider == "ray":
            s.price_note = "your own cluster: no price (Ray trains on the team's own GPUs)"
        if price is not None:
            s.usd_per_million, s.price_source = price.usd_per_million, price.source
            s.estimated_usd = round(s.billed_total * price.usd_per_million / 1_000_000, 2)
        return s


def _looks_binary(head: bytes) -> bool:
    """NUL bytes (never in JSON text), or bytes that are not UTF-8 and mostly control characters."""
    if b"\x00" in head:
        return True
    try:
        head[:-4].decode("utf-8")  # a multi-byte character may be cut at the end
        return False
    except UnicodeDecodeError:
        controls = sum(1 for b in head if b < 9 or 13 < b < 32 or b == 127)
        return controls > len(head) // 20


def _family(obj: dict[str, Any]) -> str | None:
    if "messages" in obj:
        return CHAT
    if "input" in obj or "preferred_output" in obj or "non_preferred_output" in obj:
        return PREFERENCE
    if "prompt" in obj or "completion" in obj:
        return COMPLETION
    return None


def epochs_for(n: int) -> int:
    """The epoch count OpenAI picks by default (its cookbook's rule)."""
    epochs = 3
    if n and epochs * n < 100:
        epochs = min(25, 100 // n)
    elif epochs * n > 25_000:
        epochs = max(1, 25_000 // n)
    return epochs


def _percentile(values: array, pct: int) -> float:
    """numpy's default (linear interpolation), so small files match the notebook exactly."""
    if not values:
        return 0
    s = sorted(values)
    k = (len(s) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    v = s[lo] + (s[hi] - s[lo]) * (k - lo)
    return int(v) if v == int(v) else round(v, 1)


def validate_file(
    path: str | Path,
    *,
    model: str,
    validation: str | Path | None = None,
    token_limit: int | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    price_overrides: dict[str, float] | None = None,
    retirements: RetirementTable | None = None,
    today: date | None = None,
    provider: str | None = None,
) -> Report:
    """`retirements`: the table to warn from (default: the shipped one); `provider`: whose dates apply
    (default: the model's own provider, OpenAI for gpt-*)."""
    v = Validator(
        model,
        token_limit=token_limit,
        max_line_bytes=max_line_bytes,
        price_overrides=price_overrides,
        retirements=retirements or table_for(None),
        today=today,
        provider=provider,
    )
    return v.validate(path, validation)
