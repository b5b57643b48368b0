"""WSxM images (``.top``, ``.stp``, ``.tom``, ``.ch1``…: Nanotec Electronica's WSxM), parsed here.

No library on the package index reads them; the layout is Gwyddion's ``wsxmfile.c``: a text header
(``WSxM file copyright UAM``, ``SxM Image file``, ``Image header size: N``, then ``[Section]``
lines of ``Key: Value`` up to ``[Header end]``) of N bytes, then ``Number of rows`` ×
``Number of columns`` little-endian values of the ``Image Data Type`` (``short`` when absent).

Mapping between the file and the model:

=============================================  ================================================
file                                           `Dataset`
=============================================  ================================================
the image                                      one Dataset, quantity the ``Acquisition
                                               channel`` (``Topography``), else ``Image``
rows × columns values                          positions Y (rows) then X; pixel k at
                                               ``k · X Amplitude / columns`` (``Y Amplitude``),
                                               units in SI (``500 nm`` → 5e-7 m)
values                                         scaled so that their range spans ``Z Amplitude``
                                               (``11.6 nm``), as WSxM and Gwyddion do; units in
                                               SI; ``a.u.`` is no unit
every header line                              ``metadata["wsxm"]`` by section
=============================================  ================================================
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile
from usidbridge.units import to_si

MAGIC = b"WSxM file copyright"
HEADER_SIZE = re.compile(rb"Image header size:\s*(\d+)")
AMPLITUDE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*)$")
DATA_TYPES = {"short": "<i2", "int": "<i4", "float": "<f4", "double": "<f8"}
MAX_HEADER_BYTES = 2**20


def parse_header(text: str) -> dict[str, dict[str, str]]:
    """The header's sections: {section: {key: value}}, up to ``[Header end]``."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif current is not None and ":" in line:
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
    return sections


def _amplitude(sections: dict[str, dict[str, str]], section: str, key: str, path: Path) -> tuple[float, str]:
    """A ``12.5 nm`` value in SI: (value, units); ``a.u.`` has no units."""
    text = sections.get(section, {}).get(key, "")
    match = AMPLITUDE.match(text)
    if not match or not np.isfinite(float(match[1])):
        raise UnreadableFileError(f"[{section}] {key} is {text!r}, not a number and a unit", path)
    units = "" if match[2].strip() == "a.u." else match[2]
    units, factor = to_si(units)
    return float(match[1]) * factor, units


def read_file(path: Path) -> list[Dataset]:
    """The image of a WSxM file; see the module text."""
    raw = path.read_bytes()
    found = HEADER_SIZE.search(raw, 0, 512)
    if not found:
        raise UnreadableFileError("no 'Image header size' line after the WSxM copyright line", path)
    header_size = int(found[1])
    if header_size > min(len(raw), MAX_HEADER_BYTES):
        raise UnreadableFileError(f"the header declares {header_size} bytes; the file has {len(raw)}", path)
    sections = parse_header(raw[:header_size].decode("latin-1"))
    if "Header end" not in sections:
        raise UnreadableFileError("no [Header end] line within the declared header size: a damaged header", path)
    info = sections.get("General Info", {})
    try:
        columns, rows = int(info["Number of columns"]), int(info["Number of rows"])
    except (KeyError, ValueError):
        raise UnreadableFileError(f"[General Info] Number of columns / rows are {info.get('Number of columns')!r} / {info.get('Number of rows')!r}", path) from None
    kind = info.get("Image Data Type", "short").lower()
    if kind not in DATA_TYPES:
        raise UnreadableFileError(f"Image Data Type {kind!r}; WSxM writes {', '.join(DATA_TYPES)}", path)
    dtype = np.dtype(DATA_TYPES[kind])
    if columns < 1 or rows < 1 or header_size + rows * columns * dtype.itemsize > len(raw):
        raise UnreadableFileError(f"{rows} × {columns} values of {kind} after a {header_size}-byte header need {header_size + rows * columns * dtype.itemsize} bytes; the file has {len(raw)}", path)
    stored = np.frombuffer(raw, dtype, rows * columns, header_size).astype(np.float64).reshape(rows, columns)
    if not np.isfinite(stored).all():
        raise UnreadableFileError("the image holds values that are not finite numbers", path)
    z_amplitude, units = _amplitude(sections, "General Info", "Z Amplitude", path)
    spread = np.ptp(stored)
    values = stored * (z_amplitude / spread if spread else 1.0)
    width, lateral = _amplitude(sections, "Control", "X Amplitude", path)
    height, _ = _amplitude(sections, "Control", "Y Amplitude", path) if "Y Amplitude" in sections.get("Control", {}) else (width, lateral)
    quantity = info.get("Acquisition channel") or "Image"
    try:
        x = Dimension.uniform("X", lateral, columns, scale=width / columns)
        y = Dimension.uniform("Y", lateral, rows, scale=height / rows)
        return [Dataset.from_ndarray(values, [y, x], name=quantity, quantity=quantity, units=units, metadata={"wsxm": sections}, source=str(path))]
    except ModelError as error:
        raise UnreadableFileError(f"the header's sizes do not describe the image: {error.message}", path) from None


class WsxmFormat(Format):
    name = "wsxm"
    description = "WSxM images (.top, .stp, .tom, …): the image in SI units (read-only)"
    extensions = (".top", ".stp", ".tom")
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if head.startswith(MAGIC) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path)


FORMAT = WsxmFormat()
