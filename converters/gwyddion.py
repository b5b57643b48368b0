"""Gwyddion files: native ``.gwy`` (Gwyddion 2) and Gwyddion Simple Field ``.gsf``, both parsed here.

``.gwy`` is a tree of serialised objects (``GWYP``, then an object: its class name, its size, and
components of a name, a type code and a value; upper-case codes are arrays with a count). gwyfile
reads it, but trusts every count: a damaged count makes it loop for billions of items, filling
the memory (found by fuzzing). `parse_gwy` reads the same tree with every count and size checked
against the bytes left, and a bounded depth; gwyfile is the tests' reference. ``.gsf`` is a text
header of ``Key = Value`` lines, NUL padding to a multiple of four bytes, then little-endian
float32 values. A Gwyddion-1 file (``GWYO``) is refused with the way to re-save it.

Mapping between the file and the model:

=============================================  ================================================
file                                           `Dataset`
=============================================  ================================================
each data field ``/N/data`` (``.gwy``), the    one Dataset, quantity and name its title
one field of a ``.gsf``                        (``/N/data/title``, ``Title``; else
                                               ``Channel N``)
``xres`` × ``yres`` values, row-major, rows    positions Y (rows) then X (columns); pixel k at
down the image                                 ``offset + k · real / res`` (Gwyddion's pixel
                                               size is ``real / res``), in ``si_unit_xy``
``si_unit_z`` / ``ZUnits``                     ``units``; an empty unit is kept (no units),
                                               never a reason to drop the channel
each volume ``/brick/N`` (``xres`` × ``yres``  positions Y, X as above, spectroscopic Z from
× ``zres``)                                    ``zoff + k · zreal / zres`` in ``si_unit_z``, or
                                               its ``zcalibration`` values; units ``si_unit_w``
``/N/meta`` (instrument parameters), logs,     ``metadata["gwyddion"]``
the ``.gsf`` header
=============================================  ================================================

Masks, presentations, graphs and single-point spectra of a ``.gwy`` are not data fields: they
are left out, and named in ``metadata["gwyddion"]["not_read"]``.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile

GWY_MAGIC = b"GWYP"
GWY1_MAGIC = b"GWYO"
GSF_MAGIC = b"Gwyddion Simple Field 1.0\n"
MAX_DEPTH = 64
SCALARS = {"b": "<?", "c": "<S1", "i": "<i4", "q": "<i8", "d": "<f8"}  # type code → numpy dtype
ARRAYS = {"C": "<S1", "I": "<i4", "Q": "<i8", "D": "<f8"}
FIELD_KEY = re.compile(r"^/(\d+)/data$")
BRICK_KEY = re.compile(r"^/brick/(\d+)$")
GSF_MAX_HEADER = 2**20


class Damaged(Exception):
    """A .gwy tree that does not fit its bytes (internal: becomes one UnreadableFileError)."""


class GwyObject(dict):
    """A serialised Gwyddion object: its components by name, its class name in `kind`."""

    def __init__(self, kind: str, components: dict[str, Any]) -> None:
        super().__init__(components)
        self.kind = kind


def _name(buffer: bytes, position: int, limit: int) -> tuple[str, int]:
    end = buffer.find(b"\x00", position, limit)
    if end < 0:
        raise Damaged(f"a name at byte {position} has no end")
    return buffer[position:end].decode("utf-8", errors="replace"), end + 1


def _count(buffer: bytes, position: int, limit: int, item_bytes: int) -> tuple[int, int]:
    """An array's item count, checked against the bytes left (each item takes at least `item_bytes`)."""
    if position + 4 > limit:
        raise Damaged(f"an array count at byte {position} runs past its object")
    (count,) = struct.unpack_from("<I", buffer, position)
    if count * item_bytes > limit - position - 4:
        raise Damaged(f"an array at byte {position} declares {count} items; {limit - position - 4} bytes are left")
    return count, position + 4


def _object(buffer: bytes, position: int, limit: int, depth: int) -> tuple[GwyObject, int]:
    """One object at `position`: class name, size, components; returns it and the position after it."""
    if depth > MAX_DEPTH:
        raise Damaged(f"objects nested deeper than {MAX_DEPTH}")
    kind, position = _name(buffer, position, limit)
    if position + 4 > limit:
        raise Damaged(f"the size of object {kind!r} runs past its parent")
    (size,) = struct.unpack_from("<I", buffer, position)
    position += 4
    end = position + size
    if end > limit:
        raise Damaged(f"object {kind!r} declares {size} bytes; {limit - position} are left")
    components: dict[str, Any] = {}
    while position < end:
        name, position = _name(buffer, position, end)
        if position >= end:
            raise Damaged(f"component {name!r} of {kind!r} has no type")
        code, position = chr(buffer[position]), position + 1
        components[name], position = _value(buffer, position, end, code, depth)
    return GwyObject(kind, components), end


