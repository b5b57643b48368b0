"""Small h5py helpers shared by the h5USID and NeXus converters and the rules.

String attributes (HDF5 stores them as bytes or as variable-length strings), references that may
dangle, metadata trees as groups and attributes, block-wise copies, new files closed safely when a
write fails (`new_hdf5`), and, for every writer, atomic output files and one `WriteError` for a
write the system refuses (`failed_write`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import progress
from .codec import decode_value, encode_value, is_encoded
from .errors import IS_A_FOLDER, OutputExistsError, UnreadableFileError, UnsupportedFeatureError, UsidBridgeError, WriteError
from .isolation import heartbeat
from .lazy import c_ordered, read_ahead, reads_hdf5

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
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

# What h5py raises where libhdf5 cannot read an object of a damaged file: OSError and RuntimeError
# (I/O and structure), KeyError (a link whose target is gone), ValueError (a bad value; text that is
# not UTF-8) and TypeError (a datatype numpy has no form for).
DAMAGED_HDF5 = (OSError, RuntimeError, KeyError, ValueError, TypeError)
# What h5py's datatype layer says of a type numpy has no form for (a float of odd precision, a
# string of an encoding HDF5 does not define, a bitfield or opaque type it cannot map).
UNKNOWN_DATATYPE = re.compile(r"Insufficient precision|Unknown string encoding|No NumPy equivalent")


@contextlib.contextmanager
def damaged_hdf5(path: str | os.PathLike[str], kind: str = "HDF5") -> Iterator[None]:
    """Turn what the HDF5 (or netCDF) library says about a damaged file into one `UnreadableFileError` naming it.

    h5py and netCDF4 raise OSError or RuntimeError for structures they cannot read, KeyError
    ("Unable to open object ...") for a link whose target is gone, and ValueError or TypeError from
    h5py's datatype layer for a datatype numpy has no form for; other KeyErrors, ValueErrors and
    TypeErrors are bugs and pass.
    """
    try:
        yield
    except RecursionError:
        raise
    except KeyError as error:
        if "Unable to" not in str(error):
            raise
        raise UnreadableFileError(f"damaged {kind} file: an object cannot be opened ({error.args[0] if error.args else error})", path) from None
    except (OSError, RuntimeError) as error:
        raise UnreadableFileError(f"damaged {kind} file, the library cannot read it ({type(error).__name__}: {error})", path) from None
    except UnicodeError as error:
        raise UnreadableFileError(f"damaged {kind} file: a name or text in it is not UTF-8 ({error})", path) from None
    except (ValueError, TypeError) as error:
        if not UNKNOWN_DATATYPE.search(str(error)):
            raise
        raise UnreadableFileError(f"damaged {kind} file: a datatype in it is no type numpy has ({error})", path) from None


MAX_UNBACKED_BYTES = 2**30
MAX_COMPRESSION_RATIO = 1000


def foreign_storage(dataset: h5py.Dataset) -> str | None:
    """Why `dataset` must not be read: its raw data lives in files outside the HDF5 file's folder
    (HDF5 external storage or virtual-dataset sources), which a hostile file could point anywhere."""
    sources = [name for name, *_ in (dataset.external or [])]
    if dataset.is_virtual:
        sources += [source.file_name for source in dataset.virtual_sources() if source.file_name != "."]
    folder = Path(dataset.file.filename).resolve().parent if sources else None
    for source in sources:
        name = source.decode() if isinstance(source, bytes) else str(source)
        if not (folder / name).resolve().is_relative_to(folder):
            return f"{dataset.name} keeps its data in {name!r}, outside the file's folder; usidbridge does not follow it"
    return None


def in_folder(dataset: h5py.Dataset) -> h5py.Dataset:
    """`dataset`, reopened so that relative external raw-data files and virtual sources resolve against
    the HDF5 file's own folder (libhdf5's default is the working directory), where `foreign_storage` checked them."""
    if not dataset.external and not dataset.is_virtual:
        return dataset
    file, name = dataset.file, dataset.name.encode()
    dataset.id._close()  # libhdf5 refuses a second open of the object with another prefix; callers use the reopened one
    access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    access.set_efile_prefix(b"${ORIGIN}")
    access.set_virtual_prefix(b"${ORIGIN}")
    return h5py.Dataset(h5py.h5d.open(file.id, name, dapl=access))


def unbacked_size(dataset: h5py.Dataset) -> str | None:
    """Why `dataset` cannot be read: its data is stored outside the file's folder (`foreign_storage`),
    or it declares far more data than the file stores for it.

    A hostile or damaged shape (10^12 elements in an unallocated chunked dataset) would make a read
    allocate terabytes. Beyond 1 GiB, data may be at most 1000 times what the file stores (what
    gzip reaches on constant data); None when the dataset is plausible.
    """
    foreign = foreign_storage(dataset)
    if foreign:
        return foreign
    if dataset.external or dataset.is_virtual:
        return None  # stored beside the file, in the folder: its size is not the HDF5 file's
    declared = int(np.prod(dataset.shape, dtype=object)) * dataset.dtype.itemsize
    if declared <= MAX_UNBACKED_BYTES:
        return None
    stored = dataset.id.get_storage_size()
    if declared <= MAX_COMPRESSION_RATIO * stored:
        return None
    return f"{dataset.name} declares shape {dataset.shape} ({declared:.3g} bytes) but the file stores {stored} bytes for it"


def require_backed(dataset: h5py.Dataset, path: str | os.PathLike[str]) -> h5py.Dataset:
    """`dataset` ready to read (`in_folder`), after checking that its data is backed by the file (`unbacked_size`).

    Take it last: for data stored outside the file the handle is reopened, and the old one (its
    attributes) is closed.
    """
    problem = unbacked_size(dataset)
    if problem:
        raise UnreadableFileError(problem, path)
    return in_folder(dataset)


def path_of(obj: h5py.HLObject) -> str:
    """The object's HDF5 path as text: h5py gives bytes for a name that is not UTF-8 (a damaged file)."""
    name = obj.name or ""
    return name.decode("utf-8", errors="replace") if isinstance(name, bytes) else name


