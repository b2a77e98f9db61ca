"""The outbox: Slack messages written with the state change that causes them, delivered exactly once."""
