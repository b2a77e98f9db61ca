"""What each base model accepts for fine-tuning: data formats, tokens per example, its encoding."""

from __future__ import annotations

from dataclasses import dataclass

from bot.datasets.tokens import encoding_name_for

CHAT, TOOLS, PREFERENCE, COMPLETION = "chat", "chat with tools", "preference", "prompt/completion"
CHAT_FORMATS = frozenset({CHAT, TOOLS})
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"


@dataclass(frozen=True)
class ModelFacts:
    name: str
    encoding: str
    limit: int  # tokens per training example; longer ones are truncated
    formats: frozenset[str]
    known: bool = True
    provider: str = "openai"

    @property
    def base(self) -> str:
        """The base model: `ft:<base>:…` → `<base>`."""
        return self.name.split(":")[1] if self.name.startswith("ft:") and self.name.count(":") >= 2 else self.name


# Longest prefix wins. Limits from OpenAI's fine-tuning guide (training context per example).
_TABLE: tuple[tuple[str, int, frozenset[str]], ...] = (
    ("gpt-4.1-nano", 65_536, frozenset({CHAT, TOOLS, PREFERENCE})),
    ("gpt-4.1-mini", 65_536, frozenset({CHAT, TOOLS, PREFERENCE})),
    ("gpt-4.1", 65_536, frozenset({CHAT, TOOLS, PREFERENCE})),
    ("gpt-4o-mini", 65_536, frozenset({CHAT, TOOLS, PREFERENCE})),
    ("gpt-4o", 65_536, frozenset({CHAT, TOOLS, PREFERENCE})),
    ("gpt-4-0613", 8_192, frozenset({CHAT, TOOLS})),
    ("gpt-3.5-turbo-0613", 4_096, frozenset({CHAT, TOOLS})),
    ("gpt-3.5-turbo", 16_385, frozenset({CHAT, TOOLS})),
    ("babbage-002", 16_384, frozenset({COMPLETION})),
    ("davinci-002", 16_384, frozenset({COMPLETION})),
)


def model_facts(model: str) -> ModelFacts:
    base = model.split(":")[1] if model.startswith("ft:") and model.count(":") >= 2 else model
    for prefix, limit, formats in _TABLE:
        if base.startswith(prefix):
            return ModelFacts(model, encoding_name_for(base), limit, formats)
    return ModelFacts(model, encoding_name_for(base), 65_536, frozenset({CHAT, TOOLS, PREFERENCE}), known=False)