def refuse_unbacked(path: str | os.PathLike[str]) -> None:
    """Refuse an HDF5 file with a dataset that declares far more data than the file stores for it
    (`unbacked_size`), before a library that reads datasets whole (RosettaSciIO, HyperSpy) allocates it."""
    with damaged_hdf5(path), h5py.File(path, "r") as file:
        problem = file.visititems(lambda _name, obj: unbacked_size(obj) if isinstance(obj, h5py.Dataset) else None)
    if problem:
        raise UnreadableFileError(problem, path)


def read_whole(dataset: h5py.Dataset, path: str | os.PathLike[str]) -> np.ndarray:
    """A (small) dataset read into memory, after checking that its declared size is backed by the file."""
    return require_backed(dataset, path)[()]


def is_dimension_scale(obj: h5py.Dataset) -> bool:
    return string_attr(obj, "CLASS") == "DIMENSION_SCALE"


def attached_scales(dataset: h5py.Dataset) -> tuple[list[list[h5py.Dataset]], list[str], str | None]:
    """The dimension scales attached to each axis, the axis labels, and what is wrong with the references, if anything.

    Read from ``DIMENSION_LIST`` and ``DIMENSION_LABELS`` directly: libhdf5's dimension-scale API
    (and netCDF-C, which uses it) crashes on references that point at the wrong objects; `dereference` does not.
    """
    count = dataset.ndim
    scales: list[list[h5py.Dataset]] = [[] for _ in range(count)]
    problem = None
    listed = dataset.attrs.get("DIMENSION_LIST") if "DIMENSION_LIST" in dataset.attrs else None
    if listed is not None and not (isinstance(listed, np.ndarray) and listed.dtype.kind == "O" and listed.size == count):
        problem = f"{dataset.name}: DIMENSION_LIST is not one list of references per axis"
    elif listed is not None:
        for axis, references in enumerate(listed.reshape(-1)):
            for reference in np.atleast_1d(references).reshape(-1):
                target = dereference(dataset.file, reference)
                if isinstance(target, h5py.Dataset) and is_dimension_scale(target):
                    scales[axis].append(target)
                else:
                    problem = f"{dataset.name}: the dimension scale of axis {axis} is {getattr(target, 'name', None) or 'a dangling reference'}, not a dimension scale"
    labels = string_list_attr(dataset, "DIMENSION_LABELS") or []
    return scales, (labels if len(labels) == count else [""] * count), problem


