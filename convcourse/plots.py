"""Figures for the course: learning curves, image grids, filters, feature maps, errors, comparisons.

Every function returns a matplotlib `Figure` and never calls `plt.show()`. Figures are closed in
pyplot right away, so a notebook shows each one exactly once: as the cell's value or with
`display(fig)` (not a second time when the cell ends).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import nn

from convcourse.data import Split
from convcourse.evaluation import Evaluation, budget_slice, predict
from convcourse.train import History

__all__ = [
    "comparison",
    "confusion_counts",
    "plot_confusion_matrix",
    "plot_feature_maps",
    "plot_filters",
    "plot_history",
    "plot_images",
    "plot_misclassified",
    "plot_shift_robustness",
]


def _new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(nrows, ncols, **kwargs)
    plt.close(fig)  # returned, not auto-shown: no duplicate in notebooks, no pile-up in pyplot
    return fig, axes


def _histories(runs: History | Mapping[str, History]) -> dict[str, History]:
    if isinstance(runs, History):
        return {runs.model_name or "run": runs}
    if isinstance(runs, Mapping) and runs and all(isinstance(h, History) for h in runs.values()):
        return dict(runs)
    raise TypeError("expected a History or a non-empty dict of name -> History (what fit returns)")


def _images(images: Any) -> torch.Tensor:
    """(N, C, H, W) float images from a tensor or a Split, with a clear error otherwise."""
    images = getattr(images, "images", images)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor shaped (N, C, H, W) or a Split, got {shape}")
    return images.detach().float().cpu()


def _layer_path(model: nn.Module, name: str) -> str:
    """A layer named as code reaches it: "Sequential[1]", "ConvModel.features[3]" (not named_modules' "1")."""
    return type(model).__name__ + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in name.split("."))


def _conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer: filters and feature maps need a conv model")
    return convs


def _mosaic(tiles: np.ndarray, ncols: int, *, pad: int, band: int = 0,
            fill: float = math.nan) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """(N, H, W[, 3]) tiles in rows of `ncols`, `pad` pixels around each and a `band` above each for its label.

    Returns the picture and, per tile, where its label goes (centre x, top edge y, in pixels).
    One image with one Axes, where a subplot per tile costs matplotlib ~10 ms each to lay out and draw.
    """
    n, h, w = tiles.shape[:3]
    nrows = max(1, math.ceil(n / ncols))
    picture = np.full((nrows * (band + h + pad) + pad, min(n, ncols) * (w + pad) + pad, *tiles.shape[3:]),
                      fill, dtype=np.float32)
    anchors = []
    for i, tile in enumerate(tiles):
        row, col = divmod(i, ncols)
        top, left = pad + band + row * (band + h + pad), pad + col * (w + pad)
        picture[top : top + h, left : left + w] = tile
        anchors.append((left + (w - 1) / 2, top - 0.5))
    return picture, anchors


def _labelled_tiles(ax: Any, tiles: np.ndarray, labels: Sequence[str], ncols: int, *, fontsize: float,
                    **imshow: Any) -> None:
    """Draw `tiles` as one mosaic on `ax` with a label above each (`imshow`: cmap, vmin, vmax)."""
    ax.axis("off")
    if not len(tiles):
        return
    picture, anchors = _mosaic(tiles, ncols, pad=1, band=math.ceil(tiles.shape[1] / 4))
    ax.imshow(picture, interpolation="nearest", **imshow)
    for (x, y), label in zip(anchors, labels):
        ax.text(x, y, label, ha="center", va="bottom", fontsize=fontsize)


def _unit_range(tiles: torch.Tensor) -> np.ndarray:
    """Each tile scaled to [0, 1] on its own (what imshow's autoscaling did per subplot)."""
    flat = tiles.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    scaled = (flat - low[:, None]) / (high - low).clamp(min=1e-12)[:, None]
    return scaled.reshape(tiles.shape).numpy()


def plot_history(runs: History | Mapping[str, History], *, metric: str = "accuracy") -> Figure:
    """Train (dashed) and validation (solid) `metric` against steps, for one run or several overlaid."""
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
    frames = []
    for name, history in _histories(runs).items():
        frame = history.to_frame()
        frame["run"] = name
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        raise ValueError("the history has no points: did fit run?")
    fig, ax = _new_figure(figsize=(7, 4.5))
    many = len(frames) > 1
    sns.lineplot(data=table, x="step", y=metric, hue="run" if many else "split", style="split",
                 style_order=["validation", "train"], marker="o", ax=ax)
    ax.set(xlabel="training step", ylabel=metric, title=f"Train and validation {metric}")
    if any(h.capped for h in _histories(runs).values()):
        ax.set_title(ax.get_title() + " (capped run)")
    fig.tight_layout()
    return fig


