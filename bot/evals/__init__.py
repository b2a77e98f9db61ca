"""Evaluations: is a fine-tuned model better than its base on the team's own examples, and by how
much. examples.py (read a dataset into prompts and references), sampling.py (which file, which
examples), scorers.py (pure scores per example), stats.py (paired bootstrap, win / tie / loss),
store.py (runs and answers in the database, each asked once), runner.py (ask the models through the
provider interface), summary.py (the report's numbers), costs.py (what it will cost)."""