def subgroups(group: h5py.Group) -> list[tuple[str, h5py.Group]]:
    """The groups linked from `group` by hard and soft links, with their link names, in the file's order.

    External links are not followed: they may leave the file's folder, or point at the file itself.
    """
    found = []
    for name in group:
        if isinstance(group.get(name, getlink=True), h5py.ExternalLink):
            continue
        item = group.get(name)
        if isinstance(item, h5py.Group):
            found.append((name, item))
    return found


def touch_structure(path: str | os.PathLike[str]) -> int:
    """Read every object header, link and attribute of an HDF5 file, as the readers will; returns
    how many objects it touched, with a heartbeat to the parent every hundred.

    Meant for a child process (`usidbridge.isolation.probed`): a damaged global heap or B-tree can
    make libhdf5 loop or crash on a single attribute read, which no Python code can stop. Errors
    Python sees are left for the reader to report; external links are not followed.
    """
    count = 0
    try:
        with h5py.File(path, "r") as file:
            seen, stack = {file.id}, [file]
            while stack:
                item = stack.pop()
                for name in item.attrs:
                    attribute(item, name)
                count += 1
                if count % 100 == 0:
                    heartbeat()
                if isinstance(item, h5py.Dataset):
                    item.shape, item.dtype, item.chunks, item.compression  # noqa: B018 - their headers, read by libhdf5
                    continue
                for name in item:
                    if isinstance(item.get(name, getlink=True), h5py.ExternalLink):
                        continue
                    child = item.get(name)
                    if isinstance(child, (h5py.Group, h5py.Dataset)) and child.id not in seen:
                        seen.add(child.id)
                        stack.append(child)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeError):
        pass  # a damage libhdf5 reports: the reader says what it means
    return count


def link_cycle(file: h5py.File) -> str | None:
    """The path of a group that links back to one of its own ancestors (soft or hard link), or None.

    Walked iteratively, each group expanded once; external links are not followed. Some libraries
    (netCDF-C) loop or crash on such cycles, so readers refuse them first.
    """
    expanded = set()
    stack: list[tuple[h5py.Group, str, frozenset]] = [(file, "", frozenset({file.id}))]
    while stack:
        group, path, ancestors = stack.pop()
        if group.id in expanded:
            continue
        expanded.add(group.id)
        for name, item in subgroups(group):
            if item.id in ancestors:
                return f"{path}/{name}"
            stack.append((item, f"{path}/{name}", ancestors | {item.id}))
    return None


def has_hdf5_signature(head: bytes) -> bool:
    """True when `head` starts with the HDF5 signature (offset 0, or 512, 1024, ... after a user block)."""
    return any(head[offset : offset + 8] == HDF5_SIGNATURE for offset in (0, 512, 1024, 2048))


_sniffing: ContextVar[dict[str, h5py.File] | None] = ContextVar("usidbridge_sniffing", default=None)


@contextlib.contextmanager
def sniffing() -> Iterator[None]:
    """Within the block, `sniffed` opens each HDF5 file once, however many formats look into it (format detection)."""
    opened: dict[str, h5py.File] = {}
    token = _sniffing.set(opened)
    try:
        yield
    finally:
        _sniffing.reset(token)
        for file in opened.values():
            file.close()


