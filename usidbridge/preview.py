"""A picture of each Main dataset (matplotlib): what a scientist looks at first.

Per dataset, by the dims that vary (size > 1): two position dims → an image; one dim → a line;
positions and a spectrum → a map of the mean magnitude over the spectrum beside the mean spectrum; one
position dim and a spectrum → an image of position × spectrum. Further dims are shown at their
first index. Complex data is shown as its magnitude, compound data by its first field. Axes are
labelled "label (units)". The data is read once, in blocks of rows, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .hdf import COPY_BLOCK_BYTES, atomic_output
from .model import Dataset, Dimension

MAX_PANELS = 12
MAX_IMAGE_VALUES = 4_000_000


def _label(dim: Dimension) -> str:
    return f"{dim.name} ({dim.units})" if dim.units else dim.name


def _real(block: np.ndarray) -> np.ndarray:
    if block.dtype.fields:
        block = block[block.dtype.names[0]]
    if block.dtype.kind == "c":
        block = np.abs(block)
    return np.asarray(block, dtype=np.float64)


def _reduce(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(mean |value| of each position over its spectrum, mean spectrum over the positions), in one blockwise pass.

    The map uses magnitudes so that spectra symmetric about zero (an I-V sweep) do not cancel out.
    """
    positions, spectral = dataset.shape
    step = max(1, COPY_BLOCK_BYTES // max(1, spectral * dataset.dtype.itemsize))
    position_mean = np.empty(positions)
    spectral_sum, counted = np.zeros(spectral), np.zeros(spectral)
    for start in range(0, positions, step):
        block = _real(np.asarray(dataset.data[start : start + step]))
        finite = np.isfinite(block)
        with np.errstate(invalid="ignore", divide="ignore"):
            magnitude = np.abs(block) if spectral > 1 else block
            position_mean[start : start + len(block)] = np.where(finite, magnitude, 0).sum(axis=1) / finite.sum(axis=1)
        spectral_sum += np.where(finite, block, 0).sum(axis=0)
        counted += finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return position_mean, spectral_sum / counted


def _first_index(array: np.ndarray, dims: Sequence[Dimension], keep: Sequence[Dimension]) -> np.ndarray:
    """`array` (axes = `dims`) at index 0 of every axis not in `keep`."""
    index = tuple(slice(None) if any(dim is kept for kept in keep) else 0 for dim in dims)
    return array[index]


def _image(axes: Any, values: np.ndarray, y: Dimension, x: Dimension, title: str) -> None:
    stride = max(1, int(np.ceil(np.sqrt(values.size / MAX_IMAGE_VALUES))))
    shown = values[::stride, ::stride]
    extent = [x.values[0], x.values[-1], y.values[-1], y.values[0]] if y.is_uniform and x.is_uniform else None
    aspect = "equal" if extent is not None and x.units == y.units else "auto"  # a true picture only when both axes are lengths alike
    picture = axes.imshow(shown, extent=extent, aspect=aspect, interpolation="nearest")
    axes.figure.colorbar(picture, ax=axes, shrink=0.8)
    axes.set_xlabel(_label(x) if extent else f"{_label(x)} index")
    axes.set_ylabel(_label(y) if extent else f"{_label(y)} index")
    axes.set_title(title, fontsize=9)


def _line(axes: Any, values: np.ndarray, dim: Dimension, title: str, ylabel: str) -> None:
    axes.plot(dim.values, values, lw=1)
    axes.set_xlabel(_label(dim))
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=9)


def draw(dataset: Dataset, panels: Sequence[Any]) -> None:
    """Draw one dataset into two matplotlib axes (the second is hidden when not needed)."""
    quantity = f"{dataset.quantity} ({dataset.units})" if dataset.units else dataset.quantity
    panels[1].set_visible(False)
    if not dataset.is_grid:
        position_mean, _ = _reduce(dataset)
        table = dataset.pos.values
        if table.shape[1] >= 2:
            picture = panels[0].scatter(table[:, -1], table[:, -2], c=position_mean, s=12)
            panels[0].figure.colorbar(picture, ax=panels[0], shrink=0.8)
            panels[0].set_xlabel(f"{dataset.pos.labels[-1]} ({dataset.pos.units[-1]})")
            panels[0].set_ylabel(f"{dataset.pos.labels[-2]} ({dataset.pos.units[-2]})")
        else:
            panels[0].plot(table[:, 0], position_mean, ".")
            panels[0].set_xlabel(f"{dataset.pos.labels[0]} ({dataset.pos.units[0]})")
        panels[0].set_title(f"{quantity}, non-grid positions", fontsize=9)
        return
    pos = [dim for dim in dataset.pos.dims if dim.size > 1]
    spec = [dim for dim in dataset.spec.dims if dim.size > 1]
    position_mean, spectral_mean = _reduce(dataset)
    position_map = position_mean.reshape(dataset.pos.shape)
    spectrum = spectral_mean.reshape(dataset.spec.shape)
    if not spec and len(pos) >= 2:
        _image(panels[0], _first_index(position_map, dataset.pos.dims, pos[-2:]), pos[-2], pos[-1], quantity)
    elif not spec and len(pos) == 1:
        _line(panels[0], _first_index(position_map, dataset.pos.dims, pos), pos[0], quantity, quantity)
    elif spec and not pos:
        _line(panels[0], _first_index(spectrum, dataset.spec.dims, spec[:1]), spec[0], quantity, quantity)
    elif spec and len(pos) == 1:
        whole = _real(np.asarray(dataset.data)).reshape(dataset.nd_shape)
        plane = _first_index(whole, dataset.dims, [pos[0], spec[0]])
        _image(panels[0], plane, pos[0], spec[0], quantity)
    elif spec:
        _image(panels[0], _first_index(position_map, dataset.pos.dims, pos[-2:]), pos[-2], pos[-1], f"mean |{dataset.quantity}| over {spec[0].name}")
        panels[1].set_visible(True)
        _line(panels[1], _first_index(spectrum, dataset.spec.dims, spec[:1]), spec[0], f"mean {dataset.quantity} spectrum", quantity)
    else:
        panels[0].text(0.5, 0.5, f"{quantity} = {position_mean[0]:g}", ha="center", va="center", transform=panels[0].transAxes)
        panels[0].set_axis_off()


def figure(datasets: Sequence[Dataset]) -> Any:
    """A matplotlib figure with a row of panels per dataset (at most `MAX_PANELS` datasets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(datasets)[:MAX_PANELS]
    fig, grid = plt.subplots(len(shown), 2, figsize=(10, 3.6 * len(shown)), squeeze=False)
    for dataset, panels in zip(shown, grid):
        draw(dataset, panels)
    fig.tight_layout()
    return fig


def preview(datasets: Sequence[Dataset], out: str | os.PathLike[str], overwrite: bool = True) -> Path:
    """Write the picture of `datasets` to `out` (PNG, or any format matplotlib writes by extension)."""
    import matplotlib.pyplot as plt

    fig = figure(datasets)
    try:
        with atomic_output(out, overwrite=overwrite) as temporary:
            fig.savefig(temporary, dpi=110)
    finally:
        plt.close(fig)
    return Path(out)
