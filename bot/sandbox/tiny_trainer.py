"""A tiny trainer that really trains, on CPU, in a second: the Ray demo's and the tests' entrypoint.

It reads a chat fine-tuning `.jsonl` (the assistant replies), trains a character bigram model (a
softmax over the next character, numpy, plain SGD on mini-batches) and talks like Hugging Face's
`Trainer`: the "Total optimization steps" line, a progress bar, `{'loss': …, 'learning_rate': …,
'epoch': …}` dicts, `{'eval_loss': …}` dicts per epoch with a validation set, "Saving model
checkpoint to …/checkpoint-<step>" with the folder written, the final summary dict and the model
saved in the output folder.

Knobs for tests (beyond the placeholders ftbot fills): `--step-seconds` to slow it down (a job one
can cancel), `--fail-at-step` to crash like a trainer running out of memory, `--chatter` lines of
noise per step (a chatty trainer), `--save-steps`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np


def texts(path: str) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            ex = json.loads(line)
            out += [m["content"] for m in ex.get("messages", []) if m.get("role") == "assistant" and isinstance(m.get("content"), str)]
    return out


def pairs(corpus: list[str], vocab: dict[str, int]) -> np.ndarray:
    rows = []
    for t in corpus:
        ids = [vocab.get(c, 0) for c in "\x02" + t + "\x03"]
        rows += list(zip(ids[:-1], ids[1:], strict=False))
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def loss_and_grad(w: np.ndarray, batch: np.ndarray) -> tuple[float, np.ndarray]:
    logits = w[batch[:, 0]]
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(batch)), batch[:, 1]] + 1e-12).mean())
    p[np.arange(len(batch)), batch[:, 1]] -= 1
    grad = np.zeros_like(w)
    np.add.at(grad, batch[:, 0], p / len(batch))
    return loss, grad


def save(w: np.ndarray, vocab: dict[str, int], folder: Path, state: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "weights.npy", w)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "trainer_state.json").write_text(json.dumps(state))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--validation", default="")
    ap.add_argument("--model", default="bigram")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--suffix", default="")
    ap.add_argument("--save-steps", type=int, default=5)
    ap.add_argument("--step-seconds", type=float, default=0.0)
    ap.add_argument("--fail-at-step", type=int, default=0)
    ap.add_argument("--chatter", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    train_texts = texts(args.train)
    valid_texts = texts(args.validation) if args.validation else []
    chars = sorted({c for t in train_texts + valid_texts for c in t})
    vocab = {c: i for i, c in enumerate(["\x00", "\x02", "\x03", *chars])}
    data = pairs(train_texts, vocab)
    valid = pairs(valid_texts, vocab) if valid_texts else None
    # A bigram model learns nothing useful at LLM learning rates: scale them to this model's size.
    lr = args.lr * 5000
    w = np.zeros((len(vocab), len(vocab)))
    per_epoch = max(1, math.ceil(len(data) / args.batch))
    total = per_epoch * args.epochs
    out = Path(args.output)
    print(f"Training {args.model} (bigram stand-in, {len(vocab)} symbols) on {len(train_texts)} replies", flush=True)
    print("***** Running training *****", flush=True)
    print(f"  Num examples = {len(train_texts):,}", flush=True)
    print(f"  Num Epochs = {args.epochs:,}", flush=True)
    print(f"  Total optimization steps = {total:,}", flush=True)
    started = time.time()
    step = 0
    history = []
    losses = []
    for epoch in range(args.epochs):
        order = rng.permutation(len(data))
        for b in range(per_epoch):
            step += 1
            batch = data[order[b * args.batch : (b + 1) * args.batch]]
            loss, grad = loss_and_grad(w, batch)
            w -= lr * grad
            losses.append(loss)
            if args.fail_at_step and step == args.fail_at_step:
                print("Traceback (most recent call last):", file=sys.stderr, flush=True)
                print('  File "train.py", line 88, in training_step', file=sys.stderr, flush=True)
                print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (stand-in crash)", file=sys.stderr, flush=True)
                return 1
            elapsed = time.time() - started
            print(f"{step * 100 // total:3d}%|{'#' * (step * 10 // total):<10}| {step}/{total} [{elapsed:05.2f}<00:00, {step / max(elapsed, 1e-6):.2f}it/s]", file=sys.stderr, flush=True)
            for i in range(args.chatter):
                print(f"[rank0] step {step} micro-batch {i}: tokens/s=1234", flush=True)
            logged = {"loss": round(loss, 4), "grad_norm": round(float(np.linalg.norm(grad)), 4), "learning_rate": args.lr * (1 - step / total), "epoch": round(step / per_epoch, 2)}
            print(logged, flush=True)
            history.append({**logged, "step": step})
            if step % args.save_steps == 0 and step < total:
                print(f"Saving model checkpoint to {out / f'checkpoint-{step}'}", flush=True)
                save(w, vocab, out / f"checkpoint-{step}", {"global_step": step, "log_history": history})
            if args.step_seconds:
                time.sleep(args.step_seconds)
        if valid is not None and len(valid):
            eval_loss, _ = loss_and_grad(w, valid)
            print({"eval_loss": round(eval_loss, 4), "eval_runtime": 0.01, "eval_samples_per_second": 100.0, "epoch": float(epoch + 1)}, flush=True)
    runtime = time.time() - started
    print({"train_runtime": round(runtime, 3), "train_samples_per_second": round(len(data) * args.epochs / max(runtime, 1e-6), 1), "train_loss": round(float(np.mean(losses)), 4), "epoch": float(args.epochs)}, flush=True)
    print(f"Saving model checkpoint to {out}", flush=True)
    save(w, vocab, out, {"global_step": step, "log_history": history, "suffix": args.suffix, "pid": os.getpid()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
