"""convcourse.plots: every figure builds under Agg, shows what it claims, and refuses bad input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from convcourse import plots  # noqa: E402
from convcourse.budget import BUDGET_ENV, EVAL_IMAGES  # noqa: E402
from convcourse.data import Split  # noqa: E402
from convcourse.evaluation import Evaluation, evaluate  # noqa: E402
from convcourse.models import ConvModel2, Model  # noqa: E402
from convcourse.train import fit  # noqa: E402


@pytest.fixture(scope="module")
def runs(tiny_data):
    """A small conv net and the MLP, trained briefly on the digits stand-in."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(BUDGET_ENV, raising=False)
        torch.manual_seed(0)
        conv = ConvModel2(f1=4, f2=8, verbose=False)
        conv_history = fit(conv, tiny_data, epochs=1, validate_every=5, max_steps=10, progress=False)
        mlp = Model()
        mlp_history = fit(mlp, tiny_data, epochs=2, validate_every=10, progress=False)
    return {"conv": (conv, conv_history), "mlp": (mlp, mlp_history)}


@pytest.fixture(autouse=True)
def _no_figures_left_open():
    yield
    assert plt.get_fignums() == [], "plots must not leave figures open in pyplot"


def test_history_one_run(runs) -> None:
    _, history = runs["mlp"]
    fig = plots.plot_history(history)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training step" and ax.get_ylabel() == "accuracy"
    plotted = {tuple(np.round(line.get_ydata(), 6)) for line in ax.lines}
    assert tuple(np.round(history.valid_accuracy, 6)) in plotted
    assert tuple(np.round(history.train_accuracy, 6)) in plotted


def test_history_many_runs_and_loss(runs) -> None:
    fig = plots.plot_history({name: h for name, (_, h) in runs.items()}, metric="loss")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "loss" and "capped" in ax.get_title()  # the conv run was capped
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"conv", "mlp", "train", "validation"} <= labels


def test_history_bad_input(runs) -> None:
    with pytest.raises(ValueError, match="metric"):
        plots.plot_history(runs["mlp"][1], metric="f1")
    with pytest.raises(TypeError, match="History"):
        plots.plot_history([1, 2, 3])


def test_image_grid(tiny_data) -> None:
    fig = plots.plot_images(tiny_data.train, n=20, nrow=10)
    image = fig.axes[0].images[0].get_array()
    assert image.shape[:2] == (2 * 28 + 3 * 2, 10 * 28 + 11 * 2)  # 2 white pixels around every image
    np.testing.assert_allclose(image[2 + 28 + 2 :][:28, 2:30], tiny_data.train.images[10, 0].clamp(0, 1).numpy())
    assert image[0].min() == 1.0 and image[:, 30:32].min() == 1.0
    labels = " ".join(str(int(t)) for t in tiny_data.train.targets[:10])
    assert labels in fig.axes[0].get_title()
    assert isinstance(plots.plot_images(tiny_data.test.images[:5]), Figure)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        plots.plot_images(torch.rand(5, 28, 28))
    with pytest.raises(ValueError, match="1 \\(gray\\) or 3 \\(RGB\\) channels"):
        plots.plot_images(torch.rand(5, 2, 28, 28))


def test_mosaic_places_every_tile_below_its_label_band() -> None:
    tiles = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    picture, anchors = plots._mosaic(tiles, 3, pad=1, band=2)
    assert picture.shape == (2 * (2 + 2 + 1) + 1, 3 * (3 + 1) + 1)
    for i, (x, y) in enumerate(anchors):
        top, left = round(y + 0.5), round(x - 1)  # label anchor: centre of the tile's top edge
        np.testing.assert_array_equal(picture[top : top + 2, left : left + 3], tiles[i])
        assert np.isnan(picture[top - 3 : top, left : left + 3]).all()  # pad and label band above it
    assert np.isnan(picture[-3:, -4:]).all()  # the sixth place of the last row stays empty


def _tiles_and_labels(ax) -> tuple[np.ndarray, list[str]]:
    return ax.images[0].get_array(), [t.get_text() for t in ax.texts]


def test_filters(runs) -> None:
    conv, _ = runs["conv"]
    fig = plots.plot_filters(conv)
    assert len(fig.axes) == 1  # one mosaic, not a subplot per filter
    picture, labels = _tiles_and_labels(fig.axes[0])
    assert labels == ["0", "1", "2", "3"]
    weights = conv.features[1].weight[:, 0].detach().numpy()
    expected, _ = plots._mosaic(weights, 8, pad=1, band=2)
    np.testing.assert_allclose(picture, expected)
    limit = float(np.abs(weights).max())
    assert fig.axes[0].images[0].get_clim() == pytest.approx((-limit, limit))  # 0 is white for every filter
    assert len(plots.plot_filters(conv, layer=1).axes[0].texts) == 8
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        plots.plot_filters(runs["mlp"][0])
    with pytest.raises(ValueError, match="layer=5"):
        plots.plot_filters(conv, layer=5)


