"""A dataset checked for Gemini tuning on Vertex AI (bot.datasets.gemini_format.check) as the same
Report the dataset report shows for every provider: problems by line, approximate token counts,
Gemini's limits, and why there is no cost estimate unless FTBOT_VERTEX_PRICE_PER_MTOK is set."""

from __future__ import annotations

from pathlib import Path

from bot.datasets import gemini_format
from bot.datasets.validate import Issue, Report, TokenStats
from bot.provider.vertex_models import MAX_EXAMPLE_TOKENS

ENCODING = "o200k_base, not Gemini's tokenizer"
NO_PRICE = "unknown: Google publishes no per-token Gemini tuning price ftbot can read (FTBOT_VERTEX_PRICE_PER_MTOK sets one)"


def _issues(problems: list[gemini_format.Problem], total: int, kind: str) -> list[Issue]:
    """One issue per reason, its lines listed (the check names at most the first MAX_NAMED)."""
    by_reason: dict[str, Issue] = {}
    for p in problems:
        issue = by_reason.setdefault(p.reason, Issue(kind=kind, message=p.reason))
        if p.line:
            issue.lines.append(p.line)
            issue.details.append(None)
        issue.count += 1
    out = list(by_reason.values())
    named = sum(i.count for i in out)
    if total > named:
        out.append(Issue(kind=kind, message=f"and {total - named:,} more not named here", count=total - named))
    return out


def gemini_report(path: str | Path, *, model: str, epochs: int | None = None, price_per_mtok: float | None = None, validation: bool = False) -> Report:
    checked = gemini_format.check(path, validation=validation)
    size = Path(path).stat().st_size
    tokens = None
    if checked.examples:
        n_epochs = epochs or 1
        mean = checked.total_tokens / checked.examples
        sample = sorted(checked.token_sample)
        usd = round(checked.total_tokens * n_epochs * price_per_mtok / 1e6, 4) if price_per_mtok is not None and epochs else None
        tokens = TokenStats(
            encoding=ENCODING,
            limit=MAX_EXAMPLE_TOKENS,
            min=checked.min_example_tokens,
            max=checked.max_example_tokens,
            mean=round(mean, 1),
            median=float(sample[len(sample) // 2]),
            p90=float(sample[min(len(sample) - 1, int(len(sample) * 0.9))]),
            total=checked.total_tokens,
            over_limit=checked.warning_count,  # the check's only warning: an example over Gemini's limit
            billed_per_epoch=checked.total_tokens,
            epochs=n_epochs,
            billed_total=checked.total_tokens * n_epochs,
            exact_percentiles=len(sample) == checked.examples,
            usd_per_million=price_per_mtok if usd is not None else None,
            price_source="FTBOT_VERTEX_PRICE_PER_MTOK" if usd is not None else None,
            estimated_usd=usd,
            approximate=True,
            price_note=None if usd is not None else NO_PRICE,
        )
    # Short names (the stored dataset's format column holds 32 characters).
    fmt = {gemini_format.GEMINI: "Gemini", gemini_format.OPENAI_CHAT: "OpenAI chat → Gemini", gemini_format.PROMPT_COMPLETION: "prompt-completion → Gemini"}.get(
        checked.format or "", checked.format
    )
    return Report(
        path=str(path),
        model=model,
        format=fmt,
        examples=checked.examples,
        lines=checked.examples + checked.blank_lines + checked.problem_count,
        bytes=size,
        errors=_issues(checked.problems, checked.problem_count, "gemini"),
        warnings=_issues(checked.warnings, checked.warning_count, "gemini_warning"),
        tokens=tokens,
    )