@contextlib.contextmanager
def sniffed(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """The HDF5 file at `path`, read-only, for a format's sniff: shared while `sniffing`, else opened for the block."""
    opened = _sniffing.get()
    if opened is None:
        with h5py.File(path, "r") as file:
            yield file
        return
    key = os.fspath(path)
    if key not in opened:
        opened[key] = h5py.File(path, "r")
    yield opened[key]


def open_hdf5(path: str | os.PathLike[str]) -> h5py.File:
    """Open an HDF5 file read-only, turning h5py's errors into one line that says what the file is."""
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(IS_A_FOLDER, path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise UnreadableFileError(error.strerror or str(error), path) from None
    if size == 0:
        raise UnreadableFileError("the file is empty", path)
    try:
        return h5py.File(path, "r")
    except OSError as error:
        with open(path, "rb") as handle:
            head = handle.read(2056)
        if not has_hdf5_signature(head):
            raise UnreadableFileError("not an HDF5 file (no HDF5 signature at the start)", path) from None
        truncated = re.search(r"eof = (\d+).*stored_eof = (\d+)", str(error))
        if truncated:
            present, expected = truncated.groups()
            raise UnreadableFileError(f"truncated HDF5 file: {present} of {expected} bytes present", path) from None
        raise UnreadableFileError(f"damaged HDF5 file, h5py cannot open it ({error})", path) from None


def to_python(value: Any) -> Any:
    """An attribute value as a plain value: str for strings, list of str, scalars, numeric arrays, None for empty."""
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return decode_value(value) if is_encoded(value) else value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SOU":
            return [to_python(item) for item in value.ravel().tolist()]
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def attribute(obj: h5py.HLObject, name: str) -> Any:
    """The attribute `name` of `obj`; None when it is missing or h5py cannot read it (a datatype numpy
    has no form for, a damaged attribute message: OSError, TypeError or ValueError)."""
    try:
        return obj.attrs.get(name)
    except (OSError, TypeError, ValueError):
        return None


def read_attrs(obj: h5py.HLObject, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """All readable attributes of `obj` as plain values, except references and the names in `skip`."""
    result = {}
    for name in obj.attrs:
        value = None if name in skip else attribute(obj, name)
        if value is None or isinstance(value, (h5py.Reference, h5py.RegionReference)):
            continue
        result[name] = to_python(value)
    return result


def string_attr(obj: h5py.HLObject, name: str) -> str | None:
    """A string attribute decoded to str; None when missing, unreadable or not a string."""
    value = to_python(attribute(obj, name))
    return value if isinstance(value, str) else None


def string_list_attr(obj: h5py.HLObject, name: str) -> list[str] | None:
    """A list-of-strings attribute (stored as bytes or str, array or scalar); None when missing, unreadable or not strings."""
    value = to_python(attribute(obj, name))
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _storable_text(text: str) -> bool:
    """True when HDF5 keeps the text as it is: UTF-8 without NUL, and not mistaken for an encoded value."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text and not is_encoded(text)


def to_attribute(value: Any, name: str) -> Any:
    """A plain value as something h5py stores faithfully.

    Numbers, text, lists of text and numeric arrays are stored natively. What an HDF5 attribute
    cannot hold (bytes, dicts, nested or mixed lists, None inside lists, text with NUL, integers
    beyond 64 bits) is stored encoded (`usidbridge.codec.encode_value`) and decoded by `to_python`.
    """
    if value is None:
        return h5py.Empty("f")
    if isinstance(value, str):
        return value if _storable_text(value) else encode_value(value)
    if isinstance(value, bool) or isinstance(value, (float, complex, np.generic)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else encode_value(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc" and value.size:
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, str) and _storable_text(item) for item in value):
        return np.array([item.encode("utf-8") for item in value])
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, (bool, int, float, complex, np.generic)) for item in value):
        array = np.asarray(value)
        if array.dtype.kind in "biufc" and array.ndim == 1:
            return array
    if isinstance(value, (list, tuple, dict, bytes, bytearray, np.ndarray)):
        return encode_value(value)
    raise UnsupportedFeatureError(f"metadata {name!r}: a {type(value).__name__} cannot be an HDF5 attribute")


TEXT = h5py.string_dtype()  # how h5py stores a Python str: a variable-length UTF-8 scalar


def write_attr(obj: h5py.HLObject, name: str, value: Any) -> None:
    """``obj.attrs[name] = value``, in half the time for text and plain numpy arrays (11 us, not 24):
    the same types and values as h5py, through its low-level calls. The book-keeping, quantity,
    units and labels attributes are most of the cost of writing a small h5USID file."""
    if isinstance(value, str):
        array = np.array(value, dtype=TEXT)
    elif isinstance(value, np.ndarray) and value.dtype.kind in "biufcS" and value.dtype.fields is None:
        array = value if value.flags.c_contiguous else value.copy()
    else:
        array = None
    if array is None or not name.isascii():
        obj.attrs[name] = value
        return
    key = name.encode()
    if h5py.h5a.exists(obj.id, key):
        h5py.h5a.delete(obj.id, key)
    space = h5py.h5s.create_simple(array.shape) if array.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
    attribute = h5py.h5a.create(obj.id, key, h5py.h5t.py_create(array.dtype, logical=True), space)
    try:
        attribute.write(array, mtype=h5py.h5t.py_create(array.dtype))
    except (ValueError, UnicodeError):  # an embedded NUL, a lone surrogate: refused, as h5py refuses them
        attribute.close()
        h5py.h5a.delete(obj.id, key)
        raise


def write_attrs(obj: h5py.HLObject, attributes: Mapping[str, Any]) -> None:
    """Write plain values as attributes; see `to_attribute`."""
    for name, value in attributes.items():
        write_attr(obj, name, to_attribute(value, name))


def string_list(values: list[str]) -> np.ndarray:
    """A list of strings as pyUSID stores labels and units: a fixed-length UTF-8 bytes array."""
    return np.array([value.encode("utf-8") for value in values])


def write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    """A nested dict as subgroups (dict values) and attributes (everything else).

    A section whose name cannot name an HDF5 group ('/' in it, "."), or which holds a key that cannot
    name an HDF5 attribute (empty), is stored as one encoded attribute instead, and reads back as the
    same dict.
    """
    for key, value in tree.items():
        if not key:
            raise UnsupportedFeatureError(f"metadata key {key!r} under {group.name!r}: HDF5 names cannot be empty; rename the key")
        if isinstance(value, Mapping) and "/" not in key and key != "." and all(value):
            write_tree(group.require_group(key), value)
        else:
            group.attrs[key] = to_attribute(dict(value) if isinstance(value, Mapping) else value, key)


def read_tree(group: h5py.Group) -> dict[str, Any]:
    """The inverse of `write_tree`: attributes and subgroups as a nested dict.

    Walked iteratively, each group once (tracked by object): a link cycle or a second link to a
    group is not followed again, and external links, which may leave the folder, not at all.
    """
    tree: dict[str, Any] = read_attrs(group)
    seen = {group.id}
    stack = [(group, tree)]
    while stack:
        current, node = stack.pop()
        for key, item in subgroups(current):
            if item.id not in seen:
                seen.add(item.id)
                node[key] = read_attrs(item)
                stack.append((item, node[key]))
    return tree


def dereference(file: h5py.File, reference: Any) -> h5py.HLObject | None:
    """The object a reference points to, or None when it is null, dangling or not a reference.

    HDF5 still opens an unlinked object by its address; such an object has no name, and counts as dangling.
    """
    if not isinstance(reference, h5py.Reference) or not reference:
        return None
    try:
        target = file[reference]
    except DAMAGED_HDF5:
        return None
    return target if target.name is not None else None


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
