"""Data left in its file, read only as it is used: the hub's lazy readers.

`FileArray` turns a file library's failures into `UnreadableFileError`; `FlatRows` reads N-D data
in its 2-D (positions, spectral) form by blocks of rows; `NDRows` gives 2-D row data its N-D form
for xarray and dask; `as_dask` wraps any of them in dask where axes must move. `RowReader` is the
base of readers of rows from another layout (`FlatRows`, `OrderedRows`, `usidbridge.images.StackRows`).
Copies take their blocks through `read_ahead` (the next block read while this one is written) and
`c_ordered` (column-major blocks transposed in cache-sized tiles, `transpose_into`).
Contiguous HDF5 data (`file_bytes`) is read without libhdf5: large row ranges in one part per
core (`read_in_parts`), and dask's chunks for HyperSpy as views of a memory map (`mapped`).
"""

from __future__ import annotations

import contextvars
import math
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .errors import UnreadableFileError

LAZY_BLOCK_BYTES = 64 * 2**20


def is_file_backed(array: np.ndarray) -> bool:
    """True when the array's memory is a memory-mapped file (np.memmap or mmap), directly or through views."""
    base: Any = array
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


TILE_BYTES = 2**16  # a transposed tile this size stays in the CPU cache: 2-3x faster than numpy's whole-block transpose


