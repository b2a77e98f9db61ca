"""What each base model accepts for fine-tuning: data formats, tokens per example, its encoding."""

from __future__ import annotations

from dataclasses import dataclass

from bot.datasets.tokens import encoding_name_for
from bot.provider import ray_defaults

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
    default_epochs: int | None = None  # None: OpenAI's rule by dataset size (epochs_for)
    # Tokens counted with a tiktoken encoding standing in for the model's own tokenizer (open models).
    approximate_tokens: bool = False

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


# Together AI's open models: the SFT context length of LoRA fine-tuning from Together's "Supported
# models" page (docs.together.ai/docs/fine-tuning-models; Llama 3.1 takes 32K-131K with LoRA only).
# A model not listed here is checked against TOGETHER_ASSUMED_LIMIT, and Together's own client checks
# the real limit (GET /fine-tunes/models/limits) when the job starts.
TOGETHER_DEFAULT_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
VERTEX_DEFAULT_MODEL = "gemini-3.5-flash"  # bot.provider.vertex_adapter.DEFAULT_MODEL
_TOGETHER: dict[str, int] = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference": 131_072,
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference": 131_072,
    "openai/gpt-oss-20b": 16_384,
    "openai/gpt-oss-120b": 16_384,
}
TOGETHER_ASSUMED_LIMIT = 32_768
TOGETHER_EPOCHS = 1  # the `together` client's default n_epochs
# Together counts with each model's own tokenizer; o200k_base is the closest tiktoken stands in with.
TOGETHER_ENCODING = "o200k_base"
TOGETHER_FORMATS = frozenset({CHAT, TOOLS, PREFERENCE, COMPLETION})
TOGETHER_MODELS = (
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference",
    "meta-llama/Llama-3.3-70B-Instruct-Reference",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "openai/gpt-oss-20b",
)


# A Ray cluster trains with the team's own entrypoint and tokenizer: the limit is the trainer's, the
# count an o200k_base approximation, the epochs the Ray adapter's default, and there is no price.
RAY_ASSUMED_LIMIT = 32_768


def is_together_model(model: str) -> bool:
    """Together's models are `org/name`; OpenAI's and Azure's never contain a slash."""
    return "/" in model and not model.startswith("ft:")


def default_model_for(provider: str | None) -> str:
    if provider == "ray":
        return ray_defaults.DEFAULT_MODEL
    if provider == "vertex":
        return VERTEX_DEFAULT_MODEL
    return TOGETHER_DEFAULT_MODEL if provider == "together" else DEFAULT_MODEL


OPENAI_MODELS = (
    "gpt-4o-mini-2024-07-18",
    "gpt-4o-2024-08-06",
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-3.5-turbo-0125",
)


def models_for(provider: str | None) -> tuple[str, ...]:
    """The base models a dataset can be checked for at `provider` (the upload form's choices)."""
    if provider == "ray":
        return ray_defaults.BASE_MODELS
    return TOGETHER_MODELS if provider == "together" else OPENAI_MODELS


def model_facts(model: str, provider: str | None = None) -> ModelFacts:
    """`provider`: where the job will run. It decides the family before the model's name does: a
    Ray cluster's `org/name` ids are Hugging Face models, not Together's."""
    if provider == "ray":
        return ModelFacts(
            model, TOGETHER_ENCODING, RAY_ASSUMED_LIMIT, TOGETHER_FORMATS, known=False, provider="ray",
            default_epochs=int(ray_defaults.DEFAULTS["n_epochs"]), approximate_tokens=True,
        )
    if is_together_model(model):
        limit = _TOGETHER.get(model)
        return ModelFacts(
            model, TOGETHER_ENCODING, limit or TOGETHER_ASSUMED_LIMIT, TOGETHER_FORMATS, known=limit is not None, provider="together",
            default_epochs=TOGETHER_EPOCHS, approximate_tokens=True,
        )
    base = model.split(":")[1] if model.startswith("ft:") and model.count(":") >= 2 else model
    for prefix, limit, formats in _TABLE:
        if base.startswith(prefix):
            return ModelFacts(model, encoding_name_for(base), limit, formats)
    return ModelFacts(model, encoding_name_for(base), 65_536, frozenset({CHAT, TOOLS, PREFERENCE}), known=False)
