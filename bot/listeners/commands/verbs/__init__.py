"""One module per family of `/ft` verbs; each registers its handlers with @handles."""

from bot.listeners.commands.verbs import datasets, jobs, models, observe  # noqa: F401
