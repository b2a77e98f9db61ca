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
