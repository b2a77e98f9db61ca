"""Parsing `/ft` text. Pure functions: text in, a Command or a UserError out."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from bot.errors import UserError
from bot.mrkdwn import escape, unescape
from bot.provider.base import provider_label

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"

# Placeholders are capitals, not `<file>`: Slack reads `<…>` in mrkdwn as a link or mention.
USAGE: dict[str, str] = {
    "help": "/ft help",
    "upload": "/ft upload [provider=P]",
    "files": "/ft files",
    "start": "/ft start FILE [model=MODEL] [validation=FILE] [epochs=N] [batch=N] [lr=X] [suffix=S] [seed=N] [method=supervised|dpo] [beta=X] [training=lora|full] [lora_r=N] [adapter=N] [provider=P]",
    "list": "/ft list [N]",
    "status": "/ft status JOB_ID",
    "events": "/ft events JOB_ID [N]",
    "checkpoints": "/ft checkpoints JOB_ID",
    "metrics": "/ft metrics JOB_ID",
    "cancel": "/ft cancel JOB_ID",
    "pause": "/ft pause JOB_ID",
    "resume": "/ft resume JOB_ID",
    "watch": "/ft watch JOB_ID [#channel]",
    "unwatch": "/ft unwatch JOB_ID",
    "models": "/ft models",
    "delete-model": "/ft delete-model MODEL [REASON]",
    "try": "/ft try MODEL [endpoint=NAME] PROMPT",
    "audit": "/ft audit [N]",
    "migrate": "/ft migrate MODEL [to=PROVIDER] [base=MODEL] [keep=N] [data=DATASET] · /ft migrate cancel MODEL",
    "migrations": "/ft migrations",
    "keep": "/ft keep MODEL [data=DATASET] [n=N]",
    "eval": "/ft eval MODEL [vs=MODEL] [data=FILE] [n=N] [score=exact,similarity,json,tools,judge] [judge=MODEL]",
}
VERBS = tuple(USAGE)
# Verbs that change something at the provider (or spend at it): only operators may use them.
# `watch`/`unwatch` too: pointing a job's card and alerts at a channel, or silencing one, is steering.
OPERATOR_VERBS = frozenset({"upload", "start", "cancel", "pause", "resume", "watch", "unwatch", "migrate", "keep", "eval"})

START_KEYS = ("model", "validation", "epochs", "batch", "lr", "suffix", "seed", "method", "beta", "training", "lora_r", "adapter", "provider")
# Options only Together AI takes (JobSpec hyperparameter names).
TOGETHER_ONLY = {"training_type": "training", "lora_r": "lora_r"}
# Options only Vertex AI takes (Gemini's adapter size).
VERTEX_ONLY = {"adapter_size": "adapter"}
VERTEX_ADAPTER_SIZES = (1, 2, 4, 8, 16)
PROVIDERS = ("openai", "azure", "together", "ray", "vertex")
_CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Command:
    verb: str
    args: tuple[str, ...] = ()
    rest: str = ""  # raw text after the verb (for `try`, whose prompt is free text)


@dataclass(frozen=True)
class StartRequest:
    file: str
    model: str = DEFAULT_MODEL
    validation: str | None = None
    method: str = "supervised"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    provider: str | None = None  # None: FTBOT_DEFAULT_PROVIDER
    model_given: bool = False  # False: `model` is OpenAI's default, to be replaced by the provider's


def verb_of(text: str) -> str:
    """The verb a command text asks for ('help' when empty); unknown verbs come back as typed."""
    words = (text or "").strip().split(None, 1)
    return words[0].lower() if words else "help"


def parse(text: str) -> Command:
    """`text` as Slack sends it (&, < and > escaped); the Command holds what the person typed."""
    text = unescape(text or "").strip()
    if not text:
        return Command("help")
    head, _, rest = text.partition(" ")
    verb = head.lower()
    if verb not in USAGE:
        raise UserError(f"I don't know `{_clip(head)}`. Try `/ft help` for what I can do.")
    rest = rest.strip()
    if verb in {"try", "delete-model"}:
        # Free text after the first word (a prompt, a reason): quotes and apostrophes are not syntax.
        return Command(verb, tuple(rest.split(None, 1)[:1]), rest)
    try:
        args = tuple(shlex.split(rest))
    except ValueError:
        raise UserError("Unbalanced quotes in the command.", USAGE[verb]) from None
    return Command(verb, args, rest)


def _clip(s: str, n: int = 40) -> str:
    """User text quoted back in an answer: shortened, and escaped so it cannot ping or link."""
    s = s.replace("`", "'")
    return escape(s if len(s) <= n else s[: n - 1] + "…")


def one_arg(cmd: Command, what: str) -> str:
    if len(cmd.args) != 1:
        raise UserError(f"`{cmd.verb}` needs exactly one {what}.", USAGE[cmd.verb])
    return cmd.args[0]


def optional_count(cmd: Command, index: int, default: int, maximum: int) -> int:
    if len(cmd.args) <= index:
        return default
    if len(cmd.args) > index + 1:
        raise UserError("Too many arguments.", USAGE[cmd.verb])
    raw = cmd.args[index]
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise UserError(f"`{_clip(raw)}` is not a number from 1 to {maximum}.", USAGE[cmd.verb])
    return int(raw)


def parse_channel(raw: str) -> str:
    m = _CHANNEL_REF.match(raw)
    if m:
        return m.group(1)
    if _CHANNEL_ID.match(raw):
        return raw
    raise UserError(
        f"`{_clip(raw)}` is not a channel I can use: pick it with #-autocomplete, or give its ID (C…).",
        USAGE["watch"],
    )


def parse_provider(raw: str, verb: str) -> str:
    name = raw.strip().lower()
    if name not in PROVIDERS:
        raise UserError(f"`provider` must be one of {', '.join(PROVIDERS)}, got `{_clip(raw)}`.", USAGE[verb])
    return name


def parse_upload(args: tuple[str, ...]) -> str | None:
    """`/ft upload [provider=P]`: the provider to upload to (None: the default)."""
    provider: str | None = None
    for a in args:
        key, sep, value = a.partition("=")
        if not sep or key.lower() != "provider" or provider is not None:
            raise UserError("`upload` takes only `provider=P`: choose the file in the form, or share a .jsonl file with the bot.", USAGE["upload"])
        provider = parse_provider(value, "upload")
    return provider


def _int(key: str, raw: str, lo: int, hi: int | None) -> int:
    if not re.fullmatch(r"[0-9]+", raw):
        raise UserError(f"`{key}` must be a whole number, got `{_clip(raw)}`.", USAGE["start"])
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
        raise UserError(f"`{key}` must be {bound}, got {value}.", USAGE["start"])
    return value


def _float(key: str, raw: str, lo_exclusive: float, hi: float | None) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"`{key}` must be a number, got `{_clip(raw)}`.", USAGE["start"]) from None
    if value != value or value <= lo_exclusive or (hi is not None and value > hi):
        bound = f"above {lo_exclusive:g}" + (f" and at most {hi:g}" if hi is not None else "")
        raise UserError(f"`{key}` must be {bound}, got `{_clip(raw)}`.", USAGE["start"])
    return value


def parse_start(args: tuple[str, ...]) -> StartRequest:
    """Strict: any unknown key, bad number or stray word is an error, and nothing is started."""
    positional = [a for a in args if "=" not in a]
    pairs = [a for a in args if "=" in a]
    if len(positional) != 1:
        what = "no training file" if not positional else f"{len(positional)} files ({', '.join(_clip(p, 20) for p in positional)})"
        raise UserError(f"`start` needs one training file, got {what}.", USAGE["start"])
    opts: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        key = key.lower()
        if key not in START_KEYS:
            raise UserError(f"Unknown option `{_clip(key)}`. Known: {', '.join(START_KEYS)}.", USAGE["start"])
        if key in opts:
            raise UserError(f"`{key}` is given twice.", USAGE["start"])
        if not value:
            raise UserError(f"`{key}` has no value.", USAGE["start"])
        opts[key] = value

    method = opts.get("method", "supervised").lower()
    if method not in {"supervised", "dpo"}:
        raise UserError(f"`method` must be supervised or dpo, got `{_clip(method)}`.", USAGE["start"])
    hyper: dict[str, Any] = {}
    if "epochs" in opts:
        hyper["n_epochs"] = _int("epochs", opts["epochs"], 1, 50)
    if "batch" in opts:
        hyper["batch_size"] = _int("batch", opts["batch"], 1, 256)
    if "lr" in opts:
        hyper["learning_rate_multiplier"] = _float("lr", opts["lr"], 0.0, 100.0)
    if "beta" in opts:
        if method != "dpo":
            raise UserError("`beta` only applies to `method=dpo`.", USAGE["start"])
        hyper["beta"] = _float("beta", opts["beta"], 0.0, 2.0)
    if "training" in opts:
        training = opts["training"].lower()
        if training not in {"lora", "full"}:
            raise UserError(f"`training` must be lora or full, got `{_clip(opts['training'])}`.", USAGE["start"])
        hyper["training_type"] = training
    if "lora_r" in opts:
        if hyper.get("training_type") == "full":
            raise UserError("`lora_r` applies to `training=lora` only.", USAGE["start"])
        hyper["lora_r"] = _int("lora_r", opts["lora_r"], 1, 1024)
    if "adapter" in opts:
        size = _int("adapter", opts["adapter"], 1, 16)
        if size not in VERTEX_ADAPTER_SIZES:
            raise UserError(f"`adapter` must be 1, 2, 4, 8 or 16, got `{size}`.", USAGE["start"])
        hyper["adapter_size"] = size
    suffix = opts.get("suffix")
    if suffix is not None:
        if len(suffix) > 64:
            raise UserError(f"`suffix` may be at most 64 characters, got {len(suffix)}.", USAGE["start"])
        if not re.fullmatch(r"[A-Za-z0-9._-]+", suffix):
            raise UserError("`suffix` may use letters, digits, `.`, `_` and `-` only.", USAGE["start"])
    seed = _int("seed", opts["seed"], 0, 2**31 - 1) if "seed" in opts else None
    provider = parse_provider(opts["provider"], "start") if "provider" in opts else None
    return StartRequest(
        file=positional[0],
        model=opts.get("model", DEFAULT_MODEL),
        validation=opts.get("validation"),
        method=method,
        hyperparameters=hyper,
        suffix=suffix,
        seed=seed,
        provider=provider,
        model_given="model" in opts,
    )


def for_provider(req: StartRequest, provider: str, *, default_model: str = DEFAULT_MODEL) -> StartRequest:
    """The request as `provider` takes it, or a UserError saying which option does not fit there.

    `lr` is OpenAI's learning-rate multiplier everywhere but at Together AI and on Ray (the team's
    own trainer), which take the rate itself (such as 1e-5); `training` and `lora_r` exist only at
    Together AI.
    """
    hyper = dict(req.hyperparameters)
    if provider == "ray" and "learning_rate_multiplier" in hyper:
        lr = hyper.pop("learning_rate_multiplier")
        if not 0 < lr <= 1:
            raise UserError(f"On Ray `lr` is the learning rate your trainer gets (such as 2e-4), above 0 and at most 1, got `{lr:g}`.", USAGE["start"])
        hyper["learning_rate"] = lr
    if provider == "together":
        if "learning_rate_multiplier" in hyper:
            lr = hyper.pop("learning_rate_multiplier")
            if not 0 < lr <= 1:
                raise UserError(
                    f"At Together AI `lr` is the learning rate itself (such as 1e-5, its default; LoRA often takes 1e-4), above 0 and at most 1, got `{lr:g}`.",
                    USAGE["start"],
                )
            hyper["learning_rate"] = lr
    else:
        given = [opt for key, opt in TOGETHER_ONLY.items() if key in hyper]
        if given:
            raise UserError(
                f"{' and '.join(f'`{g}`' for g in given)} {'is a Together AI option' if len(given) == 1 else 'are Together AI options'}: "
                f"{provider_label(provider)} does not take {'it' if len(given) == 1 else 'them'}. Add `provider=together` to train there.",
                USAGE["start"],
            )
    if provider == "vertex":
        if "batch_size" in hyper:
            raise UserError("Vertex AI picks the batch size itself: start without `batch=`.", USAGE["start"])
    else:
        given = [opt for key, opt in VERTEX_ONLY.items() if key in hyper]
        if given:
            raise UserError(
                f"`{given[0]}` is a Vertex AI option (Gemini's adapter size): {provider_label(provider)} does not take it. Add `provider=vertex` to train there.",
                USAGE["start"],
            )
    model = req.model if req.model_given else default_model
    return replace(req, hyperparameters=hyper, model=model)


@dataclass(frozen=True)
class MigrateRequest:
    model: str
    target: str | None = None  # None: Together AI
    base: str | None = None  # None: the comparable base from ftbot's table
    keep: int = 100
    data: str | None = None  # the training data, for a model whose job cannot be found


def parse_migrate(args: tuple[str, ...]) -> MigrateRequest:
    positional = [a for a in args if "=" not in a]
    if len(positional) != 1:
        raise UserError("`migrate` needs one model name.", USAGE["migrate"])
    opts: dict[str, str] = {}
    for pair in (a for a in args if "=" in a):
        key, _, value = pair.partition("=")
        key = key.lower()
        if key not in ("to", "base", "keep", "data"):
            raise UserError(f"Unknown option `{_clip(key)}`. Known: to, base, keep, data.", USAGE["migrate"])
        if key in opts or not value:
            raise UserError(f"`{key}` is given twice or has no value.", USAGE["migrate"])
        opts[key] = value
    target = parse_provider(opts["to"], "migrate") if "to" in opts else None
    keep = 100
    if "keep" in opts:
        if not re.fullmatch(r"[0-9]+", opts["keep"]) or not 0 <= int(opts["keep"]) <= 1000:
            raise UserError(f"`keep` must be a whole number from 0 to 1000, got `{_clip(opts['keep'])}`.", USAGE["migrate"])
        keep = int(opts["keep"])
    return MigrateRequest(positional[0], target, opts.get("base"), keep, opts.get("data"))


def parse_keep(args: tuple[str, ...]) -> tuple[str, str | None, int]:
    """`/ft keep MODEL [data=DATASET] [n=N]` -> (model, dataset, n)."""
    positional = [a for a in args if "=" not in a]
    if len(positional) != 1:
        raise UserError("`keep` needs one model name.", USAGE["keep"])
    opts: dict[str, str] = {}
    for pair in (a for a in args if "=" in a):
        key, _, value = pair.partition("=")
        key = key.lower()
        if key not in ("data", "n") or key in opts or not value:
            raise UserError(f"`keep` takes `data=DATASET` and `n=N` once each, got `{_clip(pair)}`.", USAGE["keep"])
        opts[key] = value
    n = 100
    if "n" in opts:
        if not re.fullmatch(r"[0-9]+", opts["n"]) or not 1 <= int(opts["n"]) <= 1000:
            raise UserError(f"`n` must be a whole number from 1 to 1000, got `{_clip(opts['n'])}`.", USAGE["keep"])
        n = int(opts["n"])
    return positional[0], opts.get("data"), n
