"""Each model's end of serving as the provider reports it, merged over the table.

OpenAI's models list carries `shutdown_date` per model (Azure's says `deprecation`); a fine-tune
stops with its base model, so a model the list does not date is looked up by its base. The list is
read at most once per LIVE_TTL per provider and process (dates move by announcement, not by the
minute); a failed read (whatever failed: the provider, or an answer ftbot could not take) leaves the
last good one, or the table, in charge and is tried again after RETRY_AFTER, doubling with each
failure in a row up to MAX_RETRY_AFTER, as a failed poll backs off: never on every command.

Which date wins, per field: the operator's FTBOT_RETIREMENTS file (a team's deliberate record), then
the provider's list, then ftbot's shipped table. Every answer says where its date came from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from bot.provider.base import Model, Provider, ProviderError, provider_label
from bot.retirements.table import RetirementTable, base_model_of, table_for
from bot.services import Services
from storage.types import utcnow

log = logging.getLogger(__name__)

LIVE_TTL = 6 * 3600.0
RETRY_AFTER = 300.0
MAX_RETRY_AFTER = 3600.0
TABLE_SOURCE = "ftbot's table"
OPERATOR_SOURCE = "FTBOT_RETIREMENTS"


@dataclass(frozen=True, slots=True)
class EndOfServing:
    model: str
    base_model: str
    serving_ends: date | None
    training_ends: date | None
    # Where `serving_ends` came from: "OpenAI API, read 2026-12-01", "ftbot's table", FTBOT_RETIREMENTS.
    source: str
    training_source: str = TABLE_SOURCE

    def days_left(self, today: date) -> int | None:
        return None if self.serving_ends is None else (self.serving_ends - today).days

    def training_closed(self, today: date) -> bool:
        """No new training jobs are taken on this base any more (the closing day included)."""
        return self.training_ends is not None and self.training_ends <= today


@dataclass
class _Read:
    at: float  # monotonic time of the read
    on: date  # the day it was read, for the source text
    models: dict[str, Model]


class LiveDates:
    """The providers' models lists, read at most once per `ttl` each; thread-safe."""

    def __init__(self, ttl: float = LIVE_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._reads: dict[str, _Read] = {}
        self._failed_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def remember(self, provider: str, models: Iterable[Model]) -> None:
        """A list read for another reason (`/ft models`) refreshes the cache for free."""
        with self._lock:
            self._reads[provider] = _Read(self.clock(), utcnow().date(), {m.id: m for m in models})
            self._failed_at.pop(provider, None)
            self._failures.pop(provider, None)

    def forget(self) -> None:
        with self._lock:
            self._reads.clear()
            self._failed_at.clear()
            self._failures.clear()

    def retry_after(self, name: str) -> float:
        """Seconds before a failed read of `name` is tried again."""
        return min(MAX_RETRY_AFTER, RETRY_AFTER * 2 ** max(0, self._failures.get(name, 1) - 1))

    def read(self, name: str, provider: Provider) -> _Read | None:
        now = self.clock()
        with self._lock:
            got = self._reads.get(name)
            fresh = got is not None and now - got.at < self.ttl
            failed = self._failed_at.get(name)
            if fresh or (failed is not None and now - failed < self.retry_after(name)):
                return got
        try:
            models = provider.list_models()
        except Exception as exc:  # noqa: BLE001 - the dates are advice: the last read or the table decides meanwhile
            reason = exc.reason if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"[:200]
            with self._lock:
                self._failed_at[name] = now
                self._failures[name] = self._failures.get(name, 0) + 1
                wait = self.retry_after(name)
            log.warning("reading %s's model dates failed (%s); using %s, next try in %.0f s", name, reason, "the last read" if got else "the table", wait)
            return got
        self.remember(name, models)
        with self._lock:
            return self._reads.get(name)


class Retirements:
    """The merged answer: `end_of(provider, model)` for base and fine-tuned models alike."""

    def __init__(self, table: RetirementTable, providers: Mapping[str, Provider], live: LiveDates) -> None:
        self.table = table
        self.providers = providers
        self.live = live

    def end_of(self, provider: str, model: str, *, base: str | None = None) -> EndOfServing:
        base_model = base_model_of(model, known_base=base)
        op = self.table.overrides_lookup(base_model)
        shipped = self.table.shipped_lookup(provider, base_model)
        reported_on, said, said_training = None, None, None
        at = self.providers.get(provider)
        read = self.live.read(provider, at) if at is not None else None
        if read is not None:
            for name in (model, base_model):
                m = read.models.get(name)
                if m is not None and (m.shutdown_date or m.training_ends):
                    said, said_training, reported_on = m.shutdown_date, m.training_ends, read.on
                    break
        api = f"{provider_label(provider)} API, read {reported_on:%Y-%m-%d}" if reported_on else None
        serving, source = _first((op.serving_ends if op else None, OPERATOR_SOURCE), (said, api), (shipped.serving_ends if shipped else None, TABLE_SOURCE))
        training, training_source = _first((op.training_ends if op else None, OPERATOR_SOURCE), (said_training, api), (shipped.training_ends if shipped else None, TABLE_SOURCE))
        return EndOfServing(model, base_model, serving, training, source, training_source)


def _first(*candidates: tuple[date | None, str | None]) -> tuple[date | None, str]:
    for value, source in candidates:
        if value is not None and source:
            return value, source
    return None, TABLE_SOURCE


_LIVE_KEY = "live_retirement_dates"
_lock = threading.Lock()


def retirements_for(services: Services) -> Retirements:
    """The process's merged view for these services (their settings' table, their providers, one cache)."""
    with _lock:
        live = services.extras.get(_LIVE_KEY)
        if live is None:
            live = services.extras[_LIVE_KEY] = LiveDates()
    return Retirements(table_for(services.settings.retirements_file), services.providers, live)