def _value(buffer: bytes, position: int, limit: int, code: str, depth: int) -> tuple[Any, int]:
    """One component value of type `code` at `position`, within its object's `limit`."""
    if code in SCALARS:
        dtype = np.dtype(SCALARS[code])
        if position + dtype.itemsize > limit:
            raise Damaged(f"a value at byte {position} runs past its object")
        return np.frombuffer(buffer, dtype, 1, position)[0].item(), position + dtype.itemsize
    if code == "s":
        return _name(buffer, position, limit)
    if code == "o":
        return _object(buffer, position, limit, depth + 1)
    if code in ARRAYS:
        dtype = np.dtype(ARRAYS[code])
        count, position = _count(buffer, position, limit, dtype.itemsize)
        return np.frombuffer(buffer, dtype, count, position), position + count * dtype.itemsize
    if code in ("S", "O"):
        count, position = _count(buffer, position, limit, 1)
        items = []
        for _ in range(count):
            item, position = _value(buffer, position, limit, code.lower(), depth)
            items.append(item)
        return items, position
    raise Damaged(f"unknown type code {code!r} at byte {position - 1}")


def parse_gwy(raw: bytes) -> GwyObject:
    """The object tree of a .gwy file's bytes (after ``GWYP``); `Damaged` when it does not fit them."""
    root, _end = _object(raw, len(GWY_MAGIC), len(raw), 0)
    return root


def _unit(unit: Any) -> str:
    """The text of a GwySIUnit (empty when the field has none)."""
    if isinstance(unit, dict):
        text = unit.get("unitstr", "")
        return text if isinstance(text, str) else ""
    return ""


def _real(field: Any, key: str, path: Path, where: str) -> float:
    value = field.get(key, 0.0)
    if not isinstance(value, (int, float)) or not np.isfinite(value):
        raise UnreadableFileError(f"{where}: {key} is {value!r}, not a finite number", path)
    return float(value)


def _axis(name: str, units: str, size: int, real: float, offset: float) -> Dimension:
    """Gwyddion's pixel k at ``offset + k · real / size``."""
    return Dimension.uniform(name, units, size, offset=offset, scale=real / size)


def _field(field: Any, title: str, metadata: dict[str, Any], path: Path, where: str) -> Dataset:
    """One data field as an image: positions Y, X."""
    xres, yres = field.get("xres"), field.get("yres")
    values = np.asarray(field.get("data"))
    if not isinstance(xres, int) or not isinstance(yres, int) or xres < 1 or yres < 1 or values.size != xres * yres or values.dtype.kind != "f":
        raise UnreadableFileError(f"{where}: {values.size} values of {values.dtype} for xres {xres!r} × yres {yres!r}", path)
    lateral = _unit(field.get("si_unit_xy"))
    x = _axis("X", lateral, xres, _real(field, "xreal", path, where), _real(field, "xoff", path, where))
    y = _axis("Y", lateral, yres, _real(field, "yreal", path, where), _real(field, "yoff", path, where))
    return Dataset.from_ndarray(values.reshape(yres, xres), [y, x], name=title, quantity=title, units=_unit(field.get("si_unit_z")), metadata=metadata, source=f"{path}::{where}")


def _brick(brick: Any, title: str, metadata: dict[str, Any], path: Path, where: str) -> Dataset:
    """One volume: positions Y, X; spectroscopic Z (its calibration when it has one)."""
    sizes = [brick.get(key) for key in ("xres", "yres", "zres")]
    values = np.asarray(brick.get("data"))
    if not all(isinstance(size, int) and size > 0 for size in sizes) or values.size != int(np.prod(sizes)) or values.dtype.kind != "f":
        raise UnreadableFileError(f"{where}: {values.size} values for xres × yres × zres {sizes}", path)
    xres, yres, zres = sizes
    x = _axis("X", _unit(brick.get("si_unit_x")), xres, _real(brick, "xreal", path, where), _real(brick, "xoff", path, where))
    y = _axis("Y", _unit(brick.get("si_unit_y")), yres, _real(brick, "yreal", path, where), _real(brick, "yoff", path, where))
    calibration = brick.get("calibration")
    calibrated = np.asarray(calibration.get("data")) if isinstance(calibration, dict) else None
    if calibrated is not None and calibrated.size == zres:
        z = Dimension("Z", _unit(calibration.get("si_unit_y")), calibrated)
    else:
        z = _axis("Z", _unit(brick.get("si_unit_z")), zres, _real(brick, "zreal", path, where), _real(brick, "zoff", path, where))
    cube = np.moveaxis(values.reshape(zres, yres, xres), 0, -1)  # Gwyddion stores planes of z
    return Dataset.from_ndarray(np.ascontiguousarray(cube), [y, x], [z], name=title, quantity=title, units=_unit(brick.get("si_unit_w")), metadata=metadata, source=f"{path}::{where}")


