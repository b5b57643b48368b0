"""Writing output files: whole or not at all, in bounded memory.

For every writer, the output appears only when complete (`atomic_output`; partials of killed runs
are cleaned up, `remove_stale_partials`) and a write the system refuses is one `WriteError` naming
the file (`failed_write`). For HDF5 writers: new files closed safely when a write fails
(`new_hdf5`), the file format and compression they ask of libhdf5, chunks of whole rows
(`row_chunks`), and block-wise copies of data larger than memory (`copy_rows`, `copy_nd`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import progress
from .errors import IS_A_FOLDER, OutputExistsError, UnreadableFileError, UnsupportedFeatureError, UsidBridgeError, WriteError
from .lazy import c_ordered, read_ahead, reads_hdf5

COPY_BLOCK_BYTES = 64 * 2**20
FULL_DISK_BYTES = 2**20  # less free space than this after a failed write: the disk is full
CHUNK_TARGET_BYTES = 4 * 2**20
CHUNK_MAX_BYTES = 2**31
COMPRESSION = {"none": None, "gzip": "gzip", "lzf": "lzf"}
# The file format our writers ask of libhdf5: HDF5 1.8's object headers, where an attribute too large
# for a header message (64 KiB: a DM tag, an Igor wave note, a long parameter list) goes to dense
# attribute storage instead of stopping the write. Every HDF5 since 1.8 (2008), h5py and pyUSID read it.
LIBVER = ("v108", "latest")
COMPRESSION_HELP = "HDF5 compression of the data: gzip, lzf or none"


def compression_filter(compression: str | None) -> str | None:
    """The h5py filter of a `--compression` name (None and "none": no filter)."""
    if compression is None:
        return None
    if compression not in COMPRESSION:
        raise UnsupportedFeatureError(f"unknown compression {compression!r}; use {', '.join(COMPRESSION)}")
    return COMPRESSION[compression]


def row_chunks(shape: tuple[int, ...], itemsize: int, compression: str | None) -> tuple[int, ...] | None:
    """HDF5 chunks for data copied in blocks of whole rows (slabs of the first axis); None for contiguous storage.

    Uncompressed data is stored contiguously: each row (a position's whole spectrum) is contiguous
    anyway, as pyUSID stores it, and reads run at the disk's speed without a chunk cache. Compressed
    data needs chunks: whole rows, about `CHUNK_TARGET_BYTES` each. They exceed h5py's 1 MiB chunk
    cache on purpose: block reads cover whole chunks, which HDF5 then reads without the cache.
    """
    if compression_filter(compression) is None:
        return None
    row_items = max(1, int(np.prod(shape[1:], dtype=np.int64)))
    if row_items * itemsize > CHUNK_MAX_BYTES:
        return (1, max(1, CHUNK_MAX_BYTES // itemsize)) if len(shape) == 2 else True
    rows = max(1, min(shape[0], CHUNK_TARGET_BYTES // (row_items * itemsize)))
    return (rows, *shape[1:])


def _row_blocks(data: Any, ranges: list[tuple[int, int]]) -> Any:
    """``(start, stop, rows)`` of 2-D `data` for each row range, in C order (`c_ordered`), the next
    block read while this one is written unless both sides are HDF5 (`read_ahead`, `reads_hdf5`)."""
    return read_ahead(lambda first, last: c_ordered(np.asarray(data[first:last])), ranges, threaded=not reads_hdf5(data))


@contextlib.contextmanager
def new_hdf5(path: str | os.PathLike[str], **options: Any) -> Iterator[h5py.File]:
    """A new HDF5 file at `path` for the block to write, flushed at its end and then closed.

    If the block or the flush fails, the file is emptied before libhdf5 closes it: a close that
    cannot write what libhdf5 still holds (chunks, metadata, on a full disk) tears the file down
    under its open datasets, and freeing them later crashes the process (h5py issue 914). Emptied,
    the file has room for the close. The caller throws it away.
    """
    file = h5py.File(path, "w", libver=LIBVER, **options)
    try:
        yield file
        file.flush()
    except BaseException:
        os.truncate(path, 0)
        with contextlib.suppress(OSError, RuntimeError):  # the block's error is the one to report
            file.close()
        raise
    file.close()


@contextlib.contextmanager
def failed_write(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn what a writer meets when the system refuses its writes (a full disk, a file-size limit,
    no permission) into one `WriteError` naming the file and the reason: Python's OSError, or the
    RuntimeError of libhdf5 (through h5py, with the system's reason in its text) and netCDF-C
    ("NetCDF: HDF error", without one: the disk's free space then says whether it is full)."""
    try:
        yield
    except (RecursionError, NotImplementedError):
        raise
    except (OSError, RuntimeError) as error:
        told = re.search(r"error message = '([^']+)'", str(error))
        reason = told.group(1) if told else (error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0])
        if not told and not isinstance(error, OSError):  # the library did not say what the system said
            try:
                free = shutil.disk_usage(Path(path).parent).free
            except OSError:
                free = FULL_DISK_BYTES
            if free < FULL_DISK_BYTES:
                reason += f" (its disk has {free} bytes free)"
        raise WriteError(f"cannot write the file: {reason}", path) from None


