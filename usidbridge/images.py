"""Image stacks ↔ `Dataset`: the one mapping shared by the image formats (TIFF, EDF and FabIO).

A stack is an array ``(frame axes..., Y, X)``. Reading, the pixels become the positions ``(Y, X)``
and the frame axes become spectroscopic dims (``frames="spectroscopic"``, the default: a spectrum
or series per pixel) or slow position dims (``frames="position"``: a sequence of images). Writing,
any grid dataset becomes a stack by moving its spectroscopic dims in front of its last two
position dims, so that both reading choices come back to the same stack. Only axes are moved:
numpy and memory-mapped data stay views, dask data stays lazy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .errors import UnsupportedFeatureError
from .model import Dataset, Dimension

FRAMES_AS = ("spectroscopic", "position")

RGB_FIELDS = ("red", "green", "blue")
RGBA_FIELDS = RGB_FIELDS + ("alpha",)


def pixel_dims(height: int, width: int, scale: tuple[float, float] = (1.0, 1.0), units: str = "", offset: tuple[float, float] = (0.0, 0.0)) -> list[Dimension]:
    """The Y and X dims of an image, uniform with the given calibration (pixel indices by default)."""
    return [
        Dimension.uniform("Y", units, height, offset=offset[0], scale=scale[0]),
        Dimension.uniform("X", units, width, offset=offset[1], scale=scale[1]),
    ]


def stack_to_dataset(stack: Any, frame_dims: Sequence[Dimension], y: Dimension, x: Dimension, frames: str = "spectroscopic", **attributes: Any) -> Dataset:
    """A Dataset from a stack ``(frame axes..., Y, X)``; see the module text for `frames`."""
    if frames not in FRAMES_AS:
        raise UnsupportedFeatureError(f"frames must be one of {FRAMES_AS}, got {frames!r}")
    frame_dims = list(frame_dims)
    if frames == "position" or not frame_dims:
        return Dataset.from_ndarray(stack, frame_dims + [y, x], [], **attributes)
    count = len(frame_dims)
    pixels_first = stack.transpose(count, count + 1, *range(count))
    return Dataset.from_ndarray(pixels_first, [y, x], frame_dims, **attributes)


def stack_order(dataset: Dataset) -> list[int]:
    """Axis order of the N-D form that makes a stack: leading position dims, spectroscopic dims, last two position dims."""
    positions, spectral = len(dataset.pos.dims), len(dataset.spec.dims)
    leading = list(range(max(0, positions - 2)))
    plane = list(range(max(0, positions - 2), positions))
    return leading + list(range(positions, positions + spectral)) + plane


def dataset_to_stack(dataset: Dataset) -> tuple[Any, list[Dimension]]:
    """The stack of a grid dataset and its dims in stack order (frame dims..., Y-like, X-like)."""
    if not dataset.is_grid:
        raise UnsupportedFeatureError(f"{dataset.name}: non-grid positions cannot become an image stack; h5usid and netcdf keep them")
    order = stack_order(dataset)
    nd = dataset.lazy_data.reshape(dataset.nd_shape)  # a view for numpy, lazy for h5py and dask: nothing is read here
    return nd.transpose(order), [dataset.dims[axis] for axis in order]


FRAME_BLOCK_BYTES = 256 * 2**20


def planes(stack: Any, block_bytes: int = FRAME_BLOCK_BYTES) -> Iterator[np.ndarray]:
    """The image planes of a stack ``(frame axes..., Y, X)``, in order, read a block of frames at a time.

    Memory stays at one block whatever the file size. Frames are a transpose of the file's layout
    when they are spectroscopic, so each block costs one pass over the source: blocks are large
    (256 MiB) to keep the passes few.
    """
    height, width = stack.shape[-2:]
    frames = stack.reshape((-1, height, width))
    plane_bytes = max(1, height * width * np.dtype(stack.dtype).itemsize)
    step = max(1, block_bytes // plane_bytes)
    for start in range(0, frames.shape[0], step):
        yield from np.asarray(frames[start : start + step])


def rgb_fields(dtype: np.dtype) -> tuple[str, ...] | None:
    """The colour fields when `dtype` is USID's compound colour type (red, green, blue[, alpha]), else None."""
    if dtype.names in (RGB_FIELDS, RGBA_FIELDS) and len({dtype.fields[name][0] for name in dtype.names}) == 1:
        return dtype.names
    return None


def samples_to_rgb(array: Any) -> Any:
    """``(..., 3 or 4)`` colour samples as a compound array ``(...)`` with fields red, green, blue[, alpha] (a view)."""
    fields = RGB_FIELDS if array.shape[-1] == 3 else RGBA_FIELDS
    compound = np.dtype([(name, array.dtype) for name in fields])
    return np.ascontiguousarray(array).view(compound)[..., 0]


def rgb_to_samples(array: Any) -> np.ndarray:
    """The inverse of `samples_to_rgb`: compound colour ``(...)`` as samples ``(..., 3 or 4)``."""
    array = np.ascontiguousarray(array)
    base = array.dtype.fields[array.dtype.names[0]][0]
    return array.view(base).reshape(*array.shape, len(array.dtype.names))