def plot_images(images: Any, targets: Sequence[int] | torch.Tensor | None = None, *, n: int = 100,
                nrow: int = 10) -> Figure:
    """The first `n` images as one grid, 2 white pixels around each; targets go in the title."""
    targets = getattr(images, "targets", targets)
    batch = _images(images)[:n].clamp(0, 1)
    if batch.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 (gray) or 3 (RGB) channels, got {batch.shape[1]}")
    tiles = batch[:, 0].numpy() if batch.shape[1] == 1 else batch.permute(0, 2, 3, 1).numpy()
    grid, _ = _mosaic(tiles, nrow, pad=2, fill=1.0)
    title_lines = 0 if targets is None else 1 + math.ceil(len(batch) / nrow)
    fig, ax = _new_figure(figsize=(7, 7 * grid.shape[0] / grid.shape[1] + 0.17 * title_lines))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if targets is not None:
        labels = [int(t) for t in list(targets)[: len(batch)]]
        rows = [" ".join(map(str, labels[i : i + nrow])) for i in range(0, len(labels), nrow)]
        ax.set_title("labels by row:\n" + "\n".join(rows), fontsize=8, family="monospace")
    fig.tight_layout()
    return fig


def plot_filters(model: nn.Module, *, layer: int = 0, ncols: int = 8) -> Figure:
    """The learned kernels of the `layer`-th Conv2d (input channel 0), blue negative, red positive."""
    convs = _conv_layers(model)
    if not -len(convs) <= layer < len(convs):
        raise ValueError(f"layer={layer} but {type(model).__name__} has {len(convs)} Conv2d layers")
    name, conv = convs[layer]
    weights = conv.weight.detach().float().cpu()[:, 0]  # (out_channels, kh, kw)
    limit = float(weights.abs().max()) or 1.0
    nrows = math.ceil(len(weights) / ncols)
    fig, ax = _new_figure(figsize=(1.3 * min(ncols, len(weights)), 1.3 * nrows + 0.6))
    _labelled_tiles(ax, weights.numpy(), [str(i) for i in range(len(weights))], ncols, fontsize=7,
                    cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.suptitle(f"{_layer_path(model, name)}: {len(weights)} filters {tuple(weights.shape[1:])}")
    fig.tight_layout()
    return fig


def plot_feature_maps(model: nn.Module, image: torch.Tensor, *, max_maps: int = 8, ncols: int | None = None) -> Figure:
    """One image, then the first `max_maps` output channels of every Conv2d it passes through, `ncols` to a row
    (default: all in one row; 8 lays 32 maps out as `plot_filters` lays out 32 filters)."""
    image = image.detach().float()
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or len(image) != 1:
        raise ValueError(f"image must be shaped (C, H, W) or (1, C, H, W), got {tuple(image.shape)}")
    convs = _conv_layers(model)
    maps: dict[str, torch.Tensor] = {}
    hooks = [conv.register_forward_hook(lambda m, i, o, name=name: maps.__setitem__(name, o[0].float().cpu()))
             for name, conv in convs]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(image.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    ncols = ncols or max_maps
    heights = [1] + [math.ceil(min(max_maps, len(fmap)) / ncols) for fmap in maps.values()]
    fig, axes = _new_figure(len(maps) + 1, 1, figsize=(1.4 * ncols, 1.6 * sum(heights)), squeeze=False,
                            gridspec_kw={"height_ratios": heights})
    _labelled_tiles(axes[0, 0], image[0, :1].cpu().numpy(), ["input"], ncols, fontsize=8, cmap="gray")
    for row, (name, fmap) in enumerate(maps.items(), start=1):
        shown = fmap[:max_maps]
        _labelled_tiles(axes[row, 0], _unit_range(shown), [f"#{c}" for c in range(len(shown))], ncols, fontsize=7,
                        cmap="viridis", vmin=0, vmax=1)
        axes[row, 0].set_title(f"{_layer_path(model, name)}: {len(fmap)} maps", fontsize=8)
    fig.suptitle(f"Feature maps of {type(model).__name__} (conv outputs, before ReLU; each map scaled on its own)")
    fig.tight_layout()
    return fig


def confusion_counts(targets: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> np.ndarray:
    """Counts[i, j] = number of images of class i predicted as j."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).numpy()


def _predicted(model: nn.Module, split: Any) -> tuple[Split, torch.Tensor]:
    """The scored part of `split` (all of it, or what `evaluate` scores under a training budget) and its predictions."""
    _images(split)  # the clear shape error, before any prediction
    scored = Split(*budget_slice(split.images, split.targets, announce=False))
    return scored, predict(model, scored)


def plot_confusion_matrix(model: nn.Module, split: Any, *, normalize: bool = False, name: str | None = None) -> Figure:
    """Confusion matrix of `model` on `split`: rows are true classes, columns predictions; `name` titles it."""
    split, preds = _predicted(model, split)
    num_classes = int(max(split.targets.max(), preds.max())) + 1
    counts = confusion_counts(split.targets.cpu(), preds, num_classes)
    values = counts / counts.sum(axis=1, keepdims=True).clip(min=1) if normalize else counts
    fig, ax = _new_figure(figsize=(6.5, 5.5))
    sns.heatmap(values, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False, ax=ax,
                annot_kws={"fontsize": 8})
    accuracy = np.trace(counts) / counts.sum()
    ax.set(xlabel="predicted", ylabel="true",
           title=f"{name or type(model).__name__}: accuracy {accuracy:.2%} on {len(preds):,} images")
    fig.tight_layout()
    return fig


def plot_misclassified(model: nn.Module, split: Any, *, n: int = 16, ncols: int = 8, name: str | None = None) -> Figure:
    """The first `n` images of `split` that `model` gets wrong, titled 'true -> predicted'; `name` titles the grid."""
    split, preds = _predicted(model, split)
    wrong = torch.nonzero(preds != split.targets.cpu()).flatten()[:n]
    nrows = max(1, math.ceil(len(wrong) / ncols))
    fig, ax = _new_figure(figsize=(1.3 * ncols, 1.5 * nrows + 0.6))
    labels = [f"{int(split.targets[i])} -> {int(preds[i])}" for i in wrong.tolist()]
    _labelled_tiles(ax, _unit_range(split.images[wrong, 0].float().cpu()), labels, ncols, fontsize=9,
                    cmap="gray", vmin=0, vmax=1)
    total = int((preds != split.targets.cpu()).sum())
    fig.suptitle(f"{name or type(model).__name__}: {total} of {len(preds):,} misclassified (true -> predicted)")
    fig.tight_layout()
    return fig


def plot_shift_robustness(table: pd.DataFrame) -> Figure:
    """Accuracy against the shift in pixels, a line per model: the table `convcourse.translation.shift_robustness` makes."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError("expected the non-empty table that convcourse.translation.shift_robustness returns")
    fig, ax = _new_figure(figsize=(6.5, 4))
    for name, row in table.iterrows():
        ax.plot(list(table.columns), row.to_numpy(dtype=float), marker="o", label=str(name))
    ax.set(xlabel="shift in pixels (mean over up, down, left and right)", ylabel="accuracy", xticks=list(table.columns),
           title="Accuracy on shifted digits, without retraining")
    ax.legend()
    fig.tight_layout()
    return fig


def _accuracy(result: Evaluation | float | None) -> float:
    if result is None:
        return math.nan
    return float(result.accuracy if isinstance(result, Evaluation) else result)


def comparison(runs: Mapping[str, History], test: Mapping[str, Evaluation | float] | None = None
               ) -> tuple[pd.DataFrame, Figure]:
    """Table (parameters, time, validation and test accuracy per run) and a bar chart of it."""
    histories = _histories(runs)
    test = dict(test or {})
    unknown = set(test) - set(histories)
    if unknown:
        raise ValueError(f"test results for runs that are not in runs: {sorted(unknown)}")
    table = pd.DataFrame(
        {
            "parameters": [h.parameters for h in histories.values()],
            "steps": [h.steps_run for h in histories.values()],
            "wall_time_s": [h.wall_time for h in histories.values()],
            "valid_accuracy": [h.final_valid_accuracy for h in histories.values()],
            "test_accuracy": [_accuracy(test.get(name)) for name in histories],
        },
        index=pd.Index(list(histories), name="run"),
    )
    long = (
        table.rename(columns={"valid_accuracy": "validation", "test_accuracy": "test"})
        .reset_index()
        .melt(id_vars="run", value_vars=["validation", "test"], var_name="split", value_name="accuracy")
        .dropna()
    )
    fig, (ax_acc, ax_time) = _new_figure(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    sns.barplot(data=long, x="run", y="accuracy", hue="split", ax=ax_acc)
    low = max(0.0, float(long["accuracy"].min()) - 0.02) if len(long) else 0.0
    ax_acc.set(ylim=(low, 1.0), title="Accuracy", xlabel="")
    sns.barplot(x=table.index, y=table["wall_time_s"], ax=ax_time, color="gray")
    ax_time.set(title="Training time", ylabel="seconds", xlabel="")
    for ax in (ax_acc, ax_time):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return table, fig
