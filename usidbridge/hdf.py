"""Reading HDF5 files that may be damaged or hostile, for every HDF5-based format and the rules.

One `UnreadableFileError` naming the file for what libhdf5 cannot read (`damaged_hdf5`, `open_hdf5`);
data the file does not back, or keeps outside its folder, refused before it is allocated
(`unbacked_size`, `require_backed`); references that may dangle (`dereference`); dimension scales
read without libhdf5's API; groups walked without following external links or cycles (`subgroups`,
`link_cycle`, `touch_structure`); each file opened once while formats sniff it (`sniffing`); and
metadata trees stored as groups and attributes (`write_tree`, `read_tree`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .attributes import attribute, read_attrs, string_attr, string_list_attr, to_attribute
from .errors import IS_A_FOLDER, UnreadableFileError, UnsupportedFeatureError
from .isolation import heartbeat

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
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
    if dataset.external or dataset.is_virtual or dataset.shape is None:
        return None  # stored beside the file, in the folder: its size is not the HDF5 file's; or no dataspace (h5py.Empty): no data
    declared = math.prod(dataset.shape) * dataset.dtype.itemsize
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


MAX_NESTING = 64  # groups inside groups; HyperSpy and RosettaSciIO recurse about 10 Python frames per level


def refuse_for_whole_readers(path: str | os.PathLike[str]) -> None:
    """Refuse an HDF5 file before a library that reads its datasets whole and walks its groups by
    recursion (RosettaSciIO, HyperSpy) opens it: a dataset that declares far more data than the file
    stores for it (`unbacked_size`: it would be allocated), a link cycle, groups nested more than
    `MAX_NESTING` deep (`too_deep`), or an external link (h5py follows it: to the file itself it is
    a cycle, and elsewhere it leaves the file, which usidbridge does not follow).

    The recursion would run out of Python's stack, and a RecursionError raised while h5py holds its
    global lock can leave the lock held by this thread: every later h5py call from another thread
    (dask computing lazy data) then waits for ever.
    """
    with damaged_hdf5(path), h5py.File(path, "r") as file:
        unbacked = file.visititems(lambda _name, obj: unbacked_size(obj) if isinstance(obj, h5py.Dataset) else None)
        cycle = link_cycle(file)
        deep = None if cycle else too_deep(file)
        external = file.visititems_links(lambda name, link: f"/{name} (to {link.filename}::{link.path})" if isinstance(link, h5py.ExternalLink) else None)
    if unbacked:
        raise UnreadableFileError(unbacked, path)
    if external:
        raise UnreadableFileError(f"the HDF5 link {external} is an external link; usidbridge does not follow links out of the file, and the file's reader would", path)
    if cycle:
        raise UnreadableFileError(f"the HDF5 link {cycle} points back to a group above it (a link cycle); the file's reader would follow it for ever", path)
    if deep:
        raise UnreadableFileError(f"the HDF5 group {deep} is nested more than {MAX_NESTING} groups deep; the file's reader would run out of stack", path)


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


OBJECT_TYPES = {h5py.Dataset: h5py.h5o.TYPE_DATASET, h5py.Group: h5py.h5o.TYPE_GROUP}


def marked(
    group: h5py.Group,
    kind: type[h5py.Dataset] | type[h5py.Group],
    marks: Sequence[str],
    *,
    every: bool = False,
    where: Callable[[Any], bool] | None = None,
    first: bool = False,
) -> list[Any]:
    """The objects of `kind` below `group` that carry any of the attributes `marks` (all of them
    with `every`) and pass `where`, in libhdf5's walk order: each object once, soft and external
    links not followed, as h5py's `visititems`. With `first`, the walk ends at the first found.

    An object whose attributes cannot be read comes as its path instead, and a walk that cannot go
    on ends with `group`'s path (a damaged file). libhdf5 gives each object's type and attribute
    count as it walks (H5Ovisit), so only the objects that can match are opened: the Main-dataset
    search of a USID file takes a third of the time of `visititems`, which opens every object.
    """
    keys, wanted, found = [mark.encode() for mark in marks], OBJECT_TYPES[kind], []
    test = all if every else any

    def visit(name: bytes, info: Any) -> bool | None:
        if info.type != wanted or not info.num_attrs:
            return None
        try:
            if not test(h5py.h5a.exists(group.id, key, obj_name=name) for key in keys):
                return None
            item = group[name]
            if where is not None and not where(item):
                return None
            found.append(item)
        except DAMAGED_HDF5:
            found.append(f"{path_of(group).rstrip('/')}/{name.decode('utf-8', errors='replace')}")
        return True if first else None

    try:
        h5py.h5o.visit(group.id, visit, info=True)
    except DAMAGED_HDF5:
        found.append(path_of(group))
    return found


def holds_marked(group: h5py.Group, kind: type[h5py.Dataset] | type[h5py.Group], marks: Sequence[str], **options: Any) -> bool:
    """Whether `marked` finds one such object below `group`, a readable one: what an HDF5-based format's sniff asks."""
    return any(isinstance(item, kind) for item in marked(group, kind, marks, first=True, **options))


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


def too_deep(file: h5py.File, limit: int = MAX_NESTING) -> str | None:
    """The path of a group more than `limit` groups below the root by some chain of hard and soft
    links, or None. Walked iteratively: a group is walked again only when reached deeper than
    before, so a file whose groups are shared by many paths costs at most `limit` walks of each."""
    deepest: dict[Any, int] = {}
    stack: list[tuple[h5py.Group, str, int]] = [(file, "", 0)]
    while stack:
        group, path, depth = stack.pop()
        if depth > limit:
            return path
        if deepest.get(group.id, -1) >= depth:
            continue
        deepest[group.id] = depth
        stack.extend((item, f"{path}/{name}", depth + 1) for name, item in subgroups(group))
    return None


def has_hdf5_signature(head: bytes) -> bool:
    """True when `head` starts with the HDF5 signature (offset 0, or 512, 1024, ... after a user block)."""
    return any(head[offset : offset + 8] == HDF5_SIGNATURE for offset in (0, 512, 1024, 2048))


_sniffing: ContextVar[dict[str, h5py.File] | None] = ContextVar("usidbridge_sniffing", default=None)


@contextlib.contextmanager
def sniffing() -> Iterator[None]:
    """Within the block, `sniffed` opens each HDF5 file once, however many formats look into it
    (format detection), and `open_hdf5` takes that open file over for the reader. Blocks nest: the
    outermost one closes what was opened and not taken."""
    if _sniffing.get() is not None:
        yield
        return
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
    """Open an HDF5 file read-only, turning h5py's errors into one line that says what the file is.

    Within `sniffing`, the file a sniff opened is taken over (the caller closes it): opening and
    closing a file costs libhdf5 0.1-0.3 ms, what a small read's whole metadata costs.
    """
    opened = _sniffing.get()
    if opened is not None and os.fspath(path) in opened:
        return opened.pop(os.fspath(path))
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
