"""ftbot's dataset validator against the OpenAI cookbook notebook's method, same input, same run.

    python bench/validate.py [--mb 200] [--model gpt-3.5-turbo-0125] [--keep PATH]

Generates a chat dataset of about --mb megabytes (streamed to disk, deterministic), then runs, each in
its own fresh process so peak memory (ru_maxrss) is its own:
- baseline: a faithful re-implementation of `Chat_finetuning_data_prep.ipynb` — the whole file loaded
  with `json`, the notebook's format checks, its token counting with tiktoken (one encode per field
  value, assistant messages encoded a second time), numpy for the distributions;
- ftbot: `bot.datasets.validate.validate_file` (streaming, orjson, batched tiktoken on threads).
Prints throughput, peak memory and the ratio, and checks both report the same counts on the checks
they share (examples, format errors, missing system / user messages, total tokens, billed tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "the model answers questions about orders refunds shipping accounts passwords invoices and "
    "returns politely briefly accurately customer support agent please thank you sorry help "
    "delivery tracking number warehouse weekend monday payment card declined retry later"
).split()


def generate(path: Path, target_bytes: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    written = n = 0
    with path.open("w", encoding="utf-8") as f:
        while written < target_bytes:
            def text(lo: int, hi: int) -> str:
                return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

            messages = []
            if n % 10:  # every tenth example has no system message
                messages.append({"role": "system", "content": "You are a helpful support agent. " + text(5, 20)})
            for _ in range(rng.randint(1, 3)):
                messages.append({"role": "user", "content": text(10, 80)})
                messages.append({"role": "assistant", "content": text(20, 200)})
            line = json.dumps({"messages": messages}) + "\n"
            f.write(line)
            written += len(line.encode())
            n += 1
    return n


# ---- the notebook's method (baseline) -------------------------------------------------------------


def baseline(path: str, model: str) -> dict:
    from collections import defaultdict

    import numpy as np

    from bot.datasets.models import model_facts
    from bot.datasets.tokens import get_encoding

    # Load the dataset
    with open(path, encoding="utf-8") as f:
        dataset = [json.loads(line) for line in f]

    # Format error checks
    format_errors: dict[str, int] = defaultdict(int)
    for ex in dataset:
        if not isinstance(ex, dict):
            format_errors["data_type"] += 1
            continue
        messages = ex.get("messages", None)
        if not messages:
            format_errors["missing_messages_list"] += 1
            continue
        for message in messages:
            if "role" not in message or "content" not in message:
                format_errors["message_missing_key"] += 1
            if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
                format_errors["message_unrecognized_key"] += 1
            if message.get("role", None) not in ("system", "user", "assistant", "function"):
                format_errors["unrecognized_role"] += 1
            content = message.get("content", None)
            function_call = message.get("function_call", None)
            if (not content and not function_call) or not isinstance(content, str):
                format_errors["missing_content"] += 1
        if not any(message.get("role", None) == "assistant" for message in messages):
            format_errors["example_missing_assistant_message"] += 1

    # The notebook calls tiktoken.get_encoding("cl100k_base"); offline, the same Encoding built from
    # the same rank files.
    facts = model_facts(model)
    encoding = get_encoding(facts.encoding)

    def num_tokens_from_messages(messages, tokens_per_message=3, tokens_per_name=1):  # noqa: ANN001, ANN202
        num_tokens = 0
        for message in messages:
            num_tokens += tokens_per_message
            for key, value in message.items():
                num_tokens += len(encoding.encode(value))
                if key == "name":
                    num_tokens += tokens_per_name
        num_tokens += 3
        return num_tokens

    def num_assistant_tokens_from_messages(messages):  # noqa: ANN001, ANN202
        num_tokens = 0
        for message in messages:
            if message["role"] == "assistant":
                num_tokens += len(encoding.encode(message["content"]))
        return num_tokens

    n_missing_system = 0
    n_missing_user = 0
    n_messages = []
    convo_lens = []
    assistant_message_lens = []
    for ex in dataset:
        messages = ex["messages"]
        if not any(message["role"] == "system" for message in messages):
            n_missing_system += 1
        if not any(message["role"] == "user" for message in messages):
            n_missing_user += 1
        n_messages.append(len(messages))
        convo_lens.append(num_tokens_from_messages(messages))
        assistant_message_lens.append(num_assistant_tokens_from_messages(messages))

    stats = {k: (float(np.min(v)), float(np.max(v)), float(np.mean(v)), float(np.median(v)), float(np.quantile(v, 0.9))) for k, v in (("n_messages", n_messages), ("convo_lens", convo_lens), ("assistant", assistant_message_lens))}
    max_tokens = facts.limit
    n_too_long = sum(length > max_tokens for length in convo_lens)

    target_epochs, min_target_examples, max_target_examples = 3, 100, 25000
    min_default_epochs, max_default_epochs = 1, 25
    n_epochs = target_epochs
    n_train_examples = len(dataset)
    if n_train_examples * target_epochs < min_target_examples:
        n_epochs = min(max_default_epochs, min_target_examples // n_train_examples)
    elif n_train_examples * target_epochs > max_target_examples:
        n_epochs = max(min_default_epochs, max_target_examples // n_train_examples)
    n_billing_tokens_in_dataset = sum(min(max_tokens, length) for length in convo_lens)
    return {
        "examples": len(dataset),
        "format_errors": sum(format_errors.values()),
        "missing_system": n_missing_system,
        "missing_user": n_missing_user,
        "total_tokens": int(sum(convo_lens)),
        "too_long": int(n_too_long),
        "epochs": n_epochs,
        "billed_tokens": n_epochs * n_billing_tokens_in_dataset,
        "median": stats["convo_lens"][3],
    }


def ftbot(path: str, model: str) -> dict:
    from bot.datasets.validate import validate_file

    r = validate_file(path, model=model)
    w = {i.kind: i.count for i in r.warnings}
    t = r.tokens
    return {
        "examples": r.examples,
        "format_errors": sum(i.count for i in r.errors if i.kind != "too_few_examples"),
        "missing_system": w.get("no_system", 0),
        "missing_user": w.get("no_user", 0),
        "total_tokens": t.total,
        "too_long": t.over_limit,
        "epochs": t.epochs,
        "billed_tokens": t.billed_total,
        "median": float(t.median),
    }


def _child(which: str, path: str, model: str) -> None:
    start = time.perf_counter()
    result = (baseline if which == "baseline" else ftbot)(path, model)
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"result": result, "seconds": elapsed, "peak_mb": peak_kb / 1024}))


def run(which: str, path: Path, model: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--path", str(path), "--model", model],
        check=True, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=200)
    p.add_argument("--model", default="gpt-3.5-turbo-0125")
    p.add_argument("--keep", default=None, help="write the dataset here and keep it")
    p.add_argument("--only", choices=["baseline", "ftbot"], help="run one side (e.g. ftbot alone on a 1 GB file)")
    p.add_argument("--child", choices=["baseline", "ftbot"], help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child, args.path, args.model)
        return 0

    tmp = None
    if args.keep:
        path = Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="ftbot-bench-")
        path = Path(tmp.name) / "bench.jsonl"
    try:
        t0 = time.perf_counter()
        n = generate(path, int(args.mb * 1024 * 1024))
        size = path.stat().st_size
        print(f"dataset: {size / 1e6:,.1f} MB, {n:,} chat examples, generated in {time.perf_counter() - t0:.1f} s")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start")
        results = {}
        for which in [args.only] if args.only else ["baseline", "ftbot"]:
            results[which] = r = run(which, path, args.model)
            print(f"{which:>8}: {r['seconds']:7.1f} s  {size / 1e6 / r['seconds']:7.1f} MB/s  peak {r['peak_mb']:7.0f} MB")
        if args.only:
            print(json.dumps(results[args.only]["result"]))
            return 0
        b, f = results["baseline"], results["ftbot"]
        print(f"   ratio: ftbot is {b['seconds'] / f['seconds']:.2f}x the baseline's throughput, with {f['peak_mb'] / b['peak_mb']:.2f}x its peak memory")
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        same = {k: (b["result"][k], f["result"][k]) for k in b["result"]}
        for k, (x, y) in same.items():
            print(f"  {k:>15}: baseline {x:,}  ftbot {y:,}  {'same' if x == y else 'DIFFERENT'}")
        return 0 if all(x == y for x, y in same.values()) else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
