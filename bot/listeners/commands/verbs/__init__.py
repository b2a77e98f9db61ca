"""One module per family of `/ft` verbs; each registers its handlers with @handles."""

from bot.listeners.commands.verbs import approvals, jobs, models, observe  # noqa: F401
