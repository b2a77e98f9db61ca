"""Moving a team's fine-tuned model to another provider before its own stops serving: find what made
it, copy its data, translate its recipe, start it once on Confirm, and follow it to the end.

Listeners call in here; nothing here imports a listener or the worker."""
