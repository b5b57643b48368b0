"""A picture of each Main dataset (matplotlib): what a scientist looks at first.

Per dataset, by the dims that vary (size > 1), one row of panels:

==============================  ==========================================================
position dims / spectral dims   panels
==============================  ==========================================================
≥ 2 / none                      the image (true colour for RGB data)
1 / none                        the line
none / 1, or none / ≥ 2         the spectrum, or the first image of the spectral dims
1 / 1                           position × spectrum image, mean spectrum
≥ 2 / 1                         map of the mean magnitude over the spectrum, mean spectrum
1 or ≥ 2 / ≥ 2                  line or map of the mean magnitude, mean spectral image
non-grid positions              the positions coloured by their mean magnitude
==============================  ==========================================================

Further dims are shown at their first index. Complex values are drawn twice, amplitude and phase;
compound data other than RGB by its first field. Axes are labelled "label (units)" with the
values in the unit's natural prefix (µm, not 1e-6 m). The data is read in blocks of rows, so
memory stays bounded whatever the file size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .images import rgb_fields
from .model import Dataset, Dimension
from .output import COPY_BLOCK_BYTES, atomic_output

MAX_DATASETS = 12
MAX_IMAGE_VALUES = 4_000_000
PANEL_SIZE = (4.6, 3.6)
MAX_ASPECT = 50  # physical aspect ratio unless the image is longer than this (a strip a pixel wide shows nothing)
PEAK_DOMINANCE = 20  # a line whose maximum exceeds its 95th percentile of magnitudes this many times gets a log scale
PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}
SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
SI_UNITS = ("m", "s", "V", "A", "Hz", "eV", "W", "N", "F", "T", "Pa", "C", "J", "Ω", "Ohm", "S", "g", "rad")

Panel = Callable[[Any], None]  # draws into one matplotlib axes


def natural_units(values: np.ndarray, units: str) -> tuple[float, str]:
    """(factor, units) that show `values` in the unit's natural prefix: 0.0014 m → (1e3, "mm").

    Only bare SI units are given a prefix: units that carry one already (nm, kHz) were the
    writer's choice and are kept, and others (counts, a.u., pixels) have none. Values still far
    from 1 get a power of ten in the units (``×10⁻⁹ nm``) instead of matplotlib's multiplier,
    which runs into the title.
    """
    finite = np.abs(values[np.isfinite(values)]) if np.size(values) else np.empty(0)
    if not finite.size or not finite.max():
        return 1.0, units
    power = 3 * math.floor(math.log10(float(finite.max())) / 3)
    if units in SI_UNITS and min(PREFIXES) <= power <= max(PREFIXES):
        return 10.0**-power, PREFIXES[power] + units
    if -3 <= power <= 3:
        return 1.0, units
    return 10.0**-power, f"×10{str(power).translate(SUPERSCRIPTS)} {units}".rstrip()


def labelled(name: str, units: str) -> str:
    return f"{name} ({units})" if units else name


def axis_of(dim: Dimension, alike: Sequence[Dimension] = ()) -> tuple[np.ndarray, str]:
    """A dim's values in its natural units (chosen over `alike` dims too, so that both axes of an image share them), and its label."""
    factor, units = natural_units(np.concatenate([dim.values] + [other.values for other in alike]), dim.units)
    return dim.values * factor, labelled(dim.name, units)


def numeric(block: np.ndarray) -> np.ndarray:
    """Numbers to reduce: the first field of compound data, complex kept, everything else float."""
    if block.dtype.fields:
        block = block[block.dtype.names[0]]
    return block if block.dtype.kind == "c" else np.asarray(block, dtype=np.float64)


