"""The arrows of the architecture, read from the code: every import of every module under bot/ and
storage/ (at module level, inside functions, under TYPE_CHECKING alike), by `ast`, never by
importing anything."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "storage")
FEATURES = ("bot.jobs", "bot.approvals", "bot.datasets", "bot.retirements", "bot.evals", "bot.migration")
# What starts processes and wires features together: nothing below them imports these.
TOP = ("bot.app", "bot.wiring", "bot.listeners", "bot.worker", "bot.web", "bot.cli", "bot.demo", "bot.demo_migrate", "bot.background_server", "bot.middleware")
DOMAIN = (*FEATURES, "bot.outbox", "bot.messages", "bot.events", "bot.charts", "bot.provider", "bot.commands", "storage")


@cache
def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve(name: str) -> str | None:
    """The module an imported name is: itself, or the nearest enclosing module we have."""
    mods = modules()
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module of ours that `module` imports, wherever the import statement is."""
    path = modules()[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, the module mod.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names]
        else:
            continue
        for n in names:
            if n.split(".")[0] in PACKAGES and (m := _resolve(n)) and m != module:
                out.add(m)
    return frozenset(out)


def _under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def closure(module: str, through: tuple[str, ...] = ()) -> set[str]:
    """Every module `module` imports, directly or not; `through`: modules reached but not followed."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for m in imports_of(todo.pop()):
            if m not in seen:
                seen.add(m)
                if m not in through:
                    todo.append(m)
    return seen


def violations(sources: Iterable[str], forbidden: Iterable[str], *, transitive: bool = False, not_through: tuple[str, ...] = ()) -> list[str]:
    forbidden = tuple(forbidden)
    out = []
    for src in sorted(m for m in modules() if _under(m, tuple(sources))):
        reached = closure(src, not_through) if transitive else imports_of(src)
        out += [f"{src} -> {m}" for m in sorted(reached) if _under(m, forbidden) and not _under(m, tuple(sources))]
    return out


def test_the_reader_sees_function_level_and_relative_imports() -> None:
    # The rules below are only as good as this reading: a lazy import inside a function counts.
    assert "bot.outbox.sender" in imports_of("bot.outbox.deliver")
    assert "storage.models" in imports_of("bot.outbox.queue")
    assert len(modules()) > 150


def test_the_outbox_imports_no_feature() -> None:
    # nor the builders: a message the outbox sends of its own (a channel ended, a classic fallback)
    # is drawn in bot/outbox; every other message comes drawn or from a feature's renderer
    assert violations(["bot.outbox"], [*FEATURES, "bot.charts", "bot.messages"]) == []


def test_messages_import_no_feature_nor_storage_even_indirectly() -> None:
    assert violations(["bot.messages"], [*FEATURES, "storage", "bot.outbox", "bot.services", "bot.events"], transitive=True) == []


def test_lower_features_import_nothing_of_evaluations_or_migrations_even_indirectly() -> None:
    assert violations(["bot.jobs", "bot.approvals", "bot.datasets", "bot.retirements"], ["bot.evals", "bot.migration"], transitive=True) == []


def test_the_poller_imports_no_evaluation_migration_retirement_or_approval_even_indirectly() -> None:
    # Not followed through what every process shares: the settings (which check an FTBOT_RETIREMENTS
    # file when read) and the services (whose builder starts the providers, sandboxes included).
    shared = ("bot.settings", "bot.services")
    assert violations(["bot.worker.poller"], ["bot.evals", "bot.migration", "bot.retirements", "bot.approvals"], transitive=True, not_through=shared) == []


def test_the_event_bus_and_the_outbox_registry_know_no_feature() -> None:
    assert violations(["bot.events"], [*FEATURES, "bot.outbox", "bot.messages"]) == []


def test_the_domain_never_imports_what_starts_processes_or_wires_features() -> None:
    assert violations(DOMAIN, TOP) == []


def test_no_import_cycle_in_bot_or_storage() -> None:
    """Tarjan's strongly connected components over the import graph: any component of more than
    one module (or a module importing itself) is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in imports_of(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(modules()):
        if m not in index:
            visit(m)
    assert cycles == []