def _plain(value: Any) -> Any:
    """A parsed object as plain metadata: objects as dicts (without their arrays), lists as lists."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items() if not isinstance(item, np.ndarray)}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _as_object(value: Any, path: Path, where: str) -> GwyObject:
    if not isinstance(value, GwyObject):
        raise UnreadableFileError(f"{where} is a {type(value).__name__}, not a Gwyddion object", path)
    return value


def read_gwy(path: Path) -> list[Dataset]:
    """Every data field and volume of a Gwyddion 2 file."""
    try:
        container = parse_gwy(path.read_bytes())
    except Damaged as error:
        raise UnreadableFileError(f"damaged Gwyddion file: {error}", path) from None
    keys = list(container.keys())
    fields = sorted((int(match[1]), key) for key in keys if (match := FIELD_KEY.match(key)))
    bricks = sorted((int(match[1]), key) for key in keys if (match := BRICK_KEY.match(key)))
    not_read = sorted(key for key in keys if re.match(r"^/(\d+)/(mask|show)$|^/\d+/graph/|^/sps/", key))
    datasets = []
    try:
        for number, key in fields:
            title = container.get(f"{key}/title") or f"Channel {number}"
            metadata = {"gwyddion": {"channel": number, "meta": _plain(container.get(f"/{number}/meta", {})), "log": _plain(container.get(f"{key}/log", {})), "not_read": not_read}}
            datasets.append(_field(_as_object(container[key], path, key), str(title), metadata, path, key))
        for number, key in bricks:
            title = container.get(f"{key}/title") or f"Volume {number}"
            metadata = {"gwyddion": {"volume": number, "meta": _plain(container.get(f"{key}/meta", {})), "not_read": not_read}}
            datasets.append(_brick(_as_object(container[key], path, key), str(title), metadata, path, key))
    except ModelError as error:
        raise UnreadableFileError(f"a data field does not fit its sizes: {error.message}", path) from None
    if not datasets:
        raise UnreadableFileError("this Gwyddion file holds no data field or volume (graphs and spectra alone are not read)", path)
    return datasets


def read_gsf(path: Path) -> list[Dataset]:
    """The one field of a Gwyddion Simple Field file; see the module text."""
    raw = path.read_bytes()
    end = raw.find(b"\x00", 0, GSF_MAX_HEADER)
    if end < 0:
        raise UnreadableFileError("no end of the header (NUL padding) in its first MiB: not a complete .gsf file", path)
    header: dict[str, str] = {}
    for line in raw[len(GSF_MAGIC) : end].decode("utf-8", errors="replace").splitlines():
        key, separator, value = line.partition("=")
        if separator:
            header[key.strip()] = value.strip()
    start = (end + 4) & ~3  # the padding takes the header to the next multiple of four, with at least one NUL

    def number(key: str, default: float | None = None, kind: type = float) -> Any:
        try:
            value = kind(header[key]) if key in header else default
        except ValueError:
            value = None
        if value is None or not np.isfinite(value):
            raise UnreadableFileError(f"the header's {key} is {header.get(key)!r}, not a number", path)
        return value

    xres, yres = number("XRes", kind=int), number("YRes", kind=int)
    if xres < 1 or yres < 1 or len(raw) - start < 4 * xres * yres:
        raise UnreadableFileError(f"XRes {xres} × YRes {yres} float32 values need {4 * xres * yres} bytes after the header; the file has {len(raw) - start}", path)
    values = np.frombuffer(raw, "<f4", count=xres * yres, offset=start).reshape(yres, xres)
    lateral, title = header.get("XYUnits", ""), header.get("Title") or "Channel 0"
    x = _axis("X", lateral, xres, number("XReal", 1.0), number("XOffset", 0.0))
    y = _axis("Y", lateral, yres, number("YReal", 1.0), number("YOffset", 0.0))
    return [Dataset.from_ndarray(values.copy(), [y, x], name=title, quantity=title, units=header.get("ZUnits", ""), metadata={"gwyddion": {"gsf_header": header}}, source=str(path))]


class GwyddionFormat(Format):
    name = "gwyddion"
    description = "Gwyddion files: .gwy (Gwyddion 2, every data field and volume) and Gwyddion Simple Field .gsf (read-only)"
    extensions = (".gwy", ".gsf")
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if head.startswith((GWY_MAGIC, GWY1_MAGIC, GSF_MAGIC)) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        with open(path, "rb") as handle:
            head = handle.read(len(GSF_MAGIC))
        if head.startswith(GSF_MAGIC):
            return read_gsf(path)
        if head.startswith(GWY1_MAGIC):
            raise UnreadableFileError("a Gwyddion 1 file (GWYO), which no Python library reads: open it in Gwyddion 2 and save it again as .gwy", path)
        return read_gwy(path)


FORMAT = GwyddionFormat()
