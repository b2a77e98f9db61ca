"""`ftbot demo --provider ray` on the suite's Ray head: the whole conversation, the model's deletion
through approvals removing its output folder."""

from __future__ import annotations

import io
from pathlib import Path

from bot.demo import run_demo


def test_the_ray_demo_trains_alerts_charts_and_deletes_through_approvals(ray_head, tmp_path) -> None:  # noqa: ANN001
    out = io.StringIO()
    assert run_demo(out_dir=str(tmp_path / "demo"), out=out, provider="ray", ray_address=ray_head.address) == 0, out.getvalue()[-3000:]
    text = out.getvalue()
    assert f"Using the Ray head at {ray_head.address}" in text
    assert "Total optimization steps" in text and "succeeded" in text and "Valid loss" in text
    [run] = (tmp_path / "demo").iterdir()  # each run writes to its own run-YYYYmmdd-HHMMSS folder
    assert "[thread: image] Loss chart for sl-" in text and (run / "loss-chart.png").read_bytes().startswith(b"\x89PNG")
    assert "*Deleted*" in text and "was deleted" in text
    summary = text.split("\nSummary\n")[1]
    assert "provider          Ray head (its job server)" in summary and "Ray sandbox" not in summary  # a real head, not a sandbox
    assert "model deleted     yes, after two approvals" in summary
    outputs = Path(run / "ray-storage" / "outputs")
    assert outputs.is_dir() and list(outputs.iterdir()) == []  # the approved deletion removed the model's folder
