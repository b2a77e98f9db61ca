"""The retirement table: the shipped dates, with an operator's file (FTBOT_RETIREMENTS) merged over them.

Fine-tuned models stop serving when their base model retires, so a date is looked up by base model:
the snapshot itself (`gpt-4o-mini-2024-07-18`), else the alias a snapshot belongs to (`gpt-4o-mini`
means whichever snapshot the table lists under that family).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

_SNAPSHOT = re.compile(r"^(?P<family>.+?)-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


class RetirementTableError(ValueError):
    """The operator's file is unreadable or malformed; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class Retirement:
    base_model: str
    training_ends: date | None
    serving_ends: date | None


def base_model_of(model: str, *, known_base: str | None = None) -> str:
    """`ft:<base>:<org>:<suffix>:<id>[:ckpt-step-N]` → `<base>`; other providers: the job's base model."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return known_base or model


def _day(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RetirementTableError(f"{where} must be a date YYYY-MM-DD or null")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RetirementTableError(f"{where} must be a date YYYY-MM-DD, got {value!r}") from None


def _entries(raw: Any, where: str) -> dict[str, Retirement]:
    if not isinstance(raw, dict):
        raise RetirementTableError(f"{where} must be a JSON object of model -> dates")
    out = {}
    for model, dates in raw.items():
        if model.startswith("_"):
            continue  # _about, _source
        if not isinstance(dates, dict) or not set(dates) <= {"training_ends", "serving_ends"}:
            raise RetirementTableError(f"{where}: {model!r} must be {{\"training_ends\": …, \"serving_ends\": …}}")
        out[model] = Retirement(model, _day(dates.get("training_ends"), f"{where}: {model}.training_ends"), _day(dates.get("serving_ends"), f"{where}: {model}.serving_ends"))
    return out


class RetirementTable:
    def __init__(self, by_provider: dict[str, dict[str, Retirement]], overrides: dict[str, Retirement]) -> None:
        self.by_provider = by_provider
        self.overrides = overrides

    @classmethod
    def load(cls, override_file: str | Path | None = None) -> RetirementTable:
        shipped = json.loads(resources.files("bot.retirements").joinpath("retirements.json").read_text())
        by_provider = {p: _entries(v, f"shipped table {p}") for p, v in shipped.items() if not p.startswith("_")}
        overrides: dict[str, Retirement] = {}
        if override_file:
            try:
                raw = json.loads(Path(override_file).read_text(encoding="utf-8"))
            except OSError as exc:
                raise RetirementTableError(f"cannot read {override_file}: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise RetirementTableError(f"{override_file} is not valid JSON ({exc})") from None
            overrides = _entries(raw, str(override_file))
        return cls(by_provider, overrides)

    def lookup(self, provider: str, base_model: str) -> Retirement | None:
        # The operator's file wins whatever the provider: it is how a team records what it was told.
        return _find((self.overrides, self.by_provider.get(provider, {})), base_model)

    def overrides_lookup(self, base_model: str) -> Retirement | None:
        return _find((self.overrides,), base_model)

    def shipped_lookup(self, provider: str, base_model: str) -> Retirement | None:
        return _find((self.by_provider.get(provider, {}),), base_model)


def _find(tables: tuple[dict[str, Retirement], ...], base_model: str) -> Retirement | None:
    for table in tables:
        if base_model in table:
            return table[base_model]
    family = _family(base_model)
    for table in tables:
        if family in table:
            return table[family]
        # An alias (`gpt-4o-mini`) stands for the snapshots the table lists under it, when they agree.
        hits = {(r.training_ends, r.serving_ends): r for name, r in table.items() if _family(name) == family}
        if len(hits) == 1:
            return next(iter(hits.values()))
    return None


def _family(model: str) -> str:
    m = _SNAPSHOT.match(model)
    return m.group("family") if m else model


@functools.lru_cache(maxsize=8)
def table_for(override_file: str | None) -> RetirementTable:
    """The table for a setting, read once per process (settings validated the file at start-up)."""
    return RetirementTable.load(override_file)
