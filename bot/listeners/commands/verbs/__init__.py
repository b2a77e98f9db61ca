"""One module per family of `/ft` verbs; each registers its handlers in registry.py on import."""

from bot.listeners.commands.verbs import jobs, models, observe  # noqa: F401
