"""EDF (ESRF Data Format) and every other image format FabIO reads (CBF, MarCCD, ADSC, ...).

Mapping between the file and the model:

==============================================  ================================================
EDF / FabIO                                     `Dataset`
==============================================  ================================================
one frame ``Dim_2`` x ``Dim_1``                 positions ``Y`` x ``X`` (pixels), one spectral point
several frames (one multi-frame file, or a      spectroscopic dim ``Frame`` over the pixels
series ``ROOT_0001_0000_0000.edf`` ...)         (``frames="position"``: a slow position dim)
``motor_mne`` / ``motor_pos``                   ``metadata["edf"]["motors"]`` {name: position}
``counter_mne`` / ``counter_pos``               ``metadata["edf"]["counters"]``
positions that change from frame to frame       ``metadata["edf"]["frame_motors"]`` {name: [...]}
other header keys of the first frame            ``metadata["edf"]["header"]``
``usid_*`` keys written by usidbridge           exact dims, quantity, units, name
==============================================  ================================================

Written files are EDF, single- or multi-frame (one frame per image of the stack, see
`usidbridge.images`), in native byte order, with the header keys of ``metadata["edf"]`` and the
``usid_*`` keys that let this reader rebuild the Dataset exactly. Uncompressed frames are read
lazily through memory maps; every frame is checked against its header (size, data type, end of
file) so a damaged file gives one error with a byte offset instead of a padded image.

FabIO reads the files, with one exception, and this module walks EDF headers itself for two
reasons. FabIO loops for ever on some headers (a huge ``Dim_N``, a negative ``Size``) in any
frame, so every header is checked before FabIO reads it (`_walk`, which finds the header blocks
as FabIO does). And FabIO's parsing of each frame's header costs 60 us, twice the reading of a
64-frame stack's data: a file that the walk shows to be nothing but uncompressed 2-D frames of
one type and shape (`_plain_stack`) is read from the walk's headers, the same keys and values
FabIO gives (tested against FabIO on every ESRF type, byte order and layout).
"""

from __future__ import annotations

import glob
import math
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError, UnsupportedFeatureError, silenced
from usidbridge.images import dataset_to_stack, fill_stack, pixel_dims, read_by_rows, stack_order, stack_to_dataset
from usidbridge.lazy import as_dask, read_pieces
from usidbridge.model import Dataset, Dimension, from_description
from usidbridge.registry import Format, Profile

STRUCTURAL_KEYS = frozenset(
    {"EDF_DataBlockID", "EDF_BinarySize", "EDF_HeaderSize", "ByteOrder", "DataType", "Dim_1", "Dim_2", "Dim_3", "Image", "HeaderID", "Size", "Compression"}
)
LIST_KEYS = {"motor": ("motor_mne", "motor_pos"), "counter": ("counter_mne", "counter_pos")}
SERIES = re.compile(r"^(?P<root>.+?)(?P<numbers>(_\d{4}){1,3})(?P<suffix>\.edf(\.gz|\.bz2)?)$", re.IGNORECASE)
USID_PREFIX = "usid_"
PARSED_KEYS = STRUCTURAL_KEYS | {key for pair in LIST_KEYS.values() for key in pair}
FORBIDDEN = ("|", ";", "{", "}", "\n")
CBF_MAGIC = b"###CBF"
EXACT_AXIS_LIMIT = 256
MAX_EDF_RANK = 8
# The ESRF data type names FabIO reads, and their numpy types (a test checks this table against
# FabIO's): a file read from the header walk then needs no FabIO, whose import costs a fresh
# process 0.07 s. float128 exists on some machines only, as in FabIO.
EDF_TYPES = {
    **dict.fromkeys(("SignedByte", "Signed8"), "int8"),
    **dict.fromkeys(("UnsignedByte", "Unsigned8"), "uint8"),
    **dict.fromkeys(("SignedShort", "Signed16"), "int16"),
    **dict.fromkeys(("UnsignedShort", "Unsigned16", "UnsignedShortInteger"), "uint16"),
    **dict.fromkeys(("SignedInteger", "Signed32", "SignedLong"), "int32"),
    **dict.fromkeys(("UnsignedInteger", "Unsigned32", "UnsignedLong"), "uint32"),
    "Signed64": "int64",
    "Unsigned64": "uint64",
    **dict.fromkeys(("FloatValue", "FLOATVALUE", "FLOAT", "Float", "FloatIEEE32", "Float32"), "float32"),
    **dict.fromkeys(("Double", "DoubleValue", "FloatIEEE64", "DoubleIEEE64"), "float64"),
    **(dict.fromkeys(("FloatIEEE128", "DoubleIEEE128", "QuadrupleValue"), "float128") if hasattr(np, "float128") else {}),
}
EDF_BLOCK = 512  # EDF headers are padded to a multiple of this
MAX_HEADER_BYTES = 512 * EDF_BLOCK  # FabIO's limit for one header (its EDF_HeaderSize raises it only for a header ending in its first block)
HEADER_END = re.compile(rb"}\r?\n")
HEADER_PADDING = b" \t\n\r\x0b\x0c\x00"
DEFAULTS_SKIPPED = ("SIZE", "IMAGE", "HEADERID")  # keys of a general header that frames do not take over
# What FabIO raises when it cannot identify or parse a file (its format classes read with struct,
# numpy and text parsing and check little themselves).
# NameError: FabIO's UnboundLocalError on odd headers; SyntaxError: lxml's, from FabIO's XML formats (XSD);
# OverflowError: a size of "1e400" or "inf", which FabIO reads with int(float(text))
FABIO_FAILURES = (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, struct.error, EOFError, NotImplementedError, RuntimeError, UnicodeDecodeError, ZeroDivisionError, OverflowError, MemoryError, NameError, SyntaxError)


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _named_values(header: dict[str, str], kind: str) -> dict[str, float | str]:
    names_key, values_key = LIST_KEYS[kind]
    names, values = header.get(names_key, "").split(), header.get(values_key, "").split()
    return {name: _number(value) for name, value in zip(names, values)}


