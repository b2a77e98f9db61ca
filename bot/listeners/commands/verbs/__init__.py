"""One module per family of `/ft` verbs; each registers its handlers in registry.py on import."""

from bot.listeners.commands.verbs import approvals, datasets, evals, jobs, migrate, models, observe  # noqa: F401
