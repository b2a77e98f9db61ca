"""Put a checked dataset at the provider (or reuse identical bytes already there) and remember it by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.datasets.validate import Report
from bot.provider.base import ProviderNotFound
from bot.services import Services
from storage.models import Dataset


@dataclass(frozen=True)
class Registered:
    name: str
    provider_file_id: str
    reused: bool


def reusable_file(services: Services, team_id: str, sha256: str, provider: str) -> str | None:
    """An earlier upload of the same bytes by this team that is still at the provider."""
    with services.db.session() as s:
        ids = list(dict.fromkeys(s.scalars(select(Dataset.provider_file_id).where(Dataset.team_id == team_id, Dataset.sha256 == sha256, Dataset.provider == provider).order_by(Dataset.created_at.desc()))))
    for fid in ids:
        try:
            services.provider_for(provider).get_file(fid)
            return fid
        except ProviderNotFound:
            continue  # deleted at the provider since: upload again
    return None


def register(
    services: Services, *, team_id: str, name: str, path: Path, size: int, sha256: str, report: Report, user_id: str | None, provider: str | None = None
) -> Registered:
    provider = provider or services.default_provider
    fid = reusable_file(services, team_id, sha256, provider)
    reused = fid is not None
    if fid is None:
        fid = services.provider_for(provider).upload_file(path, name).id
    remember(services, team_id=team_id, name=name, provider_file_id=fid, size=size, sha256=sha256, report=report, user_id=user_id, provider=provider)
    return Registered(name, fid, reused)


def remember(
    services: Services, *, team_id: str, name: str, provider_file_id: str, size: int, sha256: str, report: Report, user_id: str | None, provider: str
) -> None:
    """The dataset row for a file now at the provider (`/ft files` lists it; its sha256 lets the same
    bytes be reused later)."""
    fid = provider_file_id
    row = Dataset(
        team_id=team_id,
        provider_file_id=fid,
        name=name,
        bytes=size,
        sha256=sha256,
        example_count=report.examples,
        validation=_summary(report),
        uploaded_by=user_id,
        provider=provider,
        verdict=report.verdict,
        format=report.format,
        tokens=report.tokens.total if report.tokens else None,
    )
    try:
        with services.db.session() as s:
            s.add(row)
    except IntegrityError:
        pass  # the same name for the same file is already registered


def _summary(report: Report) -> dict:
    t = report.tokens
    return {
        "verdict": report.verdict,
        "model": report.model,
        "errors": sum(i.count for i in report.errors),
        "warnings": sum(i.count for i in report.warnings),
        "billed_tokens": t.billed_total if t else None,
        "epochs": t.epochs if t else None,
        "estimated_usd": t.estimated_usd if t else None,
        # counted with a tiktoken encoding standing in for the model's own tokenizer (Together, Ray)
        "approximate": bool(t and t.approximate),
    }
