"""Supervised fine-tuning with TRL on a Ray cluster, as ftbot starts it.

Set, for example:

    FTBOT_RAY_ENTRYPOINT='python train_sft.py --train {train} --validation {validation} --model {model}
        --epochs {epochs} --lr {lr} --batch {batch} --output {output} --seed {seed}'
    FTBOT_RAY_RUNTIME_ENV='{"working_dir": "examples/ray", "pip": {"packages": "requirements.txt"}}'
    FTBOT_RAY_GPUS=1

ftbot fills the placeholders (each shell-quoted; `{validation}` is empty when no validation file was
given) and reads this script's log: Hugging Face `Trainer` prints `{'loss': …, 'learning_rate': …,
'epoch': …}` every `logging_steps` and `{'eval_loss': …}` at each evaluation, which ftbot turns into
the card's loss and the chart; the progress bar gives the step; `Saving model checkpoint to
…/checkpoint-<step>` and the `checkpoint-<step>` folders in the output give `/ft checkpoints`.

The dataset is OpenAI's chat format (one `{"messages": [...]}` per line), which TRL's SFTTrainer takes
as it is. With LoRA (the default here; `--full` trains every weight) the output folder holds the
adapter; serve it with vLLM (`vllm serve <base> --enable-lora --lora-modules <name>=<output>`) or merge
it first. Storage on s3:// or gs://: training writes to a local folder and each checkpoint and the final
model are copied there through fsspec.

Not run on this project's machines (no GPU, no model weights there); the tiny CPU trainer in
bot/sandbox/tiny_trainer.py is what the tests run through a real Ray head.
"""

from __future__ import annotations

import argparse
import os
import tempfile


def copy_up(local: str, remote: str) -> None:
    import fsspec

    fs, root = fsspec.core.url_to_fs(remote)
    fs.put(local.rstrip("/") + "/", root, recursive=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--validation", default="")
    ap.add_argument("--model", required=True)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--full", action="store_true", help="train every weight instead of a LoRA adapter")
    ap.add_argument("--max-length", type=int, default=2048)
    args = ap.parse_args()

    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    remote = "://" in args.output
    out = tempfile.mkdtemp(prefix="sft-") if remote else args.output
    files = {"train": args.train}
    if args.validation:
        files["validation"] = args.validation
    data = load_dataset("json", data_files=files)  # s3:// and gs:// paths go through fsspec

    class CopyCheckpoints(TrainerCallback):
        def on_save(self, targs, state, control, **kw):  # noqa: ANN001, ANN003, ANN201
            if remote and state.is_world_process_zero:
                name = f"checkpoint-{state.global_step}"
                copy_up(os.path.join(out, name), f"{args.output.rstrip('/')}/{name}")

    config = SFTConfig(
        output_dir=out,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch,
        seed=args.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=50,
        eval_strategy="epoch" if args.validation else "no",
        report_to="none",
        bf16=True,
        max_length=args.max_length,
    )
    peft = None if args.full else LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(
        model=args.model,
        args=config,
        train_dataset=data["train"],
        eval_dataset=data.get("validation"),
        peft_config=peft,
        callbacks=[CopyCheckpoints()],
    )
    trainer.train()
    trainer.save_model(out)
    if remote:
        copy_up(out, args.output)
    print(f"Saving model checkpoint to {args.output}", flush=True)


if __name__ == "__main__":
    main()
