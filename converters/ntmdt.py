"""NT-MDT files (``.mdt``: Solver, NTEGRA and Nova software), parsed here.

No library on the package index reads them (SciFiReaders has a reader, which this project never
takes as a reference). The layout follows Gwyddion's ``nt-mdt.c`` and its Kaitai description: a
33-byte file header (``01 B0 93 FF``, the size of the rest, the index of the last frame), then
frames, each a 22-byte header (size, type, version, date and time, size of its variables) and a
body by type. Every size and count is checked against the bytes of its frame before use.

Mapping between the file and the model:

=============================================  ================================================
file                                           `Dataset`
=============================================  ================================================
scanned frame (type 0): x, y, z axis scales    one Dataset, positions Y (rows) then X; pixel k
(offset, step, unit code), ``m_nx`` ×          at ``offset + k · step``; values ``z offset +
``m_ny`` int16 values                          z step · stored``; unit codes in SI (nm → m)
MDA frame (type 106, "Nova"): dimensions and   one Dataset per measurand (the cell holds one
measurands, each a calibration (``bias``,      value of each); index k of a dimension at
``scale``, unit text, data type)               ``bias + k · scale``, values ``bias + scale ·
                                               stored``, unit text in SI; dimensions 0 and 1
                                               are positions X and Y (X faster), further ones
                                               (a Raman spectrum) spectroscopic and fastest,
                                               as Gwyddion reads them
MDA frame without dimensions                   a sweep: the first measurand is the
                                               spectroscopic dim, each other one a Dataset
frame title (``1F:Iprobe``)                    name; quantity the part after the pass mark
frame XML comment (UTF-16), date, scan vars    ``metadata["ntmdt"]``
text frames                                    ``metadata["ntmdt"]["text"]``
spectroscopy, curves and palette frames        not read; listed in
                                               ``metadata["ntmdt"]["not_read"]``
=============================================  ================================================

Gwyddion flips each image upside down for display and spans ``n - 1`` steps over ``n`` pixels;
here rows stay in stored order with their Y values, and every index sits on its calibration,
which puts an MDA image's centre on the scan centre of the frame's ``ScanShell`` parameters.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile
from usidbridge.units import to_si

MAGIC = b"\x01\xb0\x93\xff"
FILE_HEADER = 33
FRAME_HEADER = struct.Struct("<IHBBHHHHHHH")  # size, type, version minor, major, year … second, size of the variables
AXIS_SCALE = struct.Struct("<ffh")  # offset, step, unit code
SCAN_VARS = struct.Struct("<BBHHHfHBBBBBBfffBBiiB")  # after the three axis scales: channel, mode, … nl_corr
MDA_HEADER = struct.Struct("<II32s4s8I")  # head size, total length, GUIDs, status, name, comment, view, spec, source, var sizes, data offset, data size
CALIBRATION = struct.Struct("<IIIIIQdQddQQiI")  # total, struct length, name/comment/unit lengths, SI code, accuracy, function, bias, scale, min, max, type, author length
FRAME_TYPES = {0: "scanned", 1: "spectroscopy", 3: "text", 105: "old MDA", 106: "MDA", 107: "palette", 190: "curves (Nova)", 201: "curves"}
UNIT_CODES = {-10: "1/cm", -5: "m", -4: "cm", -3: "mm", -2: "µm", -1: "nm", 0: "Å", 1: "nA", 2: "V", 3: "", 4: "kHz", 5: "deg", 6: "%", 7: "degC", 8: "V",
              9: "s", 10: "ms", 11: "µs", 12: "ns", 13: "counts", 14: "", 20: "A", 21: "mA", 22: "µA", 23: "nA", 24: "pA", 25: "V", 26: "mV", 27: "µV",
              28: "nV", 29: "pV", 30: "N", 31: "mN", 32: "µN", 33: "nN", 34: "pN"}
DATA_TYPES = {-1: "i1", 1: "u1", -2: "<i2", 2: "<u2", -4: "<i4", 4: "<u4", -8: "<i8", 8: "<u8", -(4 + 23 * 256): "<f4", -(8 + 52 * 256): "<f8"}
ADC_MODES = {0: "Height", 1: "DFL", 2: "Lateral F", 3: "Bias V", 4: "Current", 5: "FB-Out", 6: "MAG", 7: "MAG*Sin", 8: "MAG*Cos", 9: "RMS", 10: "CalcMag",
             11: "Phase1", 12: "Phase2", 13: "CalcPhase", 14: "Ex1", 15: "Ex2", 16: "HvX", 17: "HvY", 18: "Snap Back"}


class Damaged(Exception):
    """A frame that does not fit its bytes (internal: becomes one UnreadableFileError)."""


class Frame:
    """One frame's bytes (`body`, after the 22-byte header) and its header fields."""

    def __init__(self, raw: bytes, start: int, number: int) -> None:
        if start + FRAME_HEADER.size > len(raw):
            raise Damaged(f"frame {number} starts at byte {start}, past the end of the file")
        size, self.type, minor, major, *when, self.var_size = FRAME_HEADER.unpack_from(raw, start)
        if size < FRAME_HEADER.size or start + size > len(raw):
            raise Damaged(f"frame {number} at byte {start} declares {size} bytes; {len(raw) - start} are left")
        self.number, self.start, self.size = number, start, size
        self.body = memoryview(raw)[start + FRAME_HEADER.size : start + size]
        year, month, day, hour, minute, second = when
        self.header = {"type": FRAME_TYPES.get(self.type, f"unknown ({self.type})"), "version": f"{major}.{minor}",
                       "date": f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"}

    def unpack(self, layout: struct.Struct, position: int) -> tuple:
        if position < 0 or position + layout.size > len(self.body):
            raise Damaged(f"frame {self.number}: {layout.size} bytes at byte {position} run past its {len(self.body)}")
        return layout.unpack_from(self.body, position)

    def bytes_at(self, position: int, length: int) -> bytes:
        if position < 0 or length < 0 or position + length > len(self.body):
            raise Damaged(f"frame {self.number}: {length} bytes at byte {position} run past its {len(self.body)}")
        return bytes(self.body[position : position + length])

    def sized_text(self, position: int, encoding: str) -> tuple[str, int]:
        """A text after its u4 byte count; returns it and the position after it ('' past the end)."""
        if position + 4 > len(self.body):
            return "", position
        (length,) = struct.unpack_from("<I", self.body, position)
        return self.bytes_at(position + 4, length).decode(encoding, errors="replace"), position + 4 + length


def frames(raw: bytes) -> list[Frame]:
    """Every frame of the file, in order, each checked against the file's size."""
    if len(raw) < FILE_HEADER:
        raise Damaged(f"{len(raw)} bytes, fewer than the {FILE_HEADER}-byte file header")
    (last,) = struct.unpack_from("<H", raw, 12)
    found, start = [], FILE_HEADER
    for number in range(last + 1):
        frame = Frame(raw, start, number)
        found.append(frame)
        start += frame.size
    return found


def xml_dict(text: str) -> Any:
    """An XML comment as nested dicts of its elements' text (the first of repeated elements)."""
    try:
        root = ElementTree.fromstring(text.lstrip("\ufeff").replace('encoding="UTF-16"', ""))
    except ElementTree.ParseError:
        return text

    def plain(element: ElementTree.Element) -> Any:
        children = list(element)
        if not children:
            return (element.text or "").strip()
        contents: dict[str, Any] = {}
        for child in children:
            contents.setdefault(child.tag, plain(child))
        return contents

    return plain(root)


def _quantity(title: str) -> str:
    """``1F:Iprobe`` → ``Iprobe``: the title without its pass and direction mark."""
    mark, separator, rest = title.partition(":")
    return rest.strip() if separator and len(mark) <= 3 and rest.strip() else title


def _axis(name: str, unit_code: int, offset: float, step: float, size: int) -> Dimension:
    units, factor = to_si(UNIT_CODES.get(unit_code, ""))
    step = abs(step)
    if not np.isfinite(offset) or not np.isfinite(step):
        raise Damaged(f"the {name} scale is offset {offset}, step {step}")
    if step == 0:  # no lateral calibration (a spectroscopy frame's y): pixel indices
        return Dimension.uniform(name, "", size)
    return Dimension.uniform(name, units, size, offset=offset * factor, scale=step * factor)


def _scanned(frame: Frame, metadata: dict[str, Any]) -> list[Dataset]:
    scales = [frame.unpack(AXIS_SCALE, AXIS_SCALE.size * number) for number in range(3)]
    variables = frame.unpack(SCAN_VARS, 3 * AXIS_SCALE.size)
    channel, mode, *_rest = variables
    setpoint, bias = variables[14], variables[15]
    mode_position = frame.var_size
    _fm_mode, columns, rows, dots = struct.unpack("<4H", frame.bytes_at(mode_position, 8))
    position = mode_position + 8 + (14 + 16 * dots if dots else 0)
    stored = np.frombuffer(frame.bytes_at(position, 2 * columns * rows), "<i2")
    title, position = frame.sized_text(position + 2 * columns * rows, "cp1251")
    comment, _ = frame.sized_text(position, "utf-16-le")
    if columns < 1 or rows < 1:
        raise Damaged(f"frame {frame.number}: an image of {columns} × {rows} pixels")
    (x_offset, x_step, x_unit), (y_offset, y_step, y_unit), (z_offset, z_step, z_unit) = scales
    units, factor = to_si(UNIT_CODES.get(z_unit, ""))
    if not np.isfinite(z_offset) or not np.isfinite(z_step):
        raise Damaged(f"frame {frame.number}: the z scale is offset {z_offset}, step {z_step}")
    values = (z_offset + z_step * stored.astype(np.float64)).reshape(rows, columns) * factor
    x = _axis("X", x_unit, x_offset, x_step, columns)
    y = _axis("Y", y_unit, y_offset, y_step, rows)
    title = title or ADC_MODES.get(channel, f"Frame {frame.number}")
    details = {**frame.header, "channel": ADC_MODES.get(channel, str(channel)), "mode": {0: "STM", 1: "AFM"}.get(mode, str(mode)),
               "setpoint_nA": float(setpoint), "bias_voltage_V": float(bias), "parameters": xml_dict(comment) if comment else {}}
    return [Dataset.from_ndarray(values, [y, x], name=title, quantity=_quantity(title), units=units,
                                 metadata={"ntmdt": {**metadata, "frame": details}}, source=f"{frame.number}")]


class Calibration:
    """An MDA dimension or measurand: index or stored value k means ``bias + scale · k`` in `units`."""

    def __init__(self, frame: Frame, position: int) -> None:
        total, struct_length, name_length, comment_length, unit_length, _si, _accuracy, _function, bias, scale, low, high, data_type, author_length = frame.unpack(CALIBRATION, position)
        if total < 8 + struct_length:
            raise Damaged(f"frame {frame.number}: a calibration of {total} bytes with a {struct_length}-byte structure")
        text = position + 8 + struct_length
        self.name = frame.bytes_at(text, name_length).decode("utf-8", errors="replace").strip()
        unit = frame.bytes_at(text + name_length + comment_length, unit_length).decode("utf-8", errors="replace").strip()
        if self.name == unit:  # Nova names a calibration by its unit ("um", "nA"): no name
            self.name = ""
        self.units, factor = to_si(unit)
        if not np.isfinite(bias) or not np.isfinite(scale):
            raise Damaged(f"frame {frame.number}: calibration {self.name!r} has bias {bias}, scale {scale}")
        self.bias, self.scale, self.total, self.data_type = bias * factor, scale * factor, total, data_type
        self.count = high - low + 1 if high >= low else 0

    def dtype(self, frame: Frame) -> np.dtype:
        if self.data_type not in DATA_TYPES:
            raise Damaged(f"frame {frame.number}: measurand {self.name!r} has data type code {self.data_type}, which is not an integer or IEEE float")
        return np.dtype(DATA_TYPES[self.data_type])

    def dimension(self, name: str) -> Dimension:
        return Dimension.uniform(self.name or name, self.units, self.count, offset=self.bias, scale=self.scale)


def _mda(frame: Frame, metadata: dict[str, Any]) -> list[Dataset]:
    head_size, _total, _guids, _status, name_size, comment_size, view_size, spec_size, source_size, _var_size, _offset, data_size = frame.unpack(MDA_HEADER, 0)
    title = frame.bytes_at(head_size, name_size).decode("cp1251", errors="replace")
    comment = frame.bytes_at(head_size + name_size, comment_size).decode("utf-16-le", errors="replace")
    position = head_size + name_size + comment_size + spec_size + view_size + source_size + 4
    (struct_length,) = struct.unpack("<I", frame.bytes_at(position, 4))
    _cells, cell_size, dimension_count, measurand_count = struct.unpack("<QIII", frame.bytes_at(position + 4, 20))
    position += 4 + struct_length
    if dimension_count + measurand_count > 64 or measurand_count < 1:
        raise Damaged(f"frame {frame.number}: {dimension_count} dimensions and {measurand_count} measurands")
    calibrations = []
    for _ in range(dimension_count + measurand_count):
        calibrations.append(Calibration(frame, position))
        position += calibrations[-1].total
    dimensions, measurands = calibrations[:dimension_count], calibrations[dimension_count:]
    dtypes = [measurand.dtype(frame) for measurand in measurands]
    if sum(dtype.itemsize for dtype in dtypes) != cell_size:
        raise Damaged(f"frame {frame.number}: a cell of {cell_size} bytes holds measurands of {[dtype.itemsize for dtype in dtypes]} bytes")
    if dimensions:
        cells = int(np.prod([dimension.count for dimension in dimensions], dtype=object))
    elif len(measurands) > 1:  # a sweep: the first measurand holds the swept values
        cells = measurands[0].count
    else:
        raise Damaged(f"frame {frame.number}: no dimension and a single measurand")
    if cells < 1 or cells * cell_size > len(frame.body) - position:
        raise Damaged(f"frame {frame.number}: {cells} cells of {cell_size} bytes (declared {data_size}); {len(frame.body) - position} bytes are left")
    record = np.dtype({"names": [f"m{number}" for number in range(len(dtypes))], "formats": dtypes})
    table = np.frombuffer(frame.bytes_at(position, cells * cell_size), record)
    first = 0 if dimensions else 1
    if not dimensions:
        sweep = measurands[0]
        positions, spectroscopic = [], [Dimension(sweep.name or "Sweep", sweep.units, sweep.bias + sweep.scale * table["m0"].astype(np.float64))]
    elif len(dimensions) == 1:
        positions, spectroscopic = [], [dimensions[0].dimension("X" if dimensions[0].units == "m" else "Dim 0")]
    else:
        positions = [dimensions[1].dimension("Y"), dimensions[0].dimension("X")]
        spectroscopic = [dimension.dimension(f"Dim {k}") for k, dimension in enumerate(dimensions[2:], start=2)]
    shape = tuple(dim.size for dim in positions + spectroscopic)
    details = {**frame.header, "parameters": xml_dict(comment) if comment else {}}
    title = title or f"Frame {frame.number}"
    datasets = []
    for number in range(first, len(measurands)):
        measurand = measurands[number]
        values = (measurand.bias + measurand.scale * table[f"m{number}"].astype(np.float64)).reshape(shape)
        name = title if len(measurands) - first == 1 else f"{title} {measurand.name or number}"
        datasets.append(Dataset.from_ndarray(values, positions, spectroscopic, name=name, quantity=_quantity(title),
                                             units=measurand.units, metadata={"ntmdt": {**metadata, "frame": details}}, source=f"{frame.number}"))
    return datasets


READERS = {0: _scanned, 106: _mda}


def _text_frame(frame: Frame) -> str:
    """A text frame's text (its length first, the text after the variables and 8 more bytes)."""
    (length,) = struct.unpack("<I", frame.bytes_at(0, 4))
    return frame.bytes_at(frame.var_size + 8, length).decode("cp1251", errors="replace")


def read_file(path: Path) -> list[Dataset]:
    """Every image of an NT-MDT file (scanned and MDA frames); see the module text."""
    raw = path.read_bytes()
    try:
        found = frames(raw)
        texts = [_text_frame(frame) for frame in found if frame.type == 3]
        not_read = [f"frame {frame.number}: {frame.header['type']}" for frame in found if frame.type not in READERS and frame.type != 3]
        metadata = {"text": texts, "not_read": not_read}
        datasets = []
        for frame in found:
            if frame.type in READERS:
                for dataset in READERS[frame.type](frame, metadata):
                    dataset.source = f"{path}::frame {dataset.source}"
                    datasets.append(dataset)
    except Damaged as error:
        raise UnreadableFileError(f"damaged NT-MDT file: {error}", path) from None
    except ModelError as error:
        raise UnreadableFileError(f"a frame's sizes do not describe its data: {error.message}", path) from None
    if not datasets:
        kinds = ", ".join(frame.header["type"] for frame in found) or "none"
        raise UnreadableFileError(f"no image frame (scanned or MDA) in this NT-MDT file; its frames: {kinds}", path)
    return datasets


class NtmdtFormat(Format):
    name = "ntmdt"
    description = "NT-MDT .mdt files: every scanned and MDA (Nova) image frame, in SI units (read-only)"
    extensions = (".mdt",)
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if head.startswith(MAGIC) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path)


FORMAT = NtmdtFormat()