def copy_rows(target: h5py.Dataset, data: Any, block_bytes: int = COPY_BLOCK_BYTES) -> None:
    """Copy 2-D `data` (numpy, h5py or dask) into `target` in blocks of whole rows: bounded memory."""
    rows = data.shape[0]
    row_bytes = max(1, int(np.prod(data.shape[1:])) * np.dtype(data.dtype).itemsize)
    step = max(1, block_bytes // row_bytes)
    alignment = getattr(data, "row_alignment", 1)  # rows the source reads in one piece (`model.FlatRows`)
    if step > alignment:
        step -= step % alignment
    for start, stop, block in _row_blocks(data, [(start, min(rows, start + step)) for start in range(0, rows, step)]):
        target[start:stop] = block
        del block  # before the next block is read: one block in memory when not reading ahead
        progress.advance(stop * row_bytes, rows * row_bytes)
    target.flush()  # a chunk that cannot be written fails here, not silently when the dataset is freed


def copy_nd(target: h5py.Dataset, data: Any, block_bytes: int = COPY_BLOCK_BYTES) -> None:
    """Copy 2-D `data` (positions, spectral) into the N-D `target` whose C-order flattening it is, in blocks.

    Blocks are whole slabs of the slowest axis, so memory stays bounded by the block size (or one slab).
    """
    if target.ndim <= 1 or target.shape[0] == 0:
        target[...] = np.asarray(data).reshape(target.shape)
        return
    slab = int(np.prod(target.shape[1:]))
    slab_rows = max(1, slab // max(1, data.shape[1]))
    step = max(1, block_bytes // max(1, slab * np.dtype(target.dtype).itemsize))
    slab_bytes = slab * np.dtype(target.dtype).itemsize
    slabs = [(start, min(target.shape[0], start + step)) for start in range(0, target.shape[0], step)]
    for (start, stop), (_first, _last, block) in zip(slabs, _row_blocks(data, [(start * slab_rows, stop * slab_rows) for start, stop in slabs])):
        target[start:stop] = block.reshape((stop - start, *target.shape[1:]))
        del block  # before the next block is read
        progress.advance(stop * slab_bytes, target.shape[0] * slab_bytes)
    target.flush()  # a chunk that cannot be written fails here, not silently when the dataset is freed


PARTIAL = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[^.]+\.partial$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike[str], target: str | None = None) -> list[Path]:
    """Remove the ``.TARGET.PID.XXXX.partial`` folders in `folder` whose writing process is gone (of `target` only, if given).

    A conversion killed outright (SIGKILL, power loss) cannot clean up after itself; the next run
    writing the same target, or ``usidbridge clean``, does. Partials of live processes are left alone.
    """
    removed = []
    prefix = f".{target}." if target is not None else "."
    with os.scandir(folder) as entries:  # a folder of thousands of outputs: only names that can be partials are looked at
        candidates = [entry for entry in entries if entry.name.startswith(prefix) and entry.name.endswith(".partial")]
    for entry in candidates:
        match = PARTIAL.match(entry.name)
        if not match or not entry.is_dir() or (target is not None and match["target"] != target):
            continue
        if not _process_alive(int(match["pid"])):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a path with the final file name inside a temporary folder beside `path`; move it into place on success.

    A failed conversion therefore leaves nothing behind, an existing file is replaced only when the
    new one is complete, and writers that record their own file name (SPEC ``#F``) see the real one.
    The folder is named ``.TARGET.PID.XXXX.partial``, so a later run can tell a partial whose process
    was killed from one still being written, and removes it (`remove_stale_partials`).
    """
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(f"{IS_A_FOLDER}; give the output a file name", path)
    if path.exists() and not overwrite:
        raise OutputExistsError("the output file exists; use --overwrite (overwrite=True) to replace it", path)
    if not path.parent.is_dir():
        raise UnreadableFileError("the output folder does not exist", path.parent)
    remove_stale_partials(path.parent, path.name)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent))
    except PermissionError:
        raise UnreadableFileError("no permission to write in the output folder", path) from None
    try:
        yield folder / path.name
        os.replace(folder / path.name, path)
    except UsidBridgeError as error:
        if error.path != str(folder / path.name):
            raise
        raise type(error)(error.message, path) from None  # the file the user named, not its temporary name
    finally:
        shutil.rmtree(folder, ignore_errors=True)
