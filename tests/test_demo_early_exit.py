"""`ftbot demo`'s early ways out (no ray package, a Ray head that does not start) close the
transcript they began, and the summary names where the provider runs as the opening rows do."""

from __future__ import annotations

import gc
import io
import warnings
from pathlib import Path

import pytest

from bot import demo


def _run_and_collect(tmp_path: Path, **kw) -> tuple[int, str, list[str]]:  # noqa: ANN003
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        code = demo.run_demo(out_dir=str(tmp_path / "demo"), out=out, provider="ray", **kw)
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "transcript.txt" in str(w.message)]
    return code, out.getvalue(), leaked


def test_without_the_ray_package_the_transcript_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.sandbox.ray_head as ray_head

    monkeypatch.setattr(ray_head, "ray_installed", lambda: False)
    code, text, leaked = _run_and_collect(tmp_path)
    assert code == 2 and demo.RAY_MISSING in text
    assert leaked == []
    [run] = (tmp_path / "demo").iterdir()
    assert (run / "transcript.txt").read_text() == demo.RAY_MISSING + "\n"  # written out, not lost in a buffer


def test_a_ray_head_that_does_not_start_closes_the_transcript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray.job_submission", reason="the ray extra is not installed (pip install -e '.[dev,ray]')")
    from bot.sandbox.ray_head import RayHeadError

    def refuse(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise RayHeadError("no free port")

    monkeypatch.setattr(demo, "_ray_provider", refuse)
    code, text, leaked = _run_and_collect(tmp_path)
    assert code == 1 and "Could not start a local Ray head: no free port" in text
    assert leaked == []
    [run] = (tmp_path / "demo").iterdir()
    assert "Could not start a local Ray head: no free port" in (run / "transcript.txt").read_text()


def test_the_summary_says_where_the_provider_runs() -> None:
    assert demo.where_it_runs("ray") == "Ray head (its job server)"
    assert demo.where_it_runs("together") == "Together AI sandbox" and demo.where_it_runs("openai") == "OpenAI sandbox"