def series_files(path: Path) -> list[Path]:
    """Every file of the series ``ROOT_%04d[_%04d[_%04d]].edf`` that `path` belongs to, in order."""
    match = SERIES.match(path.name)
    if not match:
        return [path]
    pattern = glob.escape(str(path.parent / match["root"])) + re.sub(r"\d", "[0-9]", match["numbers"]) + glob.escape(match["suffix"])
    return sorted(Path(name) for name in glob.glob(pattern))


class _Frames:
    """The frames of one or more FabIO files, checked against their headers, with lazy access."""

    def __init__(self, paths: Sequence[Path]) -> None:
        with silenced("fabio"):
            self._open(paths)

    def _open(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.images: list[tuple[Path, Any]] = []
        self.layouts: list[tuple[np.dtype, tuple[int, ...], list[int]] | None] = []
        self.headers: list[dict[str, str]] = []
        for path in self.paths:
            plain = _precheck(path)
            if plain is not None:
                headers, layout = plain
                self.images.append((path, None))
                self.layouts.append(layout)
                self.headers += headers
                continue
            import fabio

            try:
                image = fabio.open(str(path))
            except KeyError as error:
                raise UnreadableFileError(f"unknown EDF DataType {error.args[0]!r} in the header at byte offset {_offset_of(path, b'DataType')}", path) from None
            except FABIO_FAILURES as error:
                raise UnreadableFileError(f"not an image FabIO can read ({type(error).__name__}: {error})", path) from None
            except Exception as error:  # FabIO raises bare Exception for headers it cannot parse; anything more specific is a bug
                if type(error) is not Exception:
                    raise
                raise UnreadableFileError(f"FabIO cannot parse this file ({error})", path) from None
            self.headers += self._checked_headers(path, image)
            self.images.append((path, image))
            self.layouts.append(self._layout(path, image))

    @staticmethod
    def _checked_headers(path: Path, image: Any) -> list[dict[str, str]]:
        frames = getattr(image, "_frames", None)
        if not frames:
            return [_text_header(image.header)]
        size = path.stat().st_size
        headers = []
        for index, frame in enumerate(frames):
            header = dict(frame.header)
            compressed = header.get("Compression", "None").lower() not in ("none", "")
            expected = int(np.prod(frame.shape)) * _frame_dtype(header, path).itemsize
            if frame.incomplete_data or frame.start + frame.blobsize > size:
                raise UnreadableFileError(
                    f"truncated: frame {index} needs bytes {frame.start}..{frame.start + frame.blobsize} but the file ends at byte {size}", path
                )
            if not compressed and frame.blobsize != expected:
                raise UnreadableFileError(
                    f"frame {index}: the header ending at byte offset {frame.start} says "
                    f"{header.get('Dim_2')} x {header.get('Dim_1')} {header.get('DataType')} ({expected} bytes) but Size is {frame.blobsize} bytes",
                    path,
                )
            headers.append(header)
        return headers

    def _layout(self, path: Path, image: Any) -> tuple[np.dtype, tuple[int, ...], list[int]] | None:
        """(dtype, stack shape, byte offset of each frame) of one EDF file whose frames are one
        uncompressed stack of equal 2-D frames at equal distances, else None."""
        frames = getattr(image, "_frames", None)
        if not frames or any(dict(f.header).get("Compression", "None").lower() not in ("none", "") for f in frames):
            return None
        return _stack_layout([dict(f.header) for f in frames], [f.shape for f in frames], [f.start for f in frames], path)

    @staticmethod
    def _memmap(path: Path, dtype: np.dtype, shape: tuple[int, ...], starts: list[int]) -> np.ndarray:
        """The frames as one memory-mapped (frames, Y, X) array."""
        frame_bytes = math.prod(shape[1:]) * dtype.itemsize
        stride = starts[1] - starts[0] if len(starts) > 1 else frame_bytes
        whole = np.memmap(path, dtype=np.uint8, mode="r")
        return np.ndarray(shape, dtype=dtype, buffer=whole, offset=starts[0], strides=(stride, shape[2] * dtype.itemsize, dtype.itemsize))

    @staticmethod
    def _read_into(stack: np.ndarray, path: Path, starts: list[int]) -> None:
        """Fill `stack` (frames, Y, X) with the frames at `starts`: positioned reads at the speed of
        the page cache, the frames shared among one thread per core (`read_pieces`; copying a
        memory map pays a page fault every 4 KiB, 1.4x slower)."""
        with open(path, "rb", buffering=0) as handle:
            read_pieces(handle.fileno(), list(zip(starts, stack)), str(path))


    def stack(self, lazy: bool) -> Any:
        """All frames as (frames, Y, X): read into one array in memory (eager reads of uncompressed
        frames of one shape and type), memory maps (lazy reads), or decoded by FabIO (compressed frames)."""
        layouts = self.layouts
        if not lazy and all(layouts) and len({(layout[0], layout[1][1:]) for layout in layouts if layout}) == 1:
            return self._read_all(layouts)
        parts = []
        for (path, image), layout in zip(self.images, layouts):
            if layout is not None:
                parts.append(self._memmap(path, *layout))
                continue
            try:
                with silenced("fabio"):
                    frames = [image.getframe(i).data if i else image.data for i in range(image.nframes)]
            except FABIO_FAILURES as error:  # FabIO decodes the frames of its other formats here, and trusts their headers
                raise UnreadableFileError(f"FabIO cannot decode the frames of this {type(image).__name__} ({type(error).__name__}: {error})", path) from None
            if any(frame is None for frame in frames):
                raise UnreadableFileError(f"FabIO found no data in a frame of this {type(image).__name__}", path)
            if len({frame.shape for frame in frames}) > 1:
                raise UnreadableFileError(f"the frames have different shapes {sorted({frame.shape for frame in frames})}; a stack needs one", path)
            parts.append(np.stack(frames))
        if len(parts) == 1:
            return parts[0]
        if lazy:
            import dask.array

            return dask.array.concatenate([as_dask(part) for part in parts])
        return np.concatenate(parts)

    def _read_all(self, layouts: list[Any]) -> np.ndarray:
        """The frames of every file read into one (frames, Y, X) array: the data once in memory."""
        dtype, shape, _starts = layouts[0]
        stack = np.empty((sum(layout[1][0] for layout in layouts), *shape[1:]), dtype)
        first = 0
        for (path, _image), (_dtype, file_shape, starts) in zip(self.images, layouts):
            self._read_into(stack[first : first + file_shape[0]], path, starts)
            first += file_shape[0]
        return stack


def _header_keys(block: bytes) -> dict[str, str]:
    """The keys of one header block as FabIO reads them: ``key = value`` pairs separated by ';',
    padding and NUL stripped, ASCII only; a repeated key takes its last value, in its first place."""
    header: dict[str, str] = {}
    for line in block.split(b";"):
        key, equals, value = line.partition(b"=")
        if not equals:
            continue
        try:
            key_text, value_text = key.strip(HEADER_PADDING).decode("ascii"), value.strip(HEADER_PADDING).decode("ascii")
        except UnicodeDecodeError:
            continue
        header[key_text] = value_text
    return header


def _integer(text: str | None) -> int | None:
    """An integer as Python's int() reads it (FabIO reads EDF_BinarySize so), or None."""
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _whole_number(text: str | None) -> int | None:
    """A size as FabIO reads it (``"1024"``, ``"1024.0"``), or None."""
    number = _integer(text)
    if number is not None or text is None:
        return number
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return None


def _data_bytes(header: dict[str, str], general: bool) -> int | None:
    """How many bytes of data follow a header, as FabIO finds it: for a frame Size, else
    EDF_BinarySize, else the declared Dim_N of DataType when uncompressed; for a general header
    EDF_BinarySize or 0. None when FabIO cannot know it either."""
    declared = _integer(header.get("EDF_BinarySize"))
    if general:
        return declared or 0
    caps = {key.upper(): value for key, value in header.items()}
    size = _whole_number(caps.get("SIZE"))
    if size is not None or declared is not None:
        return size if size is not None else declared
    if not caps.get("COMPRESSION", "NONE").upper().startswith("NO"):
        return None
    rank = max((int(key[4:]) for key in caps if key.startswith("DIM_") and key[4:].isdecimal()), default=0)
    sizes = [_whole_number(caps.get(f"DIM_{axis}", "0" if axis == 1 else "1")) for axis in range(1, rank + 1)]
    if any(size is None for size in sizes) or caps.get("DATATYPE", "UnsignedShort") not in EDF_TYPES:
        return None
    return math.prod(sizes) * np.dtype(EDF_TYPES[caps.get("DATATYPE", "UnsignedShort")]).itemsize


class _Block(NamedTuple):
    """One header block of an EDF file and the data after it."""

    offset: int  # where the header starts
    data_start: int
    data_bytes: int | None
    header: dict[str, str]  # with a general header's keys, as FabIO gives a frame's
    general: bool


def _walk(path: Path) -> tuple[list[_Block], bool]:
    """The header blocks of an EDF file, found as FabIO walks it, each checked (`_check_header`),
    and whether they and their data fill the file exactly. A block runs from '{' to '}' and a
    newline, then the frame's data (`_data_bytes`), then the next block; a general header's keys
    are included in each frame's, as FabIO does. Ends where FabIO stops reading frames: the end of
    the file, no '{', a runaway header, a data size it cannot know.

    FabIO computes each frame's shape while it reads the headers, so the headers are checked here,
    before FabIO reads them; this walk reads only the header blocks, not the data.
    """
    blocks: list[_Block] = []
    with open(path, "rb", buffering=0) as handle:  # one positioned read per header: no read-ahead of data
        descriptor = handle.fileno()
        offset, defaults, size = 0, {}, os.fstat(descriptor).st_size
        while offset < size:
            text = os.pread(descriptor, EDF_BLOCK, offset)
            begin = text.find(b"{")
            if begin < 0 or text[:begin].strip():
                return blocks, False
            end = HEADER_END.search(text, begin)
            while end is None and len(text) < MAX_HEADER_BYTES:
                more = os.pread(descriptor, EDF_BLOCK * 8, offset + len(text))
                if not more:
                    return blocks, False
                text += more
                end = HEADER_END.search(text, max(begin, len(text) - len(more) - 2))
            if end is None:
                return blocks, False
            header = _header_keys(text[begin + 1 : end.start()])
            general = "EDF_DataFormatVersion" in header
            merged = header if general else {**{key: value for key, value in defaults.items() if key not in header}, **header}
            if general:
                defaults = {key: value for key, value in header.items() if not key.startswith("EDF_") and key.upper() not in DEFAULTS_SKIPPED}
            _check_header(path, offset, merged)
            data_bytes = _data_bytes(merged, general)
            blocks.append(_Block(offset, offset + end.end(), data_bytes, merged, general))
            if data_bytes is None:
                return blocks, False
            if data_bytes < 0:  # FabIO would seek back to read the next header: Size -512 reads this one for ever
                raise UnreadableFileError(f"the EDF header at byte {offset} declares {data_bytes} bytes of data", path)
            offset += end.end() + data_bytes
    return blocks, offset == size


PLAIN_KEYS = ("DataType", "ByteOrder", "Dim_1", "Dim_2", "Size")


def _plain_stack(path: Path, blocks: list[_Block]) -> tuple[list[dict[str, str]], tuple[np.dtype, tuple[int, ...], list[int]]] | None:
    """The frame headers and the stack layout (dtype, (frames, Y, X), data offsets) of an EDF file
    that holds nothing but uncompressed 2-D frames of one type and shape, each header naming its
    keys as written here (`PLAIN_KEYS`), its Size in digits and what the frame holds; None for any other file,
    which FabIO reads. The walk that checked the headers has found everything FabIO would."""
    for block in blocks:
        header = block.header
        caps = {key.upper() for key in header}
        if block.general or len(caps) != len(header) or not all(key in header for key in PLAIN_KEYS) or {key for key in caps if key.startswith("DIM_")} != {"DIM_1", "DIM_2"}:
            return None
        if any(key.startswith("EDF_BINARYFILE") for key in caps) or not header.get("Compression", "None").upper().startswith("NO"):
            return None
        if header["DataType"] not in EDF_TYPES or header["ByteOrder"] not in ("LowByteFirst", "HighByteFirst"):
            return None
        if not (header["Dim_1"].isdecimal() and header["Dim_2"].isdecimal() and header["Size"].isdecimal()) or int(header["Size"]) != block.data_bytes:
            return None
    headers, shapes = [block.header for block in blocks], [(int(block.header["Dim_2"]), int(block.header["Dim_1"])) for block in blocks]
    layout = _stack_layout(headers, shapes, [block.data_start for block in blocks], path)
    if layout is None or any(block.data_bytes != math.prod(layout[1][1:]) * layout[0].itemsize for block in blocks):
        return None
    return headers, layout


def _stack_layout(headers: list[dict[str, str]], shapes: list[tuple[int, ...]], starts: list[int], path: Path) -> tuple[np.dtype, tuple[int, ...], list[int]] | None:
    """(dtype, stack shape, data offset of each frame) of frames that are one stack of equal 2-D
    frames of one type at equal distances, else None (FabIO then decodes them, and they are checked)."""
    dtypes: dict[tuple[str | None, str | None], np.dtype] = {}
    for header in headers:  # one dtype per (DataType, ByteOrder), not one per frame
        kind = (header.get("DataType"), header.get("ByteOrder"))
        if kind not in dtypes:
            dtypes[kind] = _frame_dtype(header, path)
    if not shapes or len(set(dtypes.values())) != 1 or len(set(shapes)) != 1 or len(shapes[0]) != 2:
        return None
    if any(b - a != starts[1] - starts[0] for a, b in zip(starts, starts[1:])):
        return None
    return next(iter(dtypes.values())), (len(shapes), *shapes[0]), list(starts)


def _check_header(path: Path, offset: int, header: dict[str, str]) -> None:
    """Refuse a header on which FabIO would count without bound: it counts up to the largest
    ``Dim_N`` key, and ``Dim_18446744073709551617`` would take for ever."""
    for key in header:
        if key[:4].upper() == "DIM_" and key[4:].isdecimal() and int(key[4:]) > MAX_EDF_RANK:
            raise UnreadableFileError(f"the EDF header at byte {offset} declares a dimension {key}; EDF frames have at most {MAX_EDF_RANK}", path)


def _precheck(path: Path) -> tuple[list[dict[str, str]], tuple[np.dtype, tuple[int, ...], list[int]]] | None:
    """Refuse an EDF file whose headers would make FabIO loop without bound, in the first frame's
    header or the thousandth's, before FabIO parses them (other FabIO formats pass). Returns the
    `_plain_stack` of the file, when it has one: such files are read without FabIO, whose header
    parsing costs 60 us a frame (a 64-frame file: twice the reading of its data)."""
    with open(path, "rb") as handle:
        head = handle.read(EDF_BLOCK)
    if not head.lstrip().startswith(b"{"):
        return None
    blocks, whole = _walk(path)
    return _plain_stack(path, blocks) if whole and blocks else None


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _text_header(header: Any) -> dict[str, str]:
    """A FabIO header as text keys and values (some formats, PNM among them, give bytes)."""
    return {_text(key): _text(value) for key, value in dict(header).items()}


def _frame_dtype(header: dict[str, str], path: Path) -> np.dtype:
    """The numpy dtype (with byte order) an EDF header declares; read from the header, not the data."""
    order = ">" if header.get("ByteOrder", "LowByteFirst") == "HighByteFirst" else "<"
    if header.get("DataType") not in EDF_TYPES:
        raise UnreadableFileError(f"an EDF frame header has DataType {header.get('DataType')!r}; known types: {', '.join(sorted(EDF_TYPES))}", path)
    return np.dtype(EDF_TYPES[header["DataType"]]).newbyteorder(order)


def _offset_of(path: Path, key: bytes) -> int:
    with open(path, "rb") as handle:
        return handle.read(65536).find(key)


def _metadata(headers: list[dict[str, str]]) -> dict[str, Any]:
    first = headers[0]
    edf: dict[str, Any] = {
        "header": {key: value for key, value in first.items() if key not in PARSED_KEYS and not key.startswith(USID_PREFIX)},
        "motors": _named_values(first, "motor"),
        "counters": _named_values(first, "counter"),
    }
    for kind in ("motor", "counter"):
        per_frame = [_named_values(header, kind) for header in headers]
        changing = {name: [values.get(name) for values in per_frame] for name in per_frame[0] if len({str(v.get(name)) for v in per_frame}) > 1}
        if changing:
            edf[f"frame_{kind}s"] = changing
    return {"edf": edf}


def _description(headers: list[dict[str, str]], stack_shape: tuple[int, ...], path: Path) -> dict[str, Any] | None:
    """The USID description stored in ``usid_*`` keys by usidbridge (see `usidbridge.model.describe`), if any."""
    if f"{USID_PREFIX}axis_count" not in headers[0]:
        return None
    try:
        return _parse_description(headers, stack_shape)
    except (KeyError, ValueError, IndexError) as error:
        raise UnreadableFileError(f"the usid_* header keys usidbridge wrote are damaged or incomplete ({type(error).__name__}: {error}); edit or remove them", path) from None


def _parse_description(headers: list[dict[str, str]], stack_shape: tuple[int, ...]) -> dict[str, Any]:
    first = headers[0]
    axes = [_unescape(first[f"{USID_PREFIX}axis_{number}"]).split("|") for number in range(int(first[f"{USID_PREFIX}axis_count"]))]
    sizes = [int(size) for size in first[f"{USID_PREFIX}frame_sizes"].split()] + list(stack_shape[-2:])
    described = []
    for number, ((name, units), size) in enumerate(zip(axes, sizes)):
        if number >= len(axes) - 2:
            key = f"{USID_PREFIX}pixel_{number - len(axes) + 2}"
            if f"{key}_values" in first:
                values = [float(value) for value in first[f"{key}_values"].split()]
            else:
                start, stop = (float(value) for value in first[key].split("|"))
                values = np.linspace(start, stop, size)
        else:
            stride = int(np.prod(sizes[number + 1 : len(axes) - 2]))
            values = [float(header[f"{USID_PREFIX}frame_value_{number}"]) for header in headers][::stride][:size]
        described.append({"name": name, "units": units, "values": values})
    return {
        "name": _unescape(first.get(f"{USID_PREFIX}name", "Raw_Data")),
        "quantity": _unescape(first[f"{USID_PREFIX}quantity"]),
        "units": _unescape(first[f"{USID_PREFIX}units"]),
        "axes": described,
        "position": [int(axis) for axis in first[f"{USID_PREFIX}position"].split()],
        "spectroscopic": [int(axis) for axis in first[f"{USID_PREFIX}spectroscopic"].split()],
    }


def read_file(path: Path, lazy: bool = False, frames: str | None = None, series: bool = False) -> Dataset:
    """One Dataset from an image file (or its whole series with ``series=True``)."""
    source = _Frames(series_files(path) if series else [path])
    stack = source.stack(lazy)
    if stack.ndim != 3:
        raise UnreadableFileError(f"expected 2-D frames, found data of shape {stack.shape[1:]}", path)
    if 0 in stack.shape:
        raise UnreadableFileError(f"the header declares frames of {stack.shape[1]} x {stack.shape[2]} pixels ({stack.shape[0]} frame(s)): no image to read", path)
    description = _description(source.headers, stack.shape, path)
    attributes = {"metadata": _metadata(source.headers), "source": str(path)}
    if description and frames is None:
        try:
            return read_by_rows(from_description(stack, description, **attributes), stack)
        except ModelError as error:
            raise UnreadableFileError(f"{error.message} (in the usid_* header keys)", path) from None
    if description:
        dims = [Dimension(axis["name"], axis["units"], axis["values"]) for axis in description["axes"]]
        stack = stack.reshape([dim.size for dim in dims])
        attributes.update(name=description["name"], quantity=description["quantity"], units=description["units"])
        return read_by_rows(stack_to_dataset(stack, dims[:-2], dims[-2], dims[-1], frames, **attributes), stack)
    y, x = pixel_dims(*stack.shape[-2:])
    frame_dims = [Dimension("Frame", "", stack.shape[0])] if stack.shape[0] > 1 else []
    if not frame_dims:
        stack = stack[0]
    return read_by_rows(stack_to_dataset(stack, frame_dims, y, x, frames or "spectroscopic", quantity="Intensity", units="counts", **attributes), stack)


def _header_value(value: Any, key: str) -> str:
    """A header value as EDF's ASCII text: non-ASCII and backslashes escaped (see `_unescape`)."""
    text = " ".join(str(item) for item in value) if isinstance(value, (list, tuple, np.ndarray)) else str(value)
    if any(character in text for character in FORBIDDEN) or any(character in key for character in FORBIDDEN + (" ", "=")):
        raise UnsupportedFeatureError(f"EDF header entry {key!r} = {text[:40]!r}: EDF headers cannot hold '|', ';', braces or newlines")
    escaped = text.encode("unicode_escape").decode("ascii")
    stripped = escaped.strip(" ")
    if stripped == escaped:
        return escaped
    start = escaped.index(stripped) if stripped else len(escaped)
    return "\\x20" * start + stripped + "\\x20" * (len(escaped) - start - len(stripped))  # header parsers strip edge spaces


def _unescape(text: str) -> str:
    return text.encode("ascii", errors="backslashreplace").decode("unicode_escape")


def _pixel_axis(number: int, dim: Dimension) -> dict[str, str]:
    """A uniform pixel axis as first|last (rebuilt with linspace), plus every value when that is not exact and few."""
    key = f"{USID_PREFIX}pixel_{number}"
    entries = {key: f"{float(dim.values[0])!r}|{float(dim.values[-1])!r}"}
    if not np.array_equal(np.linspace(dim.values[0], dim.values[-1], dim.size), dim.values) and dim.size <= EXACT_AXIS_LIMIT:
        entries[f"{key}_values"] = " ".join(repr(float(value)) for value in dim.values)
    return entries


def _frame_headers(dataset: Dataset, dims: list[Dimension], count: int) -> list[dict[str, str]]:
    edf = dataset.metadata.get("edf", {})
    y, x = dims[-2], dims[-1]
    for dim in (y, x):
        if not dim.is_uniform:
            raise UnsupportedFeatureError(f"EDF pixel axes must be uniform; {dim.name} is not (h5usid, nexus and netcdf keep it)")
    frame_dims = dims[:-2]
    order = np.argsort(stack_order(dataset)).tolist()  # stored axis of each dim, positions then spectroscopic
    common = {key: _header_value(value, key) for key, value in edf.get("header", {}).items()}
    common.update(
        {
            f"{USID_PREFIX}name": _header_value(dataset.name, "name"),
            f"{USID_PREFIX}quantity": _header_value(dataset.quantity, "quantity"),
            f"{USID_PREFIX}units": _header_value(dataset.units, "units"),
            f"{USID_PREFIX}axis_count": str(len(dims)),
            f"{USID_PREFIX}frame_sizes": " ".join(str(dim.size) for dim in frame_dims),
            **_pixel_axis(0, y),
            **_pixel_axis(1, x),
            f"{USID_PREFIX}position": " ".join(str(axis) for axis in order[: len(dataset.pos.dims)]),
            f"{USID_PREFIX}spectroscopic": " ".join(str(axis) for axis in order[len(dataset.pos.dims) :]),
        }
    )
    for number, dim in enumerate(dims):
        common[f"{USID_PREFIX}axis_{number}"] = f"{_header_value(dim.name, 'dim')}|{_header_value(dim.units, 'units')}"
    frame_values = np.stack(np.meshgrid(*[dim.values for dim in frame_dims], indexing="ij"), axis=-1).reshape(count, -1) if frame_dims else np.zeros((count, 0))
    headers = []
    for index in range(count):
        header = dict(common)
        for kind in ("motor", "counter"):
            values = dict(edf.get(f"{kind}s", {}))
            for name, per_frame in edf.get(f"frame_{kind}s", {}).items():
                if index < len(per_frame):
                    values[name] = per_frame[index]
            if values:
                names_key, values_key = LIST_KEYS[kind]
                header[names_key] = " ".join(_header_value(name, names_key) for name in values)
                header[values_key] = " ".join(_header_value(value, values_key) for value in values.values())
        for number, value in enumerate(frame_values[index]):
            header[f"{USID_PREFIX}frame_value_{number}"] = repr(float(value))
        headers.append(header)
    return headers


def _header_blocks(headers: list[dict[str, str]], height: int, width: int, dtype: np.dtype) -> list[bytes]:
    """Each frame's header as EDF writes it (FabIO's key order), all padded to one size so that frame data lies at fixed strides."""
    from fabio.edfimage import NUMPY_EDF_DTYPE

    if dtype.name not in NUMPY_EDF_DTYPE:
        raise UnsupportedFeatureError(f"EDF has no data type for {dtype}; EDF holds {', '.join(NUMPY_EDF_DTYPE)}")
    size = height * width * dtype.itemsize
    structural_keys = {key.upper() for key in STRUCTURAL_KEYS}
    texts = []
    for index, header in enumerate(headers):
        header = {key: value for key, value in header.items() if key.upper() not in structural_keys}  # ours describe the data, as FabIO's do
        structural = {
            "EDF_DataBlockID": f"{index}.Image.Psd",
            "EDF_BinarySize": size,
            "EDF_HeaderSize": "{header_size:5d}",
            "ByteOrder": "LowByteFirst" if np.little_endian else "HighByteFirst",  # the data is written in native order
            "DataType": NUMPY_EDF_DTYPE[dtype.name],
            "Dim_1": width,
            "Dim_2": height,
            "Image": index,
            "HeaderID": f"EH:{index:06d}:000000:000000",
            "Size": size,
        }
        texts.append("{\n" + "".join(f"{key} = {value} ;\n" for key, value in {**structural, **header}.items()))
    header_size = EDF_BLOCK * -(-(max(len(text) for text in texts) + 2) // EDF_BLOCK)
    blocks = []
    for text in texts:
        text = text.replace("{header_size:5d}", f"{header_size:5d}", 1)
        blocks.append((text + " " * (header_size - len(text) - 2) + "}\n").encode("ascii"))
    return blocks


def write_file(dataset: Dataset, path: Path) -> None:
    """Write one Dataset as a single- or multi-frame EDF file.

    Headers are written first, then the frames are filled in place through a memory map, in one
    pass over the data in blocks of positions (`usidbridge.images.fill_stack`): memory stays
    bounded whatever the file size.
    """
    if dataset.dtype.fields or dataset.dtype.kind == "c":
        raise UnsupportedFeatureError(f"EDF holds real numbers only; {dataset.name} is {dataset.dtype} (split compound or complex data first)")
    _, dims = dataset_to_stack(dataset)
    count = int(np.prod([dim.size for dim in dims[:-2]]))
    height, width = dims[-2].size, dims[-1].size
    dtype = dataset.dtype.newbyteorder("=")
    blocks = _header_blocks(_frame_headers(dataset, dims, count), height, width, dtype)
    header_size, frame_size = len(blocks[0]), height * width * dtype.itemsize
    with open(path, "wb") as file:
        for index, block in enumerate(blocks):
            file.seek(index * (header_size + frame_size))
            file.write(block)
        file.truncate(count * (header_size + frame_size))
    whole = np.memmap(path, dtype=np.uint8, mode="r+")
    frames = np.ndarray((count, height, width), dtype=dtype, buffer=whole, offset=header_size, strides=(header_size + frame_size, width * dtype.itemsize, dtype.itemsize))
    fill_stack(frames.reshape([dim.size for dim in dims]), dataset)
    whole.flush()


class EdfFormat(Format):
    name = "edf"
    description = "EDF and every image format FabIO reads (CBF, MarCCD, ...)"
    extensions = (".edf", ".cbf", ".mccd", ".mar3450", ".mar2300", ".img", ".sfrm", ".kccd", ".edf.gz")
    dependency = "fabio"
    profile = Profile(dims="encodes", complex="refuses", compound="refuses", several_datasets="refuses", non_grid="refuses", non_uniform="encodes", nested_metadata="loses")
    read_options = {
        "frames": "spectroscopic (default: a series per pixel) or position (a sequence of images)",
        "series": "true: read every file of the series ROOT_0001_0000_0000.edf ... as one stack",
    }

    def sniff(self, head: bytes, path: Path) -> int:
        if head.startswith(CBF_MAGIC):
            return 2
        start = head.lstrip()[:1024]
        if start.startswith(b"{") and any(key in start for key in (b"EDF_", b"HeaderID", b"Dim_1", b"DataType")):
            return 2
        return 0

    def probe(self, path: Path) -> bool:
        """Ask FabIO, which knows many detector formats by their headers (ADSC, d*TREK, Bruker, MarCCD, Pilatus, numpy, ...)."""
        import fabio

        try:
            _precheck(path)
            with silenced("fabio"):
                image = fabio.open(str(path))
        except (UnreadableFileError, *FABIO_FAILURES):
            return False
        return getattr(image, "data", None) is not None and image.data.ndim == 2

    def read(self, path: Path, *, lazy: bool = False, frames: str | None = None, series: bool = False) -> list[Dataset]:
        dataset = read_file(path, lazy=lazy, frames=frames, series=series)
        return [dataset if lazy else dataset.load()]

    def write(self, datasets: Sequence[Dataset], path: Path) -> None:
        if not path.name.lower().endswith(".edf"):
            raise UnsupportedFeatureError(f"the edf writer writes EDF; give the output a .edf name, not {path.suffix!r}")
        write_file(datasets[0], path)


FORMAT = EdfFormat()