def _rows(dataset: Dataset, columns: slice = slice(None)) -> Any:
    """Blocks of whole rows (positions) of the data, `columns` of each: bounded memory."""
    positions, spectral = dataset.shape
    step = max(1, COPY_BLOCK_BYTES // max(1, spectral * dataset.dtype.itemsize))
    for start in range(0, positions, step):
        yield start, np.asarray(dataset.data[start : start + step, columns])


def means(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(per position: mean magnitude over the spectrum, or the value itself for single points; mean spectrum), one pass.

    The map uses magnitudes so that spectra symmetric about zero (an I-V sweep) do not cancel out;
    the mean spectrum keeps complex values, so that its phase can be shown.
    """
    positions, spectral = dataset.shape
    single = spectral == 1
    compound = dataset.dtype if single and rgb_fields(dataset.dtype) else None
    position_values = np.empty(positions, dtype=compound or (np.complex128 if dataset.dtype.kind == "c" and single else np.float64))
    spectral_sum = np.zeros(spectral, dtype=np.complex128 if dataset.dtype.kind == "c" else np.float64)
    counted = np.zeros(spectral)
    for start, raw in _rows(dataset):
        block = numeric(raw)
        finite = np.isfinite(block)
        if compound:
            position_values[start : start + len(raw)] = raw[:, 0]
        elif single:
            position_values[start : start + len(block)] = block[:, 0]
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                position_values[start : start + len(block)] = np.where(finite, np.abs(block), 0).sum(axis=1) / finite.sum(axis=1)
        spectral_sum += np.where(finite, block, 0).sum(axis=0)
        counted += finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return position_values, spectral_sum / counted


def _first_index(array: np.ndarray, dims: Sequence[Dimension], keep: Sequence[Dimension]) -> np.ndarray:
    """`array` (axes = `dims`) at index 0 of every axis not in `keep`."""
    index = tuple(slice(None) if any(dim is kept for kept in keep) else 0 for dim in dims)
    return array[index]


def _true_colour(values: np.ndarray) -> np.ndarray:
    """A compound red/green/blue[/alpha] image as floats in [0, 1], stretched alike in every channel (colour balance kept) up to the 99.9th percentile."""
    samples = np.stack([values[name] for name in values.dtype.names], axis=-1).astype(np.float64)
    low = min(0.0, float(np.nanmin(samples)))
    high = _limits(samples)[1] or float(np.nanmax(samples))
    return np.clip((samples - low) / (high - low or 1), 0, 1)


def _limits(values: np.ndarray) -> tuple[float | None, float | None]:
    """Colour limits that ignore the 0.1 % extremes (one hot pixel does not blacken the picture)."""
    finite = values[np.isfinite(values)]
    if finite.size < 100:
        return None, None
    low, high = np.percentile(finite, [0.1, 99.9])
    return (float(low), float(high)) if high > low else (None, None)


def _image(values: np.ndarray, y: Dimension, x: Dimension, title: str, colour_label: str, equal: bool) -> Panel:
    """An image panel; `equal` gives square pixels (both axes are the same kind of position)."""

    def draw(axes: Any) -> None:
        stride = max(1, math.ceil(math.sqrt(values.size / MAX_IMAGE_VALUES)))
        shown = values[::stride, ::stride]
        same_units = x.units == y.units
        (x_values, x_label), (y_values, y_label) = axis_of(x, [y] if same_units else []), axis_of(y, [x] if same_units else [])
        uniform = x.is_uniform and y.is_uniform
        if uniform:
            half_x = (x_values[1] - x_values[0]) / 2 if x.size > 1 else 0.5
            half_y = (y_values[1] - y_values[0]) / 2 if y.size > 1 else 0.5
            extent = [x_values[0] - half_x, x_values[-1] + half_x, y_values[-1] + half_y, y_values[0] - half_y]
        else:
            extent, x_label, y_label = None, f"{x.name} index", f"{y.name} index"
        aspect = "equal" if equal and square_pixels(x, y) else "auto"
        if shown.dtype.fields:
            axes.imshow(_true_colour(shown), extent=extent, aspect=aspect, interpolation="nearest")
        else:
            factor, units = natural_units(shown, _units_of(colour_label))
            low, high = _limits(shown * factor)
            picture = axes.imshow(shown * factor, extent=extent, aspect=aspect, interpolation="nearest", vmin=low, vmax=high)
            bar = axes.figure.colorbar(picture, ax=axes, shrink=0.85)
            bar.set_label(labelled(_name_of(colour_label), units), fontsize=8)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        _finish(axes, title)

    return draw


def square_pixels(x: Dimension, y: Dimension) -> bool:
    """Whether an image of `y` × `x` is drawn at its physical aspect ratio: both in the same units
    (an 11 × 113 µm scan is a strip, not a square), and not longer than `MAX_ASPECT` to one."""
    if x.units != y.units:
        return False
    width, height = (float(np.ptp(dim.values)) + (abs(dim.scale) if dim.is_uniform and dim.size > 1 else 0.0) for dim in (x, y))
    width, height = width or x.size, height or y.size
    return max(width, height) <= MAX_ASPECT * min(width, height)


def line_scale(values: np.ndarray) -> dict[str, Any]:
    """The keywords of matplotlib's ``set_yscale`` for a line: linear, or logarithmic for a line
    dominated by one peak (EDS's zero-loss peak, a Rayleigh line), so that the other peaks show:
    "log" for positive values, else "symlog", linear within the 95th percentile of magnitudes."""
    finite = values[np.isfinite(values)] if np.size(values) else np.empty(0)
    if finite.size < 20:
        return {"value": "linear"}
    typical = float(np.percentile(np.abs(finite), 95))
    if not typical or np.abs(finite).max() <= PEAK_DOMINANCE * typical:
        return {"value": "linear"}
    return {"value": "log"} if np.all(finite > 0) else {"value": "symlog", "linthresh": typical}


def _finish(axes: Any, title: str) -> None:
    """Title, and few enough ticks that long tick labels do not run into each other."""
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(4))
    axes.set_title(title, fontsize=9)


def _line(values: np.ndarray, dim: Dimension, title: str, value_label: str) -> Panel:
    def draw(axes: Any) -> None:
        x_values, x_label = axis_of(dim)
        factor, units = natural_units(values, _units_of(value_label))
        axes.plot(x_values, values * factor, lw=1)
        scale = line_scale(values * factor)
        axes.set_yscale(**scale)
        if scale["value"] == "linear":
            axes.ticklabel_format(useOffset=False, axis="both")
        axes.set_xlabel(x_label)
        axes.set_ylabel(labelled(_name_of(value_label), units))
        _finish(axes, title)

    return draw


def _units_of(label: str) -> str:
    return label[label.rfind("(") + 1 : -1] if label.endswith(")") else ""


def _name_of(label: str) -> str:
    return label[: label.rfind(" (")] if label.endswith(")") else label


def _sides(values: np.ndarray, quantity: str, units: str, draw: Callable[[np.ndarray, str, str], Panel]) -> list[Panel]:
    """One panel of real values; two (amplitude, phase) of complex ones."""
    if values.dtype.kind != "c":
        return [draw(values, labelled(quantity, units), quantity)]
    return [
        draw(np.abs(values), labelled(f"|{quantity}|", units), f"amplitude of {quantity}"),
        draw(np.angle(values), labelled(f"phase of {quantity}", "rad"), f"phase of {quantity}"),
    ]


def _position_by_spectrum(dataset: Dataset, position: Dimension, spectral: Dimension) -> np.ndarray:
    """The plane (position dim × first spectral dim) at index 0 of the faster spectral dims, read by rows."""
    faster = math.prod(dim.size for dim in dataset.spec.dims[dataset.spec.dims.index(spectral) + 1 :])
    plane = np.empty((dataset.shape[0], spectral.size), dtype=np.complex128 if dataset.dtype.kind == "c" else np.float64)
    for start, raw in _rows(dataset, slice(None, spectral.size * faster, faster)):
        plane[start : start + len(raw)] = numeric(raw)
    return plane


def _non_grid(dataset: Dataset, quantity: str, units: str) -> list[Panel]:
    position_values, _ = means(dataset)
    magnitude = np.abs(numeric(position_values))
    table, labels = dataset.pos.values, dataset.pos.labels
    (x_factor, x_units), (y_factor, y_units) = (natural_units(table[:, column], dataset.pos.units[column]) for column in (-1, -2 % table.shape[1]))
    factor, shown_units = natural_units(magnitude, units)

    def draw(axes: Any) -> None:
        if table.shape[1] >= 2:
            picture = axes.scatter(table[:, -1] * x_factor, table[:, -2] * y_factor, c=magnitude * factor, s=12)
            axes.figure.colorbar(picture, ax=axes, shrink=0.85).set_label(labelled(f"|{quantity}|", shown_units), fontsize=8)
            axes.set_ylabel(labelled(labels[-2], y_units))
        else:
            axes.plot(table[:, 0] * x_factor, magnitude * factor, ".")
            axes.set_ylabel(labelled(f"|{quantity}|", shown_units))
        axes.set_xlabel(labelled(labels[-1], x_units))
        axes.set_title(f"{labelled(quantity, units)}, non-grid positions", fontsize=9)

    return [draw]


def panels(dataset: Dataset) -> list[Panel]:
    """The panels that show one dataset (see the module text)."""
    quantity, units = dataset.quantity, dataset.units
    if dataset.dtype.fields and not rgb_fields(dataset.dtype):
        quantity = f"{quantity}.{dataset.dtype.names[0]}"
    if not dataset.is_grid:
        return _non_grid(dataset, quantity, units)
    pos = [dim for dim in dataset.pos.dims if dim.size > 1]
    spec = [dim for dim in dataset.spec.dims if dim.size > 1]
    position_values, spectral_mean = means(dataset)
    position_map = position_values.reshape(dataset.pos.shape)
    spectrum = spectral_mean.reshape(dataset.spec.shape)
    magnitude = labelled(f"mean |{quantity}|", units)

    def image(values: np.ndarray, y: Dimension, x: Dimension, equal: bool) -> Callable[[np.ndarray, str, str], Panel]:
        return lambda data, label, title: _image(data, y, x, title, label, equal)

    def line(dim: Dimension) -> Callable[[np.ndarray, str, str], Panel]:
        return lambda data, label, title: _line(data, dim, title, label)

    if not spec and len(pos) >= 2:
        plane = _first_index(position_map, dataset.pos.dims, pos[-2:])
        if plane.dtype.fields:
            return [_image(plane, pos[-2], pos[-1], quantity, "", equal=True)]
        return _sides(plane, quantity, units, image(plane, pos[-2], pos[-1], True))
    if not spec and len(pos) == 1:
        return _sides(_first_index(position_map, dataset.pos.dims, pos), quantity, units, line(pos[0]))
    if not spec:
        value = position_values[0]
        return [lambda axes: (axes.text(0.5, 0.5, f"{labelled(quantity, units)} = {value}", ha="center", va="center", transform=axes.transAxes), axes.set_axis_off())]
    mean = f"mean {quantity}" if dataset.shape[0] > 1 else quantity
    if len(spec) == 1:
        spectral_panels = _sides(_first_index(spectrum, dataset.spec.dims, spec), mean, units, line(spec[0]))
    else:
        spectral_panels = _sides(_first_index(spectrum, dataset.spec.dims, spec[-2:]), mean, units, image(spectrum, spec[-2], spec[-1], True))
    if not pos:
        return spectral_panels
    if len(pos) == 1 and len(spec) == 1:
        plane = _position_by_spectrum(dataset, pos[0], spec[0]).reshape(pos[0].size, spec[0].size)
        return _sides(plane, quantity, units, image(plane, pos[0], spec[0], False)) + spectral_panels
    if len(pos) == 1:
        return [_line(_first_index(position_map, dataset.pos.dims, pos), pos[0], f"mean |{quantity}| over the spectrum", magnitude)] + spectral_panels
    plane = _first_index(position_map, dataset.pos.dims, pos[-2:])
    return [_image(plane, pos[-2], pos[-1], f"mean |{quantity}| over {', '.join(dim.name for dim in spec)}", magnitude, equal=True)] + spectral_panels


def figure(datasets: Sequence[Dataset]) -> Any:
    """A matplotlib figure with a row of panels per dataset (at most `MAX_DATASETS` datasets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(dataset, panels(dataset)) for dataset in list(datasets)[:MAX_DATASETS]]
    columns = max(len(row) for _dataset, row in rows)
    titled = len(rows) > 1 and len({dataset.name for dataset, _row in rows}) == len(rows)
    with plt.rc_context({"text.parse_math": False}):  # names and units are text: "$\\sqrt E$" is not a formula to typeset
        fig = plt.figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * len(rows)), layout="constrained")
        subfigures = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
        for subfigure, (dataset, row) in zip(subfigures, rows):
            for draw, axes in zip(row, subfigure.subplots(1, len(row), squeeze=False)[0]):
                draw(axes)
            if titled:
                subfigure.suptitle(dataset.name, fontsize=10, fontweight="bold")
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
