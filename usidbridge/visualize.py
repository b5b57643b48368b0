"""Look at a dataset interactively in a notebook, as pyUSID's and HyperSpy's plots let one do.

=============================  ==============================================================
dataset                        view
=============================  ==============================================================
map of spectra (positions ×    the map at the chosen spectral index, a cross at the cursor;
one spectral dim)              the spectrum under the cursor, a line at the spectral index;
                               one slider per position dim moves the cursor, one the index
stack (frames as positions,    the image of the last two position dims; a slider per other
or as the spectral dim)        position dim, or the spectral slider, goes through the frames
spectral images (≥ 2 dims)     the map of the mean magnitude; the spectral image under the cursor
anything else                  the static preview (`usidbridge.preview.figure`)
=============================  ==============================================================

Outside a notebook (no IPython kernel, or ipywidgets missing) `visualize` returns the static
preview figure. Images keep their physical aspect ratio; spectra dominated by one peak get a
logarithmic scale (`usidbridge.preview.peak_dominated`). Only the rows and columns shown are read,
so a lazy dataset stays lazy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .model import Dataset, Dimension
from .preview import axis_of, figure, labelled, line_scale, means, natural_units, numeric, square_pixels


def in_notebook() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def movable(dataset: Dataset) -> bool:
    """Whether a view of `dataset` has anything to move: a spectral dim, or a stack of images."""
    if not dataset.is_grid:
        return False
    varying = [dim for dim in dataset.pos.dims if dim.size > 1]
    return any(dim.size > 1 for dim in dataset.spec.dims) or len(varying) > 2


class Viewer:
    """The figure and its state for one grid dataset (see the module text): `cursor` holds an index
    per varying position dim, `index` one into the single spectral dim; `show` moves them."""

    def __init__(self, dataset: Dataset) -> None:
        import matplotlib.figure

        self.dataset = dataset
        self.position_dims = [dim for dim in dataset.pos.dims if dim.size > 1]
        self.spectral_dims = [dim for dim in dataset.spec.dims if dim.size > 1]
        self.image_dims = self.position_dims[-2:] if len(self.position_dims) >= 2 else []
        self.cursor = {dim.name: 0 for dim in self.position_dims}
        self.index = 0
        panels = bool(self.image_dims) + bool(self.spectral_dims)
        self.figure = matplotlib.figure.Figure(figsize=(4.6 * panels, 3.8), layout="constrained")
        axes = list(self.figure.subplots(1, panels, squeeze=False)[0])
        self.map_axes = axes.pop(0) if self.image_dims else None
        self.spectrum_axes = axes.pop(0) if self.spectral_dims else None
        if self.map_axes is not None:
            self._draw_map()
        if self.spectrum_axes is not None:
            self._draw_spectrum()
        self._titles()

    @property
    def sliders(self) -> dict[str, Dimension]:
        """What the user moves: the cursor over every varying position dim and the spectral index
        when there is a spectrum; for a stack without one, the position dims that are not the image's."""
        if not self.spectral_dims:
            return {dim.name: dim for dim in self.position_dims if dim not in self.image_dims}
        moving = {dim.name: dim for dim in self.position_dims}
        if len(self.spectral_dims) == 1:
            moving[self.spectral_dims[0].name] = self.spectral_dims[0]
        return moving

    def _row(self) -> int:
        """The position row under the cursor (dims that do not vary at index 0)."""
        index = tuple(self.cursor.get(dim.name, 0) for dim in self.dataset.pos.dims)
        return int(np.ravel_multi_index(index, self.dataset.pos.shape))

    def map_values(self) -> np.ndarray:
        """The image of the image dims, other position dims at the cursor: the data at the
        spectral index, or the mean magnitude over ≥ 2 spectral dims; magnitudes of complex data."""
        if len(self.spectral_dims) >= 2:
            values = means(self.dataset)[0]
        else:
            values = numeric(np.asarray(self.dataset.data[:, self.index]))
        plane = values.reshape(self.dataset.pos.shape)[tuple(slice(None) if dim in self.image_dims else self.cursor.get(dim.name, 0) for dim in self.dataset.pos.dims)]
        return np.abs(plane) if plane.dtype.kind == "c" else plane

    def spectrum_values(self) -> np.ndarray:
        """The spectrum (or spectral image) under the cursor, shaped by the varying spectral dims."""
        values = numeric(np.asarray(self.dataset.data[self._row()]))
        values = np.abs(values) if values.dtype.kind == "c" else values
        return values.reshape([dim.size for dim in self.spectral_dims])

    def _draw_map(self) -> None:
        y, x = self.image_dims
        alike = x.units == y.units
        (self.x_values, x_label), (self.y_values, y_label) = axis_of(x, [y] if alike else []), axis_of(y, [x] if alike else [])
        extent = [self.x_values[0], self.x_values[-1], self.y_values[-1], self.y_values[0]]
        self.image = self.map_axes.imshow(self.map_values(), extent=extent, aspect="equal" if square_pixels(x, y) else "auto", interpolation="nearest")
        self.figure.colorbar(self.image, ax=self.map_axes, shrink=0.85).set_label(labelled(self.dataset.quantity, self.dataset.units), fontsize=8)
        self.marker = self.map_axes.plot([self.x_values[0]], [self.y_values[0]], "+", color="red", markersize=14, mew=2)[0] if self.spectral_dims else None
        self.map_axes.set_xlabel(x_label)
        self.map_axes.set_ylabel(y_label)

    def _draw_spectrum(self) -> None:
        values = self.spectrum_values()
        if len(self.spectral_dims) >= 2:
            y, x = self.spectral_dims[-2:]
            self.spectral_image = self.spectrum_axes.imshow(values.reshape(-1, y.size, x.size)[0], aspect="equal" if square_pixels(x, y) else "auto", interpolation="nearest")
            self.spectrum_axes.set_xlabel(axis_of(x)[1])
            self.spectrum_axes.set_ylabel(axis_of(y)[1])
            return
        self.energy_values, energy_label = axis_of(self.spectral_dims[0])
        self.factor, units = natural_units(values, self.dataset.units)
        self.line = self.spectrum_axes.plot(self.energy_values, values * self.factor, lw=1)[0]
        self.index_line = self.spectrum_axes.axvline(self.energy_values[0], color="red", lw=0.8)
        self.spectrum_axes.set_yscale(**line_scale(values * self.factor))
        self.spectrum_axes.set_xlabel(energy_label)
        self.spectrum_axes.set_ylabel(labelled(self.dataset.quantity, units))

    def _titles(self) -> None:
        if self.map_axes is not None:
            at = f" at {_value(self.spectral_dims[0], self.index)}" if len(self.spectral_dims) == 1 else ""
            others = [f"{_value(dim, self.cursor[dim.name])}" for dim in self.position_dims if dim not in self.image_dims]
            self.map_axes.set_title(", ".join([self.dataset.name + at, *others]), fontsize=9)
        if self.spectrum_axes is not None:
            self.spectrum_axes.set_title(", ".join(_value(dim, self.cursor[dim.name]) for dim in self.position_dims) or self.dataset.name, fontsize=9)

    def show(self, **values: int) -> None:
        """Move to new slider values (dim name → index) and redraw what they change."""
        for name, value in values.items():
            if name in self.cursor:
                self.cursor[name] = int(value)
            elif len(self.spectral_dims) == 1 and name == self.spectral_dims[0].name:
                self.index = int(value)
        if self.map_axes is not None:
            self.image.set_data(self.map_values())
            if self.marker is not None:
                y, x = self.image_dims
                self.marker.set_data([self.x_values[self.cursor[x.name]]], [self.y_values[self.cursor[y.name]]])
        if self.spectrum_axes is not None and len(self.spectral_dims) >= 2:
            y, x = self.spectral_dims[-2:]
            self.spectral_image.set_data(self.spectrum_values().reshape(-1, y.size, x.size)[0])
        elif self.spectrum_axes is not None:
            self.line.set_ydata(self.spectrum_values() * self.factor)
            self.index_line.set_xdata([self.energy_values[self.index]] * 2)
            self.spectrum_axes.relim()
            self.spectrum_axes.autoscale_view(scalex=False)
        self._titles()


