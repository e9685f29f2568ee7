"""Reading a real caffe train log back (layers/caffe_log.py) and Fig. 4 from it."""
from __future__ import annotations

import cv2


def test_figures_from_a_real_log(trained, tmp_path):
    from data_prep.drawing import plot_fig4
    from layers.caffe_log import fig4_curves, loss_3d_curve, parse_caffe_log

    d, _ = trained
    parsed = parse_caffe_log((d / "train.log").read_text())
    iters, values = loss_3d_curve(parsed, "train")
    assert list(iters) == [0, 1, 2] and (values > 0).all()
    png = plot_fig4(fig4_curves({"run": d / "train.log"}), tmp_path / "fig4.png")
    assert cv2.imread(str(png)).shape[0] > 100


def test_the_figures_tool_draws_figure_4_from_logs(trained, tmp_path):
    from tools import figures

    d, _ = trained
    out = tmp_path / "fig4.png"
    assert figures.main(["fig4", "--log", f"Baseline={d / 'train.log'}", "--out", str(out)]) == 0
    assert cv2.imread(str(out)) is not None
