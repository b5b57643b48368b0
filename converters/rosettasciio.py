"""Every format RosettaSciIO reads (Gatan DM, EMD, TIA, MSA, MRC, Bruker, Renishaw, JEOL, ...), read-only.

RosettaSciIO's readers return signal dicts without a HyperSpy session; the hub maps them
(`usidbridge.signals`: navigation → position dims, signal → spectroscopic dims, ``original_metadata``
→ metadata, non-uniform axes, negative scales and offsets kept). One Dataset per signal.

===========================================  ===================================================
file                                         reader
===========================================  ===================================================
content signature (DM3/DM4 version word,     that reader (``SIGNATURES``)
``WDF1``, ``#FORMAT``, ``<TRTSpectrum``,
TIA ``.ser``, MRC ``MAP``, HDF5 ``.emd``)
the extension alone                          RosettaSciIO's format table; formats usidbridge reads
                                             itself (USID, NeXus, HSPY, netCDF, TIFF, numpy,
                                             Image) are left to those converters
several readers claim the extension          an error naming them: choose with ``-r reader=NAME``
``-r reader=NAME`` (name or alias)           that reader, whatever the file looks like
===========================================  ===================================================

Reading is lazy where the reader supports it (dask), eager otherwise. Each signal dict is then made
what ``hs.load`` makes of it, by HyperSpy itself (`usidbridge.signals.as_hyperspy_loads`): the
reader's post-processing steps are HyperSpy calls (a DM spectrum image's ``to_signal1D`` makes the
first navigation axis, energy loss, the signal; ``squeeze``; an RGB ``transpose`` and
``change_dtype``), and its ``mapping`` fills HyperSpy's metadata (beam energy, angles, dwell time,
``Signal.quantity``) from the original metadata. So HyperSpy is this gateway's dependency too.
HDF5 containers other than EMD (Tofwerk, Delmic, Arina) share the ``.h5`` extension with h5USID and
plain HDF5, so they are read only when asked for with ``--from rosettasciio -r reader=NAME``.

Damaged files: the containers whose sizes a reader trusts are checked first (``PRECHECKS``: Renishaw's
blocks, MRC's header against the file, Bruker's SFS chunks and file tree). A Bruker .bcf's hypermap is
then decoded by compiled code that trusts the pixel stream, so it is read in a child process
(`RosettaSciIOFormat.decodes_natively`), where a crash is an error naming the file.
"""

from __future__ import annotations

import importlib
import importlib.util
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.errors import AmbiguousFormatError, ModelError, UnknownFormatError, UnreadableFileError, silenced
from usidbridge.hdf import has_hdf5_signature, refuse_for_whole_readers
from usidbridge.model import Dataset
from usidbridge.registry import Format, Profile
from usidbridge.signals import as_hyperspy_loads, dataset_from_signal

