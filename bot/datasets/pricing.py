"""Training price per model: a table shipped with the package, optionally overridden by an operator."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

OVERRIDE_SOURCE = "FTBOT_PRICE_TABLE"


class PriceTableError(Exception):
    pass


@dataclass(frozen=True)
class Price:
    usd_per_million: float
    source: str  # where the figure comes from, for the report


@cache
def shipped() -> tuple[dict[str, float], str, str]:
    raw = json.loads(files("bot.datasets").joinpath("data", "prices.json").read_text())
    return dict(raw["prices"]), raw["_date"], raw["_source"]


def load_overrides(path: str | Path) -> dict[str, float]:
    """`{"<model>": <USD per 1M training tokens>, ...}`; raises PriceTableError with a one-line reason."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PriceTableError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PriceTableError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise PriceTableError(f"{path} must hold a JSON object of model -> USD per 1M training tokens")
    out: dict[str, float] = {}
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise PriceTableError(f"{path}: the price of {str(k)[:60]!r} must be a number >= 0")
        out[str(k)] = float(v)
    return out


def price_for(model: str, overrides: Mapping[str, float] | None = None, *, published: bool = True) -> Price | None:
    """`published=False`: the operator's overrides only (a team's own cluster has no price list)."""
    base = model.split(":")[1] if model.startswith("ft:") and model.count(":") >= 2 else model
    table, date, source = shipped()
    sources = [(OVERRIDE_SOURCE, overrides or {})] + ([(f"{source}, {date}", table)] if published else [])
    for where, prices in sources:
        if base in prices:
            return Price(prices[base], where)
        match = max((k for k in prices if base.startswith(k)), key=len, default=None)
        if match is not None:
            return Price(prices[match], where)
    return None
