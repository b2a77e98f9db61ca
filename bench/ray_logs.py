"""What reading a Ray job's log costs the poller: parsing a long Hugging Face-style log.

A log of N steps, each with a progress-bar line, a metric dict and `--chatter` lines of noise, read
(a) whole at once, (b) as the poller reads it: in pieces of one poll each, resuming from the parser
state kept in memory, and (c) resuming after a restart (the state rebuilt from the lines before).

    python bench/ray_logs.py [--steps 20000] [--chatter 3] [--per-poll 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot.provider import ray_logs  # noqa: E402


def make_log(steps: int, chatter: int) -> list[str]:
    lines = ["***** Running training *****", f"  Total optimization steps = {steps:,}"]
    for s in range(1, steps + 1):
        lines.append(f"{s * 100 // steps:3d}%|####      | {s}/{steps} [00:10<00:20, 3.1it/s]")
        lines += [f"[rank0] step {s} micro-batch {i}: tokens/s=1234" for i in range(chatter)]
        lines.append(str({"loss": 2.0 - s / steps, "grad_norm": 1.1, "learning_rate": 2e-5 * (1 - s / steps), "epoch": round(s / 1000, 3)}))
        if s % 500 == 0:
            lines.append(f"Saving model checkpoint to /out/checkpoint-{s}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--chatter", type=int, default=3)
    ap.add_argument("--per-poll", type=int, default=50, help="steps logged between two polls")
    args = ap.parse_args()
    lines = make_log(args.steps, args.chatter)
    per_step = 2 + args.chatter
    print(f"{platform.node()} {platform.processor() or platform.machine()}, Python {platform.python_version()}: {len(lines):,} lines, {sum(map(len, lines)) / 1e6:.1f} MB")

    t = time.perf_counter()
    whole = ray_logs.parse(lines, 0, ray_logs.LogState())
    print(f"whole log at once:        {time.perf_counter() - t:6.2f} s, {sum(e['type'] == 'metrics' for e in whole.events):,} metric points")

    t = time.perf_counter()
    state, start, polls, shown = ray_logs.LogState(), 0, 0, 0
    chunk = args.per_poll * per_step
    while start < len(lines):
        part = ray_logs.parse(lines[start : start + chunk], start, state)
        state, start, polls = part.state, part.next_line, polls + 1
        shown += sum(e["type"] != "metrics" for e in part.events)
    took = time.perf_counter() - t
    print(f"in {polls:,} polls (cached): {took:6.2f} s, {took / polls * 1000:.2f} ms a poll; {shown:,} thread lines for {len(lines):,} log lines")

    t = time.perf_counter()
    ray_logs.parse(lines[: len(lines) // 2], 0, ray_logs.LogState(), emit=False)
    print(f"restart at half way:      {time.perf_counter() - t:6.2f} s to rebuild the state once")


if __name__ == "__main__":
    main()
