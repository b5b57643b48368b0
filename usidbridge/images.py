"""Image stacks ↔ `Dataset`: the one mapping shared by the image formats (TIFF, EDF and FabIO).

A stack is an array ``(frame axes..., Y, X)``. Reading, the pixels become the positions ``(Y, X)``
and the frame axes become spectroscopic dims (``frames="spectroscopic"``, the default: a spectrum
or series per pixel) or slow position dims (``frames="position"``: a sequence of images). Writing,
any grid dataset becomes a stack by moving its spectroscopic dims in front of its last two
position dims, so that both reading choices come back to the same stack. Only axes are moved:
numpy and memory-mapped data stay views, dask data stays lazy.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import progress
from .errors import ModelError, UnsupportedFeatureError
from .lazy import RowReader, is_file_backed, read_ahead, transpose_into
from .model import Dataset, Dimension
from .output import COPY_BLOCK_BYTES

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


def _stack_view(stack: np.ndarray, dataset: Dataset) -> np.ndarray:
    """`stack` (frame axes..., image plane) seen as (leading positions, spectral points outside the
    image plane, spectral points inside it, plane pixels), without a copy.

    In these terms the 2-D data is (leading positions x plane pixels, spectral points): filling a
    stack is a transpose of blocks of rows, whatever the dims. Spectral points lie inside the image
    plane only when there is a single position dim (the plane is then spectrum x position).
    """
    order = stack_order(dataset)
    single_position = len(dataset.pos.dims) == 1
    plane = math.prod(dataset.dims[axis].size for axis in order[-1 if single_position else -2 :])
    inner = dataset.spec.dims[-1].size if single_position else 1
    view = stack.reshape(dataset.shape[0] // plane, dataset.shape[1] // inner, inner, plane)
    if not np.shares_memory(view, stack):
        raise ModelError(f"the stack of {dataset.name} cannot be seen as rows of positions without a copy")
    return view


def _exchange(rows: np.ndarray, frames: np.ndarray, into_frames: bool) -> None:
    """Copy between a block of rows (pixels, spectral points) and its part of a stack view (outer,
    inner, pixels), one tiled transpose per frame when spectral points lie inside the image plane."""
    outer, inner, _pixels = frames.shape
    pairs = [(rows, frames[:, 0])] if inner == 1 else [(rows[:, frame * inner : (frame + 1) * inner], frames[frame]) for frame in range(outer)]
    for row_part, frame_part in pairs:
        if into_frames:
            transpose_into(frame_part, row_part)
        else:
            transpose_into(row_part, frame_part)


class StackRows(RowReader):
    """The 2-D (positions, spectral) form of an image stack in memory or memory-mapped (the inverse of
    `fill_stack`): each block of rows is transposed out of the frames in cache-sized tiles.

    Reading a block costs one pass over its pixels in every frame, at memory speed; dask's gather of
    a transposed memory map, or numpy's transpose of a whole stack, are several times slower.
    """

    def __init__(self, stack: np.ndarray, dataset: Dataset) -> None:
        self.view = _stack_view(stack, dataset)
        self.shape, self.dtype = dataset.shape, np.dtype(stack.dtype)
        self.row_alignment = self.view.shape[3]

    def _rows(self, start: int, stop: int) -> np.ndarray:
        plane = self.view.shape[3]
        block = np.empty((stop - start, self.shape[1]), self.dtype)
        for lead in range(start // plane, -(-stop // plane)):
            first, last = max(start, lead * plane), min(stop, (lead + 1) * plane)
            pixels = slice(first - lead * plane, last - lead * plane)
            _exchange(block[first - start : last - start], self.view[lead, :, :, pixels], into_frames=False)
        return block


def read_by_rows(dataset: Dataset, stack: Any) -> Dataset:
    """`dataset`, read from `stack` (a memory-mapped file, laid out as `dataset_to_stack` gives it) by
    blocks of rows with tiled transposes, where its 2-D form is not a contiguous view of the stack
    (a strided view of pixels x frames would be gathered element by element wherever it is read).

    A stack in memory (an eager read) stays as it is: its 2-D form is then a strided view, read
    at the speed of the file with no transpose, and numpy follows the strides wherever it is used.
    """
    plain = isinstance(dataset.data, np.ndarray) and dataset.data.flags.c_contiguous and np.shares_memory(dataset.data, stack)
    if isinstance(stack, np.ndarray) and is_file_backed(stack) and dataset.is_grid and not plain:
        dataset.data = StackRows(stack, dataset)
    return dataset


def reserve_disk(stack: np.ndarray) -> None:
    """Give the memory-mapped file under `stack` its disk blocks before it is filled: on a full disk
    that is an OSError here (ENOSPC), where a write to a page of the sparse file would kill the
    process (SIGBUS). A file system that cannot reserve space leaves the file as it is."""
    base: Any = stack
    while base is not None and getattr(base, "filename", None) is None:
        base = getattr(base, "base", None)
    if base is None or not hasattr(os, "posix_fallocate"):
        return
    with open(base.filename, "r+b") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
        except OSError as error:
            if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                raise


def fill_stack(stack: np.ndarray, dataset: Dataset, block_bytes: int = COPY_BLOCK_BYTES) -> None:
    """Write a grid dataset into `stack`, a writeable array of its stack shape (a memory-mapped output file).

    One pass over the data in blocks of whole positions, each transposed into its place while the
    next is read (`read_ahead`): memory stays at two blocks whatever the file size, and each chunk
    of an h5USID file is read once. The file's disk space is reserved first (`reserve_disk`).
    """
    reserve_disk(stack)
    view = _stack_view(stack, dataset)
    leading, plane = view.shape[0], view.shape[3]
    itemsize = dataset.dtype.itemsize
    rows = max(1, block_bytes // max(1, dataset.shape[1] * itemsize))
    total = dataset.shape[0] * dataset.shape[1] * itemsize
    ranges = [(lead * plane + start, lead * plane + min(plane, start + rows)) for lead in range(leading) for start in range(0, plane, rows)]
    for first, last, block in read_ahead(lambda first, last: np.asarray(dataset.data[first:last]), ranges):
        lead = first // plane
        _exchange(block, view[lead, :, :, first - lead * plane : last - lead * plane], into_frames=True)
        progress.advance(last * dataset.shape[1] * itemsize, total)


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
