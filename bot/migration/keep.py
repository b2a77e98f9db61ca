"""`/ft keep`: ask a model that still serves N held-out prompts and save its answers, once per prompt,
so its replacement can be compared with it after it stops answering.

Held-out prompts: the source job's validation file, else a fixed sample of its training file (a
reservoir of N, seeded, so a repeat picks the same prompts and only asks what is missing). Each
example's conversation up to its last assistant turn is the prompt, that turn the reference. The
unique (provider, model, prompt sha256) makes a repeat, a redelivery or a second process ask and
save nothing twice; a run cut short resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from bot.datasets.resolve import resolve_file
from bot.errors import UserError
from bot.evals.examples import Malformed, check_messages, clean_message, malformed_note, reference_of
from bot.jobs.model_owner import find_model, one_owner
from bot.migration.copying import download, temp_dir
from bot.migration.flow import Source, find_source
from bot.mrkdwn import code
from bot.provider.base import ProviderError, provider_label
from bot.services import Services
from storage.leases import host_tag, process_alive, worker_id
from storage.models import KeptAnswer
from storage.types import utcnow

log = logging.getLogger(__name__)

SAMPLE_SEED = 16
MAX_KEEP = 1000


@dataclass(frozen=True)
class Prompt:
    line: int
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    reference: dict[str, Any] | None

    @property
    def sha256(self) -> str:
        body = json.dumps({"messages": self.messages, "tools": self.tools}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Kept:
    model: str
    provider: str
    source: str  # "its validation file", "a sample of its training file", "the dataset X"
    asked: int
    saved_before: int
    failed: int
    first_error: str | None
    held: int = 0  # prompts another keep is asking right now: not counted as kept
    malformed: tuple[tuple[int, str], ...] = ()  # (line, why) of examples left out, never asked

    @property
    def total(self) -> int:
        return self.asked + self.saved_before


def prompt_of(obj: Any, line: int) -> Prompt | None:
    """The prompt and reference of one example (chat or preference format); None when it has none.
    Raises Malformed when its shape is one no chat API takes."""
    p = _prompt_of(obj, line)
    if p is not None:
        check_messages(p.messages)
        if p.reference is not None:
            reference_of(p.reference)
    return p


def _prompt_of(obj: Any, line: int) -> Prompt | None:
    if not isinstance(obj, dict):
        return None
    tools = obj.get("tools") if isinstance(obj.get("tools"), list) else None
    if isinstance(obj.get("messages"), list):
        msgs = [m for m in obj["messages"] if isinstance(m, dict)]
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
        if last is None or last == 0:
            return None
        return Prompt(line, [clean_message(m) for m in msgs[:last]], tools, msgs[last])
    inp = obj.get("input")
    if isinstance(inp, dict) and isinstance(inp.get("messages"), list):
        pref = obj.get("preferred_output")
        ref = pref[0] if isinstance(pref, list) and pref and isinstance(pref[0], dict) else None
        return Prompt(line, [clean_message(m) for m in inp["messages"] if isinstance(m, dict)], tools or (inp.get("tools") if isinstance(inp.get("tools"), list) else None), ref)
    return None


def _examples(path: Path, malformed: list[tuple[int, str]]) -> Iterator[Prompt]:
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            try:
                p = prompt_of(obj, n)
            except Malformed as exc:
                malformed.append((n, str(exc)))
                continue
            if p is not None:
                yield p


def pick(path: Path, n: int, *, sample: bool, malformed: list[tuple[int, str]] | None = None) -> list[Prompt]:
    """The first `n` prompts, or a seeded reservoir sample of `n` (constant memory in the file size).
    Malformed examples are left out, their (line, why) added to `malformed`."""
    malformed = [] if malformed is None else malformed
    if not sample:
        out = []
        for p in _examples(path, malformed):
            out.append(p)
            if len(out) >= n:
                break
        return out
    rng = random.Random(SAMPLE_SEED)
    reservoir: list[Prompt] = []
    for i, p in enumerate(_examples(path, malformed)):
        if i < n:
            reservoir.append(p)
        else:
            j = rng.randint(0, i)
            if j < n:
                reservoir[j] = p
    return sorted(reservoir, key=lambda p: p.line)


def saved_count(services: Services, provider: str, model: str) -> int:
    """Answers saved (a prompt still being asked is not one)."""
    with services.db.session() as s:
        return s.scalar(
            select(func.count()).select_from(KeptAnswer).where(KeptAnswer.provider == provider, KeptAnswer.model == model, KeptAnswer.claimed_until.is_(None))
        ) or 0


def keep_answers(services: Services, *, team_id: str, model: str, data: str | None = None, n: int = 100) -> Kept:
    if not 1 <= n <= MAX_KEEP:
        raise UserError(f"`n` must be from 1 to {MAX_KEEP}.")
    try:
        src = find_source(services, team_id, model, target="")
    except UserError:
        if not data:
            raise
        # No job to read: the model is asked where it lives, the prompts come from the data named.
        owner = one_owner(find_model(services, team_id, model), model, prefer=services.default_provider)
        if owner is None:
            raise UserError(f"No enabled provider has {code(model)}: check the name with `/ft models`.") from None
        src = Source(owner.provider, None, model, "supervised", {}, None, None)
    at = services.provider_for(src.provider)
    if data:
        fid, sample, source = resolve_file(services, team_id, data, what="dataset", provider=src.provider), False, f"the dataset {code(data[:60])}"
    elif src.validation_file:
        fid, sample, source = src.validation_file, False, "its validation file"
    elif src.training_file:
        fid, sample, source = src.training_file, True, "a sample of its training file"
    else:
        raise UserError(f"The job that made {code(model)} names no data: give a dataset with `data=DATASET`.")
    malformed: list[tuple[int, str]] = []
    with temp_dir() as tmp:
        got = download(services, src.provider, fid, Path(tmp), "prompts")
        prompts = pick(got.path, n, sample=sample, malformed=malformed)
    if not prompts:
        bad = f" ({malformed_note(malformed)})" if malformed else ""
        raise UserError(f"{source} has no example with an assistant answer to ask again{bad}.")
    with services.db.session() as s:
        # Saved answers only: a row still claimed is a prompt another keep asks, or one a keep that
        # died left unanswered (asked again below).
        have = set(s.scalars(select(KeptAnswer.prompt_sha256).where(KeptAnswer.provider == src.provider, KeptAnswer.model == model, KeptAnswer.claimed_until.is_(None))))
    before = sum(1 for p in prompts if p.sha256 in have)
    asked = failed = held = 0
    first_error = None
    owner = worker_id()
    for p in prompts:
        if p.sha256 in have:
            continue
        # The row first, then the question: uq_kept_answers_prompt is the claim, so of two keeps
        # running at once only the one whose row went in asks (and pays for) this prompt.
        claim = _claim(services, team_id=team_id, provider=src.provider, model=model, p=p, source_file=fid, owner=owner)
        have.add(p.sha256)
        if claim == SAVED:
            before += 1  # saved by another keep a moment ago
            continue
        if claim == HELD:
            held += 1
            continue
        try:
            reply = at.chat(model, p.messages, tools=p.tools, max_tokens=512, temperature=0.0)
        except ProviderError as exc:
            _unclaim(services, claim, owner)  # not answered: a later keep asks it
            failed += 1
            first_error = first_error or exc.reason
            if not exc.retryable:
                break  # the model does not answer (gone, or not servable here): asking more will not help
            continue
        with services.db.session() as s:
            s.execute(
                update(KeptAnswer)
                .where(KeptAnswer.id == claim, KeptAnswer.claimed_by == owner)
                .values(
                    prompt={"messages": p.messages, "tools": p.tools}, answer=reply.content, tool_calls=[{"name": c.name, "arguments": c.arguments} for c in reply.tool_calls] or None,
                    claimed_by=None, claimed_until=None,
                )
            )
        asked += 1
    log.info("kept %d answers of %s at %s (%d before, %d failed, %d held elsewhere)", asked, model, provider_label(src.provider), before, failed, held)
    return Kept(model, src.provider, source, asked, before, failed, first_error, held, tuple(malformed))


STALE_CLAIM = timedelta(minutes=10)  # a claim this old was left by a keep that died: asked again
SAVED, HELD = -1, -2  # _claim: the prompt's answer is saved already; another live keep is asking it


def _dead(row: KeptAnswer) -> bool:
    """A claim nobody will answer: it ran out, or its process (on this host) is gone."""
    if row.claimed_until is None:
        return False
    if row.claimed_until < utcnow():
        return True
    owner = (row.claimed_by or "").split(":")
    return len(owner) >= 2 and owner[0] == host_tag() and owner[1].isdigit() and not process_alive(int(owner[1]))


def _claim(services: Services, *, team_id: str, provider: str, model: str, p: Prompt, source_file: str, owner: str) -> int:
    """The id of the row inserted as this keep's claim on one prompt; SAVED when its answer is
    stored, HELD when another keep that is alive asks it. A dead keep's claim is taken over."""
    for _ in range(3):
        try:
            with services.db.session() as s:
                row = KeptAnswer(
                    team_id=team_id, provider=provider, model=model, prompt_sha256=p.sha256, prompt={"messages": p.messages, "tools": p.tools},
                    reference=p.reference, answer=None, tool_calls=None, source_file=source_file, line=p.line,
                    claimed_by=owner, claimed_until=utcnow() + STALE_CLAIM,
                )
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:
            pass  # uq_kept_answers_prompt: the prompt is claimed or saved already
        with services.db.session() as s:
            old = s.scalar(select(KeptAnswer).where(KeptAnswer.provider == provider, KeptAnswer.model == model, KeptAnswer.prompt_sha256 == p.sha256))
            if old is None:
                continue  # given up a moment ago: claim it
            if old.claimed_until is None:
                return SAVED
            if not _dead(old):
                return HELD
            # Conditional on the claim as read: of two keeps taking it over, one deletes it.
            s.execute(delete(KeptAnswer).where(KeptAnswer.id == old.id, KeptAnswer.claimed_by == old.claimed_by, KeptAnswer.claimed_until == old.claimed_until))
    return HELD


def _unclaim(services: Services, claim: int, owner: str) -> None:
    with services.db.session() as s:
        s.execute(delete(KeptAnswer).where(KeptAnswer.id == claim, KeptAnswer.claimed_by == owner))