def test_feature_maps(runs, tiny_data) -> None:
    conv, _ = runs["conv"]
    fig = plots.plot_feature_maps(conv, tiny_data.test.images[0], max_maps=4)
    rows = [_tiles_and_labels(ax) for ax in fig.axes if ax.images]
    assert [labels for _, labels in rows] == [["input"], ["#0", "#1", "#2", "#3"], ["#0", "#1", "#2", "#3"]]
    # each row named as code reaches its layer: conv.features[1], not named_modules' "features.1"
    assert [ax.get_title() for ax in fig.axes if ax.images][1:] == [f"{type(conv).__name__}.features[1]: 4 maps",
                                                                     f"{type(conv).__name__}.features[3]: 8 maps"]
    sequential = torch.nn.Sequential(torch.nn.Identity(), torch.nn.ReLU(), torch.nn.Conv2d(1, 2, 3))
    assert plots.plot_feature_maps(sequential, tiny_data.test.images[0]).axes[1].get_title() == "Sequential[2]: 2 maps"
    assert plots.plot_filters(sequential)._suptitle.get_text() == "Sequential[2]: 2 filters (3, 3)"
    maps, labels = rows[1]
    assert maps.shape == (1 + 7 + 28 + 1, 4 * 29 + 1)  # 28x28 maps under a 7-pixel label band
    assert np.nanmin(maps) == 0.0 and np.nanmax(maps) == 1.0  # each map scaled to [0, 1] on its own
    assert conv.training  # mode restored
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        plots.plot_feature_maps(conv, tiny_data.test.images[:2])


def test_feature_maps_in_rows_like_the_filters(runs, tiny_data) -> None:
    conv, _ = runs["conv"]  # 4 then 8 channels
    fig = plots.plot_feature_maps(conv, tiny_data.test.images[0], max_maps=8, ncols=4)
    rows = [_tiles_and_labels(ax) for ax in fig.axes if ax.images]
    assert [len(labels) for _, labels in rows] == [1, 4, 8]
    assert rows[2][0].shape == (2 * (1 + 7 + 28) + 1, 4 * 29 + 1)  # 8 maps in two rows of 4, like plot_filters(ncols=4)
    filters, _ = _tiles_and_labels(plots.plot_filters(conv, layer=1, ncols=4).axes[0])
    assert filters.shape[1] == 4 * (3 + 1) + 1  # its 3x3 filters in the same 4 columns: filter #k sits where map #k does


def test_confusion_counts_hand_made() -> None:
    counts = plots.confusion_counts(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0]), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_confusion_matrix_and_misclassified(runs, tiny_data) -> None:
    model, _ = runs["mlp"]
    accuracy = evaluate(model, tiny_data.test).accuracy
    fig = plots.plot_confusion_matrix(model, tiny_data.test)
    assert f"{accuracy:.2%}" in fig.axes[0].get_title()
    cells = [int(t.get_text()) for t in fig.axes[0].texts]
    assert sum(cells) == len(tiny_data.test)
    assert isinstance(plots.plot_confusion_matrix(model, tiny_data.test, normalize=True), Figure)
    fig = plots.plot_misclassified(model, tiny_data.test, n=6, name="the mlp")
    wrong = round((1 - accuracy) * len(tiny_data.test))
    assert fig._suptitle.get_text().startswith(f"the mlp: {wrong} of {len(tiny_data.test)} misclassified")
    labels = fig.axes[0].texts
    assert len(labels) == min(6, wrong) and all(" -> " in t.get_text() for t in labels)


def test_error_figures_score_what_evaluate_scores(runs, monkeypatch) -> None:
    """Under a training budget, evaluate scores the first EVAL_IMAGES images: so do the error figures."""
    model, _ = runs["mlp"]
    generator = torch.Generator().manual_seed(1)
    big = Split(torch.rand(EVAL_IMAGES + 300, 1, 28, 28, generator=generator),
                torch.randint(0, 10, (EVAL_IMAGES + 300,), generator=generator))
    monkeypatch.setenv(BUDGET_ENV, "5")
    accuracy = evaluate(model, big).accuracy
    fig = plots.plot_confusion_matrix(model, big)
    assert sum(int(t.get_text()) for t in fig.axes[0].texts) == EVAL_IMAGES
    assert f"accuracy {accuracy:.2%} on {EVAL_IMAGES:,} images" in fig.axes[0].get_title()
    assert f"of {EVAL_IMAGES:,} misclassified" in plots.plot_misclassified(model, big)._suptitle.get_text()
    monkeypatch.delenv(BUDGET_ENV)
    fig = plots.plot_confusion_matrix(model, big)
    assert sum(int(t.get_text()) for t in fig.axes[0].texts) == len(big)


def test_comparison_table_and_chart(runs, tiny_data) -> None:
    histories = {name: h for name, (_, h) in runs.items()}
    test = {"conv": evaluate(runs["conv"][0], tiny_data.test), "mlp": 0.5}
    table, fig = plots.comparison(histories, test)
    assert isinstance(table, pd.DataFrame) and isinstance(fig, Figure)
    assert list(table.index) == ["conv", "mlp"]
    assert list(table.columns) == ["parameters", "steps", "wall_time_s", "valid_accuracy", "test_accuracy"]
    assert table.loc["conv", "test_accuracy"] == test["conv"].accuracy and table.loc["mlp", "test_accuracy"] == 0.5
    assert table.loc["mlp", "valid_accuracy"] == histories["mlp"].valid_accuracy[-1]
    assert table.loc["conv", "steps"] == 10
    no_test, _ = plots.comparison(histories)
    assert no_test["test_accuracy"].isna().all()
    with pytest.raises(ValueError, match="not in runs"):
        plots.comparison(histories, {"other": Evaluation(0.9, 0.1)})



def test_shift_robustness_chart() -> None:
    table = pd.DataFrame({0: [0.98, 0.99], 1: [0.9, 0.97], 2: [0.6, 0.9]}, index=["mlp", "pool"])
    fig = plots.plot_shift_robustness(table)
    ax = fig.axes[0]
    assert [line.get_ydata().tolist() for line in ax.lines] == [[0.98, 0.9, 0.6], [0.99, 0.97, 0.9]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mlp", "pool"]
    assert "shift in pixels" in ax.get_xlabel()
    with pytest.raises(ValueError, match="shift_robustness"):
        plots.plot_shift_robustness(pd.DataFrame())