def transpose_into(target: np.ndarray, block: np.ndarray) -> None:
    """``target[...] = block.T`` for 2-D arrays, in cache-sized tiles of rows of `block`."""
    rows = max(8, TILE_BYTES // max(1, block.shape[1] * block.dtype.itemsize))
    for start in range(0, block.shape[0], rows):
        target[:, start : start + rows] = block[start : start + rows].T


def c_ordered(block: Any) -> Any:
    """A 2-D numpy `block` in C order. A column-major one (rows of an image stack read eagerly, seen
    as pixels x frames) is copied in tiles: numpy's gather of it is 5x slower. Others are returned as they are."""
    if isinstance(block, np.ndarray) and block.ndim == 2 and not block.flags.c_contiguous and block.strides[0] < block.strides[1]:
        ordered = np.empty(block.shape, block.dtype)
        transpose_into(ordered, block.T)
        return ordered
    return block


def reads_hdf5(data: Any) -> bool:
    """True when reading `data` goes through libhdf5: an h5py dataset, bare or wrapped here (`.array`)."""
    import h5py

    while data is not None:
        if isinstance(data, h5py.Dataset):
            return True
        data = getattr(data, "array", None)
    return False


def file_bytes(data: Any) -> tuple[int, int] | None:
    """``(descriptor, offset)``: the descriptor libhdf5 reads an h5py dataset's file through, and
    where the dataset's bytes start in it, when they lie there as one run in numpy's layout and no
    handle in this process may be writing them: contiguous (no chunks, so no filters), not external
    or virtual, allocated, of an integer, float or complex type, in a file of libhdf5's default
    driver opened read-only everywhere, on a system with positioned reads. None otherwise.

    Such data can be read or mapped without libhdf5 (`read_in_parts`, `mapped`). The descriptor,
    not the file's name, which may be relative to a working directory the process has left.
    """
    import h5py

    if isinstance(data, FileArray):
        data = data.array
    if not hasattr(os, "preadv") or not isinstance(data, h5py.Dataset) or data.chunks is not None or data.external or data.is_virtual or data.size == 0:
        return None
    dtype, file = np.dtype(data.dtype), data.file
    stored = data.id.get_type()
    if dtype.kind not in "iufc" or stored.get_size() != dtype.itemsize or file.driver != "sec2":
        return None
    if dtype.kind == "c" and (stored.get_member_offset(0), stored.get_member_offset(1)) != (0, dtype.itemsize // 2):
        return None
    if file.id.get_intent() != h5py.h5f.ACC_RDONLY:  # a handle writing the file here: its latest data may be in libhdf5's buffers
        return None
    return file.id.get_vfd_handle(), data.id.get_offset()  # the offset counts the user block; libhdf5 refuses data past the file's end


def mapped(data: Any) -> np.ndarray | None:
    """The data of an h5py dataset (bare or in a `FileArray`) as a copy-on-write memory map of its
    file, when its bytes lie there as one run (`file_bytes`); None otherwise.

    Dask's chunks read it as views of the page cache, so computing them copies the data once (into
    the result) where h5py's reads would copy it twice. Writes to the map stay in memory.
    """
    location = file_bytes(data)
    if location is None:
        return None
    dataset = data.array if isinstance(data, FileArray) else data
    descriptor, offset = location
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    try:
        region = mmap.mmap(descriptor, offset - start + dataset.size * dataset.dtype.itemsize, offset=start, access=mmap.ACCESS_COPY)
    except OSError:  # a file system without memory maps: dask reads through h5py
        return None
    return np.ndarray(dataset.shape, dataset.dtype, buffer=region, offset=offset - start)


PART_MIN_BYTES = 8 * 2**20
MAX_PARTS = 4  # beyond this, copying out of the page cache is bound by memory bandwidth


def read_in_parts(descriptor: int, offset: int, target: np.ndarray, source: str | None = None) -> None:
    """Fill the C-contiguous `target` with the bytes of the open file `descriptor` from `offset`, in
    one part per core (up to `MAX_PARTS`, each at least 8 MiB) read at once (`read_pieces`).
    64 MiB from the page cache on 2 cores: 6.9 ms against h5py's 12.0 ms.

    Raises `UnreadableFileError` naming `source` when the file ends before the data does or cannot be read.
    """
    flat = target.reshape(-1).view(np.uint8)
    step = -(-flat.size // _parts(flat.size)) if flat.size else 1
    read_pieces(descriptor, [(offset + start, flat[start : start + step]) for start in range(0, flat.size, step)], source)


def _parts(size: int) -> int:
    """How many threads read `size` bytes at once: one per core, up to `MAX_PARTS`, each at least 8 MiB."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_PARTS, size // PART_MIN_BYTES))


def read_pieces(descriptor: int, pieces: Sequence[tuple[int, np.ndarray]], source: str | None = None) -> None:
    """Fill each C-contiguous buffer of ``(file offset, buffer)`` `pieces` from the open file
    `descriptor` with positioned reads, without the GIL: the pieces shared in runs among one
    thread per core (`_parts`), this one included. The frames of an image stack with headers
    between them (EDF) are read so, in parallel, as one contiguous block is by `read_in_parts`.

    Raises `UnreadableFileError` naming `source` when the file ends before a piece does or cannot be read.
    """
    views = [(offset, memoryview(buffer.reshape(-1).view(np.uint8))) for offset, buffer in pieces]
    runs = _parts(sum(view.nbytes for _offset, view in views))
    share = -(-len(views) // runs) if views else 1

    def read(run: Sequence[tuple[int, memoryview]]) -> None:
        for position, view in run:
            _fill(descriptor, position, view, source)

    if runs == 1:
        read(views)
        return
    with ThreadPoolExecutor(max_workers=runs - 1, thread_name_prefix="usidbridge-read") as pool:
        others = [pool.submit(read, views[first : first + share]) for first in range(share, len(views), share)]
        read(views[:share])  # the first run in this thread
        for done in others:
            done.result()


def _fill(descriptor: int, position: int, view: memoryview, source: str | None) -> None:
    """Fill `view` with the bytes of the open file `descriptor` from `position` (positioned reads, without the GIL)."""
    try:
        while view.nbytes:
            count = os.preadv(descriptor, [view], position)
            if not count:
                raise UnreadableFileError(f"the file ended {view.nbytes} bytes before the end of its data (was it cut while being read?)", source)
            view, position = view[count:], position + count
    except OSError as error:
        raise UnreadableFileError(f"cannot read the data: {error.strerror or error}", source) from None


def read_ahead(read: Callable[[int, int], np.ndarray], ranges: Sequence[tuple[int, int]], threaded: bool = True) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(start, stop, read(start, stop))`` for each range; when `threaded`, the next block is read in
    a worker thread while the caller writes this one, with two blocks in memory.

    Reading (a tiled transpose, a memory map, HDF5, which runs without the GIL) then overlaps
    writing on a second core: an image stack goes to h5USID 1.5x faster. Not for a copy from HDF5
    to HDF5, which h5py's lock serialises anyway. Errors of the read are raised in the caller, at
    the block they belong to.
    """
    if len(ranges) < 2 or not threaded:
        for start, stop in ranges:
            yield start, stop, read(start, stop)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="usidbridge-read") as pool:
        pending = pool.submit(contextvars.copy_context().run, read, *ranges[0])
        try:
            for index, (start, stop) in enumerate(ranges):
                block = pending.result()
                if index + 1 < len(ranges):
                    pending = pool.submit(contextvars.copy_context().run, read, *ranges[index + 1])
                yield start, stop, block
        finally:
            pending.cancel()


def as_dask(array: Any) -> Any:
    """A dask array over `array` (a memory map, an h5py dataset) that reads it in blocks of whole leading rows, never whole."""
    import dask.array

    dtype = np.dtype(array.dtype)
    row_bytes = max(1, math.prod(array.shape[1:]) * dtype.itemsize)
    chunks = (max(1, LAZY_BLOCK_BYTES // row_bytes), *array.shape[1:])
    sliced = array if isinstance(array, FileArray) else FileArray(array)
    return dask.array.from_array(sliced, chunks=chunks, name=False, meta=np.empty((0,) * len(array.shape), dtype))


def leading_rows(key: Any, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(start, stop)`` when `key` selects whole rows [start, stop) of the first axis of an array of
    `shape`, whose bytes are then one run in C order: the whole array, or a slice of step 1 followed
    by whole axes only. None for any other key."""

    def whole(part: Any) -> bool:
        return part is Ellipsis or (isinstance(part, slice) and part.start is None and part.stop is None and part.step in (None, 1))

    parts = key if isinstance(key, tuple) else (key,)
    if not shape or not all(whole(part) for part in parts[1:]):
        return None
    first = parts[0] if parts else Ellipsis
    if first is Ellipsis:
        return 0, shape[0]
    if not isinstance(first, slice) or first.step not in (None, 1) or not all(isinstance(bound, (int, np.integer, type(None))) for bound in (first.start, first.stop)):
        return None
    start, stop, _step = first.indices(shape[0])
    return start, max(start, stop)


class FileArray:
    """Data left in its file (an h5py dataset, a memory map), read only by slicing.

    A read that fails in the file's library (a corrupt chunk, a missing external file: h5py raises
    OSError or RuntimeError) is an `UnreadableFileError` naming the file, wherever it happens: when
    the data is materialised, streamed to a writer or computed by dask (which reads it block by
    block; given a numpy array, dask would copy it into its graph).
    """

    def __init__(self, array: Any, source: str | None = None) -> None:
        self.array, self.shape, self.dtype, self.ndim = array, tuple(array.shape), np.dtype(array.dtype), len(array.shape)
        self.source = source or getattr(getattr(array, "file", None), "filename", None)

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            rows = leading_rows(key, self.shape)
            row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
            if rows and (rows[1] - rows[0]) * row_bytes >= 2 * PART_MIN_BYTES and (location := file_bytes(self.array)) is not None:
                part = np.empty((rows[1] - rows[0], *self.shape[1:]), self.dtype)
                read_in_parts(location[0], location[1] + rows[0] * row_bytes, part, self.source)
                return part
            part = self.array[key]
            return np.array(part) if is_file_backed(part) else np.asarray(part)  # h5py returns a new array: no second copy
        except RecursionError:
            raise
        except (OSError, RuntimeError) as error:
            where = getattr(self.array, "name", None) or "the data"
            raise UnreadableFileError(f"cannot read {where} (damaged file?): {error}", self.source) from None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[()]
        return data if dtype is None else data.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    @property
    def size(self) -> int:
        return math.prod(self.shape)


BACKGROUND_MIN_BYTES = 2**20  # below this a thread's start costs more than the overlap saves
BACKGROUND_PIECE_BYTES = 2**20
BACKGROUND_HEAD_START = 8 * 2**20  # what one core copies out of the page cache in half the time a USID file's metadata takes (2-3 ms)


class BackgroundRead:
    """The whole of an h5py dataset read in another thread while this one does other work: an eager
    reader starts it, parses the file's metadata meanwhile (h5py, on the other core), then takes the data.

    The reading thread starts with the first half of the data and 8 MiB more (`BACKGROUND_HEAD_START`),
    in one positioned read, which runs without the GIL (this thread waits until it has begun); it
    then goes on by pieces of 1 MiB. When this thread asks for the `result`, it reads pieces from
    the end: the two meet wherever the other thread has got to. A piece taken after the first may
    wait for the GIL while this thread parses; the first is long enough that it seldom does. Up to
    16 MiB the other thread reads it all, while the metadata costs this one about as long; from
    64 MiB the two cores share the data about as `read_in_parts` would.

    Started only where the data lies in the file as one run (`file_bytes`: read with positioned reads,
    without libhdf5 and its lock, which the metadata needs) wholly within the file's size, and is
    at least `BACKGROUND_MIN_BYTES`; `result` is None otherwise (and for a `dataset` of None: a lazy
    read), and the caller reads as it would have. Use it as a context manager: leaving the block
    waits for the read and its thread, so that none outlives its file.
    """

    def __init__(self, dataset: Any, source: str | None = None) -> None:
        self._pending: Future | None = None
        location = file_bytes(dataset)
        nbytes = dataset.size * np.dtype(dataset.dtype).itemsize if location else 0
        if location is None or nbytes < BACKGROUND_MIN_BYTES or location[1] + nbytes > os.fstat(location[0]).st_size:
            return
        self._descriptor, self._source = location[0], source
        self._target = np.empty(dataset.shape, dataset.dtype)
        flat = memoryview(self._target.reshape(-1).view(np.uint8))
        first = min(nbytes, nbytes // 2 + BACKGROUND_HEAD_START)
        self._pieces = deque([(location[1], flat[:first])])  # taken from the front by the reading thread, from the back by this one; atomic under the GIL
        self._pieces.extend((location[1] + start, flat[start : start + BACKGROUND_PIECE_BYTES]) for start in range(first, nbytes, BACKGROUND_PIECE_BYTES))
        begun = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usidbridge-read")
        self._pending = self._pool.submit(self._read_from_front, begun)
        begun.wait()

    def _read_from_front(self, begun: threading.Event) -> None:
        position, view = self._pieces.popleft()
        begun.set()
        _fill(self._descriptor, position, view, self._source)
        self._read_taken(self._pieces.popleft)

    def _read_taken(self, take: Callable[[], tuple[int, memoryview]]) -> None:
        """Read the pieces `take` gives (from the front or the back) until none is left."""
        while True:
            try:
                position, view = take()
            except IndexError:
                return
            _fill(self._descriptor, position, view, self._source)

    def result(self) -> np.ndarray | None:
        """The data once read (raising what the read raised), or None when no read was started."""
        if self._pending is None:
            return None
        self._read_taken(self._pieces.pop)
        self._pending.result()
        return self._target

    def __enter__(self) -> BackgroundRead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pending is not None:
            self._pool.shutdown(wait=True)  # the thread ended too: a fork after the read (`isolation.can_fork`) stays safe


def _slabs(start: int, stop: int, shape: Sequence[int]) -> list[tuple]:
    """The flat C-order range [start, stop) over an array of `shape` as hyperslab indices (ints and
    slices), in order: at most two per axis, whatever the range."""
    if start >= stop:
        return []
    if len(shape) == 1:
        return [(slice(start, stop),)]
    inner = math.prod(shape[1:])
    first, last = start // inner, (stop - 1) // inner
    if first == last:
        return [(first, *piece) for piece in _slabs(start - first * inner, stop - first * inner, shape[1:])]
    pieces = []
    if start % inner:
        pieces += [(first, *piece) for piece in _slabs(start % inner, inner, shape[1:])]
        first += 1
    whole_end = stop // inner
    if whole_end > first:
        pieces.append((slice(first, whole_end), *[slice(None)] * (len(shape) - 1)))
    if stop % inner:
        pieces += [(whole_end, *piece) for piece in _slabs(0, stop % inner, shape[1:])]
    return pieces


class RowReader:
    """Base of 2-D (positions, spectral) data read by blocks of rows from a differently laid-out source.

    A subclass sets `shape`, `dtype` and `row_alignment` (rows read in one piece; `hdf.copy_rows`
    aligns its blocks to them) and reads rows [start, stop) in `_rows`; indexing, `len` and
    ``np.asarray`` work as for a numpy array of rows.
    """

    shape: tuple[int, int]
    dtype: np.dtype
    ndim = 2
    row_alignment = 1

    def _rows(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, columns = (tuple(key) + (slice(None), slice(None)))[:2] if isinstance(key, tuple) else (key, slice(None))
        if rows is Ellipsis:
            rows = slice(None)
        if isinstance(rows, (int, np.integer)):
            row = int(rows) + (self.shape[0] if rows < 0 else 0)
            if not 0 <= row < self.shape[0]:
                raise IndexError(f"row {rows} is out of range for {self.shape[0]} rows")
            return self._rows(row, row + 1)[0, columns]
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step == 1:
                return self._rows(start, max(start, stop))[:, columns]
        wanted = np.arange(self.shape[0])[rows]
        if not wanted.size:
            return np.empty((0, self.shape[1]), self.dtype)[:, columns]
        low = int(wanted.min())
        return self._rows(low, int(wanted.max()) + 1)[wanted - low][:, columns]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self._rows(0, self.shape[0])
        return data if dtype is None else data.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class OrderedRows(RowReader):
    """A column-major 2-D numpy array (an image stack read eagerly, seen as pixels x frames) read by
    blocks of rows in C order (`c_ordered`), for a library that would gather it element by element
    (netCDF-C writes such an array 12x slower than a C-ordered one)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape, self.dtype = array, array.shape, array.dtype

    def _rows(self, start: int, stop: int) -> np.ndarray:
        return c_ordered(self.array[start:stop])


class FlatRows(RowReader):
    """N-D data left in its file, seen in its 2-D form: the leading `row_axes` axes are the rows.

    A block of rows is read as at most two hyperslabs per row axis of the N-D array (a flat range
    of rows crosses the file's slabs), straight into the block: no dask, no second copy of the
    data, each byte read once.
    """

    def __init__(self, array: Any, row_axes: int) -> None:
        self.array = array if isinstance(array, FileArray) else FileArray(array)
        self.row_shape, column_shape = tuple(array.shape[:row_axes]), tuple(array.shape[row_axes:])
        self.shape = (math.prod(self.row_shape), math.prod(column_shape))
        self.dtype = np.dtype(array.dtype)
        self.row_alignment = math.prod(self.row_shape[1:])

    def _rows(self, start: int, stop: int) -> np.ndarray:
        if not self.row_shape:
            return self.array[()].reshape(self.shape)[start:stop]
        pieces = _slabs(start, stop, self.row_shape)
        if len(pieces) == 1:
            return self.array[pieces[0]].reshape(-1, self.shape[1])
        block = np.empty((stop - start, self.shape[1]), self.dtype)
        filled = 0
        for piece in pieces:
            part = self.array[piece].reshape(-1, self.shape[1])
            block[filled : filled + len(part)] = part
            filled += len(part)
        return block


class NDRows:
    """The N-D form of 2-D (positions, spectral) data read by rows: basic N-D indexing (ints and
    slices) reads only the rows of the slowest axis it touches, in one read, and reshapes them.

    The data stays where it is (h5py, `FileArray`, a `RowReader`, numpy); xarray's backend array and
    dask's chunks (one slab range of the slowest axis each) read through it.
    """

    def __init__(self, data: Any, shape: tuple[int, ...], position_shape: tuple[int, ...]) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, tuple(shape), np.dtype(data.dtype), len(shape)
        self.rows_per_step = math.prod(position_shape[1:])  # positions per step of the slowest position dim

    def __getitem__(self, key: Any) -> np.ndarray:
        key = tuple(key) if isinstance(key, tuple) else (key,)
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        steps = np.arange(self.shape[0])[key[0]]
        if np.size(steps) == 0:
            return np.empty((0, *self.shape[1:]), self.dtype)[(slice(0, 0), *key[1:])]
        low, high = int(np.min(steps)), int(np.max(steps)) + 1
        block = np.asarray(self.data[low * self.rows_per_step : high * self.rows_per_step]).reshape((high - low, *self.shape[1:]))
        first = steps - low if isinstance(key[0], slice) else int(steps) - low
        if isinstance(key[0], slice) and (key[0].step or 1) > 0:
            first = slice(int(steps[0]) - low, int(steps[-1]) - low + 1, key[0].step)
        return block[(first, *key[1:])]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[()]
        return data if dtype is None else data.astype(dtype)