def _value(dim: Dimension, index: int) -> str:
    """``X = 1.5 µm``: a dim's value at `index` in its natural units."""
    factor, units = natural_units(dim.values, dim.units)
    return f"{dim.name} = {dim.values[index] * factor:g} {units}".strip()


def visualize(datasets: Dataset | Sequence[Dataset], notebook: bool | None = None) -> Any:
    """An interactive view of the first dataset in a notebook (its sliders above its figure, in an
    ipywidgets box whose ``viewer`` holds the state), else the static preview figure of all of
    them; `notebook` forces either. Datasets with nothing to move get the static figure too."""
    datasets = [datasets] if isinstance(datasets, Dataset) else list(datasets)
    if not (in_notebook() if notebook is None else notebook) or not movable(datasets[0]):
        return figure(datasets)
    import ipywidgets
    from IPython.display import display

    viewer = Viewer(datasets[0])
    output = ipywidgets.Output()
    sliders = {name: ipywidgets.IntSlider(value=0, min=0, max=dim.size - 1, description=name, continuous_update=False) for name, dim in viewer.sliders.items()}

    def redraw(change: dict[str, Any] | None = None) -> None:
        if change is not None:
            viewer.show(**{name: slider.value for name, slider in sliders.items()})
        output.clear_output(wait=True)
        with output:
            display(viewer.figure)

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    redraw()
    box = ipywidgets.VBox([*sliders.values(), output])
    box.viewer = viewer
    return box
