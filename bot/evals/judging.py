"""Which answer a judge sees first: shared by the runner (asking) and the summary (reading the verdict)."""

from __future__ import annotations

import random


def judge_order(run_id: int, example_id: int) -> bool:
    """Whether the evaluated model's answer is shown first to the judge for this example: random
    per example against position bias, and the same on every worker (it is recomputed to read the verdict)."""
    return random.Random(f"{run_id}:{example_id}").random() < 0.5
