"""The Ray adapter's defaults, importable without the `ray` package (the datasets domain and the start
form read them; only bot/provider/ray_adapter.py imports the SDK)."""

from __future__ import annotations

DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
# Filled in when a start does not say (the entrypoint always gets a value).
DEFAULTS = {"n_epochs": 3, "batch_size": 8, "learning_rate": 2e-4}
# Offered when a Ray cluster is enabled: Hugging Face ids the team's trainer loads (the first is the
# adapter's default); `/ft start FILE model=<any id> provider=ray` takes any other.
BASE_MODELS = (
    DEFAULT_MODEL,
    "Qwen/Qwen2.5-7B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
)
