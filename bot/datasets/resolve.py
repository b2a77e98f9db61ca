"""FILE in a command: a provider file id, or the name of a dataset uploaded through the bot."""

from __future__ import annotations

from sqlalchemy import select

from bot.errors import UserError
from bot.mrkdwn import code
from bot.provider.base import ProviderNotFound
from bot.services import Services
from storage.models import Dataset


def resolve_file(services: Services, team_id: str, ref: str, *, what: str, provider: str | None = None) -> str:
    """The provider file id; `provider` (default: the default one) is where the job will run."""
    ref = ref.strip()
    provider = provider or services.default_provider
    # `train` and `train.jsonl` name the same dataset; a name used twice means the newest upload.
    names = [ref] if ref.lower().endswith(".jsonl") else [ref, ref + ".jsonl"]
    with services.db.session() as s:
        named = s.scalars(
            select(Dataset)
            .where(Dataset.team_id == team_id, Dataset.name.in_(names))
            .order_by(Dataset.created_at.desc(), Dataset.id.desc())
        ).all()
        here = [d for d in named if d.provider == provider]
        if here:
            return here[0].provider_file_id
        if named:
            # A file lives at one provider: a job elsewhere needs the dataset uploaded there too.
            elsewhere = ", ".join(sorted({d.provider for d in named}))
            raise UserError(f"The dataset {code(ref[:60])} was uploaded to {elsewhere}, not to {provider}: `/ft upload` it to {provider} first.")
    # A file id: OpenAI's and Together's `file-…`, Vertex AI's object in ftbot's bucket `gs://…`.
    if ref.startswith(("file-", "gs://")):
        try:
            f = services.provider_for(provider).get_file(ref)
        except ProviderNotFound:
            raise UserError(f"Unknown {what} {code(ref[:60])}: no such file at the provider. `/ft files` lists yours.") from None
        if f.purpose != "fine-tune":
            raise UserError(f"{code(ref[:60])} is a {f.purpose} file, not a fine-tuning dataset.")
        return f.id
    raise UserError(f"Unknown {what} {code(ref[:60])}: give a file id (file-…) or a dataset name from `/ft files`.")