NATIVE = frozenset({"USID", "NeXus", "HSPY", "ZSPY", "netCDF", "TIFF", "numpy", "Image"})
SFS_MAGIC = b"AAMVHFSS"  # a Bruker .bcf: an SFS container
PREFERRED = {".mrc": "MRC"}  # MRCZ also reads .mrc; plain MRC is what a .mrc file is
HDF5_CONTAINERS = {".emd": "EMD"}
SIGNATURES: dict[str, Callable[[bytes, str], bool]] = {  # reader: (first bytes, extension) → the file is its own
    "DigitalMicrograph": lambda head, suffix: head[:4] in (b"\x00\x00\x00\x03", b"\x00\x00\x00\x04") and suffix in (".dm3", ".dm4"),
    "Renishaw": lambda head, suffix: head[:4] == b"WDF1",
    "MSA": lambda head, suffix: head.lstrip(b"\xef\xbb\xbf \t\r\n").upper().startswith(b"#FORMAT"),
    "Bruker": lambda head, suffix: b"<TRTSpectrum" in head[:512] or head[:8] == SFS_MAGIC,
    "TIA": lambda head, suffix: head[:4] == b"II\x97\x01",
    "MRC": lambda head, suffix: head[208:212] in (b"MAP ", b"MAP\x00"),
    "Blockfile": lambda head, suffix: head[:12] == b"IMGBLOCKFILE",
    "JEOL": lambda head, suffix: suffix == ".img" and head[:4] == b"\x34\x00\x00\x00",
    "Hamamatsu": lambda head, suffix: suffix == ".img" and head[:2] == b"IM",
}
AUTO_EXCLUDED = (".h5", ".hdf5", ".xml", ".csv")  # shared with other formats and not told apart by content: -r reader=NAME
# What RosettaSciIO's readers raise when a file is not what they expect (they parse with struct,
# numpy, xml and h5py and check little themselves).
# SyntaxError: the XML parsers' errors on malformed metadata (xml.etree's ParseError, lxml's XMLSyntaxError);
# NameError: UnboundLocalError on a branch malformed input takes; LookupError: an XML declaration naming an unknown encoding;
# OverflowError: a date or size in a header beyond what Python can hold (a Bruker header's date)
READER_FAILURES = (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, struct.error, EOFError, SyntaxError, UnicodeDecodeError, LookupError, zlib.error, NotImplementedError, AssertionError, RuntimeError, NameError, StopIteration, OverflowError)


def _own_errors(api: str) -> tuple[type[Exception], ...]:
    """The exception classes a reader defines for files it finds malformed (DigitalMicrograph's DM3TagIDError, ...)."""
    implementation = f"{api}._api" if importlib.util.find_spec(f"{api}._api") else api
    return tuple(value for value in vars(importlib.import_module(implementation)).values() if isinstance(value, type) and issubclass(value, Exception) and value.__module__.startswith("rsciio"))


def _plugins() -> list[dict[str, Any]]:
    from rsciio import IO_PLUGINS

    return [plugin for plugin in IO_PLUGINS if plugin.get("api")]


def _by_name(name: str, path: Path) -> dict[str, Any]:
    plugins = _plugins()
    for plugin in plugins:
        if name.lower() in [plugin["name"].lower(), *(alias.lower() for alias in plugin.get("name_aliases") or [])]:
            return plugin
    names = ", ".join(sorted(plugin["name"] for plugin in plugins))
    raise UnknownFormatError(f"RosettaSciIO has no reader {name!r}; its readers: {names}", path)


def _claiming(path: Path, head: bytes) -> list[dict[str, Any]]:
    """The readers that claim the file: by content signature first, else by extension (native formats left out)."""
    plugins = [plugin for plugin in _plugins() if plugin["name"] not in NATIVE]
    suffix = path.suffix.lower()
    by_content = [plugin for plugin in plugins if plugin["name"] in SIGNATURES and SIGNATURES[plugin["name"]](head, suffix)]
    if by_content:
        return by_content
    if has_hdf5_signature(head):
        return [plugin for plugin in plugins if plugin["name"] == HDF5_CONTAINERS.get(suffix)]
    by_extension = [plugin for plugin in plugins if suffix[1:] in (extension.lower() for extension in plugin["file_extensions"])]
    preferred = [plugin for plugin in by_extension if plugin["name"] == PREFERRED.get(suffix)]
    return preferred or by_extension


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(4096)


def choose_reader(path: Path, reader: str | None = None) -> dict[str, Any]:
    """The RosettaSciIO plugin for the file: the one asked for, else the only one that claims it."""
    if reader:
        return _by_name(reader, path)
    claiming = _claiming(path, _head(path))
    if not claiming:
        raise UnknownFormatError(f"no RosettaSciIO reader recognises this file (extension {path.suffix or 'none'!r}); name one with -r reader=NAME", path)
    if len(claiming) > 1:
        names = ", ".join(plugin["name"] for plugin in claiming)
        raise AmbiguousFormatError(f"several RosettaSciIO readers claim this file ({names}); choose one with -r reader=NAME (e.g. -r reader={claiming[0]['name']})", path)
    return claiming[0]


