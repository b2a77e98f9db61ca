from __future__ import annotations

import io

from matplotlib.image import imread

from bot.charts.loss_chart import Point, loss_chart_png


def test_chart_is_a_png_with_both_curves() -> None:
    points = [Point(s, 2.0 / s, 2.2 / s if s % 5 == 0 else None, 0.5 + s / 100, None) for s in range(1, 41)]
    png = loss_chart_png(points, title="ftjob-x (running)", checkpoints=[10, 20])
    assert png.startswith(b"\x89PNG")
    img = imread(io.BytesIO(png))
    assert img.shape[0] == 550 and img.shape[1] == 800
    # some orange pixels (the validation curve) are drawn: matplotlib's second colour is (1.0, 0.5, 0.05)
    orange = ((img[..., 0] > 0.9) & (img[..., 1] > 0.4) & (img[..., 1] < 0.6) & (img[..., 2] < 0.2)).sum()
    assert orange > 50


def test_chart_without_points_still_renders() -> None:
    assert loss_chart_png([], title="empty").startswith(b"\x89PNG")


def test_chart_without_validation_has_no_orange() -> None:
    png = loss_chart_png([Point(s, 1.0 / s) for s in range(1, 20)], title="t")
    img = imread(io.BytesIO(png))
    orange = ((img[..., 0] > 0.9) & (img[..., 1] > 0.4) & (img[..., 1] < 0.6) & (img[..., 2] < 0.2)).sum()
    assert orange == 0


def test_title_names_the_model_and_the_job_and_the_legend_explains_checkpoints() -> None:
    from bot.charts.loss_chart import chart_title, loss_chart_figure

    title = chart_title("ftjob-abc", "succeeded", model="ft:gpt-4o-mini-2024-07-18:org:support:x1")
    assert title == "ft:gpt-4o-mini-2024-07-18:org:support:x1\nftjob-abc (succeeded)"
    assert chart_title("ftjob-abc", "running", suffix="support", base_model="gpt-4o-mini") == "gpt-4o-mini · support\nftjob-abc (running)"
    assert chart_title("ftjob-abc", "running") == "ftjob-abc (running)"
    points = [Point(s, 2.0 / s, 2.2 / s if s % 5 == 0 else None, 0.5 + s / 100, None) for s in range(1, 41)]
    fig = loss_chart_figure(points, title=title, checkpoints=[10, 20, 20])
    loss, acc = fig.axes
    assert loss.get_title() == title
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train loss", "validation loss", "checkpoint (a model you can try)"]
    assert acc.get_ylabel() == "token accuracy" and acc.get_legend() is not None


def test_no_accuracy_reported_means_no_accuracy_panel() -> None:
    from bot.charts.loss_chart import loss_chart_figure

    together = [Point(s, 2.0 / s, 2.1 / s if s % 10 == 0 else None) for s in range(1, 31)]
    fig = loss_chart_figure(together, title="t", checkpoints=[10, 20, 30])
    [only] = fig.axes
    assert only.get_ylabel() == "loss" and only.get_xlabel() == "step"
    img = imread(io.BytesIO(loss_chart_png(together, title="t")))
    assert img.shape[0] == 420  # shorter: no empty panel under it
