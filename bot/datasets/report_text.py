"""The readable report of `ftbot validate` (plain text for a terminal)."""

from __future__ import annotations

from bot.datasets.validate import Issue, Report


def _issue(i: Issue) -> str:
    where = f" — {i.where()}" if i.where() else ""
    detail = f": {i.file_detail()}" if i.file_detail() else ""
    return f"  - {i.message}{where}{detail}"


def render(report: Report, *, title: str = "training file") -> str:
    own = "errors" if report.errors else ("warnings" if report.warnings else "clean")
    out = [f"{title}: {report.path}", f"  verdict: {own}"]
    out.append(f"  format: {report.format or 'unknown'}; {report.examples:,} examples in {report.lines:,} lines, {report.bytes:,} bytes")
    if report.stopped_early:
        out.append(f"  {report.stopped_early}")
    if report.model_notice:
        out.append(f"  model: {report.model_notice}")
    if report.errors:
        out.append(f"errors ({sum(i.count for i in report.errors):,}):")
        out += [_issue(i) for i in report.errors]
    if report.warnings:
        out.append(f"warnings ({sum(i.count for i in report.warnings):,}):")
        out += [_issue(i) for i in report.warnings]
    t = report.tokens
    if t is not None:
        pct = "" if t.exact_percentiles else " (median and p90 from a sample)"
        approx = ", an approximation of the model's own tokenizer" if t.approximate else ""
        out.append(f"tokens ({t.encoding}{approx}, limit {t.limit:,} per example){pct}:")
        out.append(f"  per example: min {t.min:,}, mean {t.mean:,}, median {t.median:,}, p90 {t.p90:,}, max {t.max:,}")
        out.append(f"  total {t.total:,}; over the limit: {t.over_limit:,}")
        if title != "training file":
            out.append("  billed: none (a validation file is not trained on)")
            return _with_validation(out, report, title)
        out.append(f"  billed: {epochs(t.epochs)} x {t.billed_per_epoch:,} = {t.billed_total:,} tokens")
        if t.estimated_usd is not None:
            out.append(f"  estimated cost: ${t.estimated_usd:,.2f} at ${t.usd_per_million:g} per 1M training tokens ({t.price_source})")
        elif t.price_note:
            out.append(f"  estimated cost: {t.price_note} (FTBOT_PRICE_TABLE can set a price)")
        else:
            out.append(f"  estimated cost: unknown (no price for {report.model}; set FTBOT_PRICE_TABLE)")
    return _with_validation(out, report, title)


def epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _with_validation(out: list[str], report: Report, title: str) -> str:
    if report.validation is not None:
        out.append("")
        out.append(render(report.validation, title="validation file"))
    if report.validation is None or title != "training file":
        return "\n".join(out)
    out.append("")
    out.append(f"overall: {report.verdict}")
    return "\n".join(out)