def _check_hdf5(path: Path) -> None:
    """Refuse an HDF5 container (EMD, ...) with a dataset declaring far more data than it stores, a link
    cycle, an external link or groups nested too deep, before a reader reads it whole and walks it by
    recursion (`refuse_for_whole_readers`)."""
    if has_hdf5_signature(_head(path)):
        refuse_for_whole_readers(path)


WDF_BLOCK = struct.Struct("<4sIQ")  # a Renishaw block: its name, its number, its size with this header
MRC_MODE_BYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2}


def _check_wdf(path: Path) -> None:
    """Walk a Renishaw file's blocks before RosettaSciIO does: a block of size 0 (a zeroed tail)
    makes its reader loop forever, one past the end makes it read garbage."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        position, number = 0, 0
        while position < size:
            handle.seek(position)
            header = handle.read(WDF_BLOCK.size)
            if len(header) < WDF_BLOCK.size:
                raise UnreadableFileError(f"the Renishaw block at byte {position} is cut off ({len(header)} of its {WDF_BLOCK.size} header bytes)", path)
            name, _uid, length = WDF_BLOCK.unpack(header)
            if length < WDF_BLOCK.size or position + length > size:
                raise UnreadableFileError(f"Renishaw block {number} ({name!r}) at byte {position} declares {length} bytes; the file has {size - position} left (damaged or truncated)", path)
            position, number = position + length, number + 1


def _check_mrc(path: Path) -> None:
    """Compare an MRC header's sizes with the file before RosettaSciIO memory-maps it: a map longer
    than the file fails only when the data are read (lazily, much later)."""
    with open(path, "rb") as handle:
        header = handle.read(1024)
    if len(header) < 1024:
        raise UnreadableFileError(f"{len(header)} bytes: an MRC header takes 1024", path)
    columns, rows, sections, mode = struct.unpack_from("<4i", header)
    (extended,) = struct.unpack_from("<i", header, 92)
    if mode not in MRC_MODE_BYTES:
        return  # a mode this check does not size: RosettaSciIO says what it makes of it
    if min(columns, rows, sections) < 1 or extended < 0:
        raise UnreadableFileError(f"the MRC header declares {columns} × {rows} × {sections} values and {extended} bytes of extended header", path)
    needed = 1024 + extended + columns * rows * sections * MRC_MODE_BYTES[mode]
    if needed > path.stat().st_size:
        raise UnreadableFileError(f"the MRC header declares {columns} × {rows} × {sections} values of mode {mode}: {needed} bytes; the file has {path.stat().st_size} (truncated?)", path)


SFS_HEADER = 0x14C  # the container's header: chunk size at 0x128; tree chunk, item count and chunk count at 0x140
SFS_CHUNKS = 0x118  # chunk k starts here + k x chunk size: the next chunk's number (uint32), 28 bytes, then its data
SFS_CHUNK_HEADER = 0x20
SFS_ITEM = struct.Struct("<iQ24x4xi176x?3x256x32x")  # 512 bytes: pointer-table chunk, size, parent item, is a folder
SFS_MAX_CHUNK = 2**26


def _check_sfs(path: Path) -> None:
    """Check a Bruker .bcf's container before RosettaSciIO reads it: an SFS file (AidAim's single-file
    system) of equal chunks. Its reader trusts every number in it: a chunk size of 0 divides by zero,
    a cycle in the file tree's parents loops it forever while its memory grows, and a pointer past the
    end reads garbage into the decoder. Checked here: the chunk size and count against the file's size,
    every item's parent, and every chunk each file's pointer table names. (.spx files are XML: nothing to check.)"""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(SFS_HEADER)
        if head[:8] != SFS_MAGIC:
            return
        if len(head) < SFS_HEADER:
            raise UnreadableFileError(f"{len(head)} bytes: the header of a Bruker SFS container takes {SFS_HEADER}", path)
        (chunk_size,) = struct.unpack_from("<I", head, 0x128)
        tree_chunk, item_count, chunk_count = struct.unpack_from("<3I", head, 0x140)
        if not SFS_CHUNK_HEADER + SFS_ITEM.size <= chunk_size <= SFS_MAX_CHUNK:
            raise UnreadableFileError(f"the SFS container declares chunks of {chunk_size} bytes (damaged header?)", path)
        if SFS_CHUNKS + chunk_count * chunk_size > size:
            raise UnreadableFileError(f"the SFS container declares {chunk_count} chunks of {chunk_size} bytes, {SFS_CHUNKS + chunk_count * chunk_size} bytes; the file has {size} (truncated?)", path)
        usable = chunk_size - SFS_CHUNK_HEADER

        def chained(first: int, count: int, what: str) -> bytes:
            """The data of `count` chunks from chunk `first` on, each naming the next in its header."""
            parts, number = [], first
            for _ in range(count):
                if not 0 <= number < chunk_count:
                    raise UnreadableFileError(f"{what} names chunk {number}; the SFS container has {chunk_count}", path)
                handle.seek(SFS_CHUNKS + number * chunk_size)
                header = handle.read(SFS_CHUNK_HEADER)
                parts.append(handle.read(usable))
                (number,) = struct.unpack_from("<I", header)
            return b"".join(parts)

        per_chunk = usable // SFS_ITEM.size
        if item_count > chunk_count * per_chunk:
            raise UnreadableFileError(f"the SFS file tree declares {item_count} items; the container has room for {chunk_count * per_chunk}", path)
        tree = chained(tree_chunk, -(-item_count // per_chunk), "the file tree")
        items = [SFS_ITEM.unpack_from(tree, (number // per_chunk) * usable + (number % per_chunk) * SFS_ITEM.size) for number in range(item_count)]
        for number, (_table, _length, parent, _folder) in enumerate(items):
            if parent != -1 and not (0 <= parent < item_count and items[parent][3]):
                raise UnreadableFileError(f"item {number} of the SFS file tree has parent {parent}, not one of its {item_count} items that is a folder", path)
        rooted = {-1}  # items whose parents lead to the root
        for number in range(item_count):
            path_up, parent = {number}, items[number][2]
            while parent not in rooted:
                if parent in path_up:
                    raise UnreadableFileError(f"the parents of item {number} of the SFS file tree form a cycle", path)
                path_up.add(parent)
                parent = items[parent][2]
            rooted.update(path_up)
        for number, (table_chunk, length, _parent, is_folder) in enumerate(items):
            if is_folder:
                continue
            if length > chunk_count * usable:
                raise UnreadableFileError(f"item {number} of the SFS container declares {length} bytes; the container holds {chunk_count * usable}", path)
            pieces = -(-length // usable)
            table = chained(table_chunk, max(1, -(-pieces * 4 // (usable - usable % 4))), f"the pointer table of item {number}")
            pointers = np.frombuffer(table[: pieces * 4], dtype="<u4")
            if pointers.size and int(pointers.max()) >= chunk_count:
                raise UnreadableFileError(f"item {number} of the SFS container names chunk {int(pointers.max())}; the container has {chunk_count}", path)


PRECHECKS = {"Renishaw": _check_wdf, "MRC": _check_mrc, "Bruker": _check_sfs}  # reader: a check of the container's own sizes, before the reader trusts them


def _is_bcf(path: Path, plugin: dict[str, Any]) -> bool:
    """A Bruker .bcf (an SFS container), not an .spx (XML)."""
    return plugin["name"] == "Bruker" and _head(path)[:8] == SFS_MAGIC


def read_file(path: Path, lazy: bool = False, reader: str | None = None) -> list[Dataset]:
    """One Dataset per signal RosettaSciIO's reader finds in the file.

    A .bcf is read eagerly: its lazy mode is one dask block of the whole hypermap, so it would save
    no memory and only move what the decoder raises on a damaged file past this call.
    """
    from traits.api import TraitError  # HyperSpy's: an axis or metadata value of the wrong type

    plugin = choose_reader(path, reader)
    lazy = lazy and not _is_bcf(path, plugin)
    _check_hdf5(path)
    if plugin["name"] in PRECHECKS:
        PRECHECKS[plugin["name"]](path)
    module = importlib.import_module(plugin["api"])
    try:
        with silenced("rsciio"):
            try:
                signals = module.file_reader(str(path), lazy=lazy)
            except NotImplementedError:  # the reader has no lazy mode
                signals = module.file_reader(str(path), lazy=False)
    except (*READER_FAILURES, *_own_errors(plugin["api"])) as error:
        raise UnreadableFileError(f"RosettaSciIO's {plugin['name']} reader cannot read this file ({type(error).__name__}: {error})", path) from None
    except MemoryError:
        raise UnreadableFileError(f"RosettaSciIO's {plugin['name']} reader ran out of memory: the file declares more data than it can hold (damaged?)", path) from None
    datasets = []
    for index, signal in enumerate(signal for signal in signals if "metadata" in signal):  # as hs.load: the others are models, not signals
        try:
            loaded = as_hyperspy_loads(signal)
        except (*READER_FAILURES, TraitError) as error:
            raise UnreadableFileError(f"HyperSpy cannot make a signal of what RosettaSciIO's {plugin['name']} reader gave ({type(error).__name__}: {error})", path) from None
        try:
            dataset = dataset_from_signal(loaded, source=f"{path}::signal{index}")
        except ModelError as error:
            raise UnreadableFileError(f"RosettaSciIO's {plugin['name']} reader gave signal {index} that USID cannot hold: {error.message}", path) from None
        dataset.metadata.setdefault("hyperspy", {}).setdefault("General", {}).setdefault("FileIO", {"0": {"operation": "load", "io_plugin": plugin["api"]}})  # as hs.load records it
        datasets.append(dataset)
    return datasets


class RosettaSciIOFormat(Format):
    name = "rosettasciio"
    description = "every format RosettaSciIO reads: Gatan DM3/DM4, EMD (Velox, NCEM), TIA, MSA, MRC, Bruker, Renishaw, JEOL, ..."
    extensions = (
        ".dm3", ".dm4", ".emd", ".de5", ".emi", ".ser", ".msa", ".ems", ".mas", ".emsa", ".mrc", ".mrcz", ".ali", ".bcf", ".spx", ".wdf",
        ".spd", ".spc", ".lsd", ".asw", ".img", ".map", ".pts", ".eds", ".blo", ".unf", ".rpl", ".sur", ".pro", ".elid", ".prz", ".tvips",
        ".mib", ".app5", ".dens", ".sac", ".sbc", ".tvf",
    )  # RosettaSciIO's, less its natives' and AUTO_EXCLUDED (a test keeps this in step with RosettaSciIO)
    dependency = "hyperspy"  # which needs RosettaSciIO; both in the extra
    extra = "rosettasciio"
    profile = Profile()
    read_options = {"reader": "the RosettaSciIO reader to use, by name or alias (e.g. DigitalMicrograph, JEOL, Tofwerk); default: detected"}

    def sniff(self, head: bytes, path: Path) -> int:
        suffix = path.suffix.lower()
        if any(signature(head, suffix) for signature in SIGNATURES.values()):
            return 2
        if has_hdf5_signature(head):
            return 2 if suffix in HDF5_CONTAINERS else 0
        return 1 if suffix in self.extensions else 0

    def decodes_natively(self, path: Path, options: dict[str, Any]) -> bool:
        """A Bruker .bcf: its hypermap is decoded by compiled code (``unbcf_fast``) that trusts every
        size in the pixel stream, which no check short of decoding it can confirm."""
        return _is_bcf(path, choose_reader(path, options.get("reader")))

    def read(self, path: Path, *, lazy: bool = False, reader: str | None = None) -> list[Dataset]:
        return read_file(path, lazy=lazy, reader=reader)


FORMAT = RosettaSciIOFormat()
