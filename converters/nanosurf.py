"""Nanosurf files (``.nid``, and the older ``.ezd``), parsed here.

Nanosurf's own reader on the package index (NSFopen 2.2.4) does not import (its ``_version.py``
is empty), pulls pandas, SciPy and matplotlib, keeps only channels of a fixed list of frame
names and returns no lateral axes; the layout is simple, so it is read here, as Gwyddion's
``ezdfile.c`` reads it. The file is an INI-like text header (``[Section]``, ``Key=Value``) that
ends at ``#!``, then the channels' integers, one after the other, in the order the
``[DataSet]`` section lists them (``Gr0-Ch0``, ``Gr0-Ch1``, …, each naming its own section).

Mapping between the file and the model:

=============================================  ================================================
file                                           `Dataset`
=============================================  ================================================
each channel section (``Frame=Scan forward``,  one Dataset, named ``Frame`` + ``Dim2Name``
``Dim2Name=Topography``)                       (``Scan forward Topography``), quantity
                                               ``Dim2Name``
``Points`` × ``Lines`` integers of             positions Y (lines) then X; pixel k at ``Min +
``SaveBits`` (16 or 32, signed, Intel order)   k · Range / Points`` of ``Dim0`` / ``Dim1``
value n                                        ``Dim2Min + (n + 2^(bits-1)) / 2^bits ·
                                               Dim2Range``, in ``Dim2Unit``; units in SI
``Spec …`` frames (a curve per line)           positions ``Curve`` (the line), spectroscopic
                                               ``Dim0`` (the sweep, named by ``Dim0Name``)
every other section                            ``metadata["nanosurf"]``
=============================================  ================================================
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile
from usidbridge.units import to_si

MAGIC = b"[DataSet]"
DATA_MARK = b"#!"
MAX_HEADER_BYTES = 2**24
CHANNEL_KEY = re.compile(r"^Gr(\d+)-Ch(\d+)$")


def parse_header(text: str, path: Path) -> dict[str, dict[str, str]]:
    """The header's sections: {section: {key: value}}; comment lines (``--``) are skipped."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("--"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif current is None:
            raise UnreadableFileError(f"text before the first [section] of the header: {line[:60]!r}", path)
        else:
            key, separator, value = line.partition("=")
            if separator:
                current[key.strip()] = value.strip()
    return sections


def _number(section: dict[str, str], key: str, name: str, path: Path, kind: type = float) -> Any:
    try:
        value = kind(section[key])
    except (KeyError, ValueError):
        raise UnreadableFileError(f"section [{name}]: {key} is {section.get(key)!r}, not a number", path) from None
    if not np.isfinite(value):
        raise UnreadableFileError(f"section [{name}]: {key} is {value}", path)
    return value


def _axis(section: dict[str, str], number: int, size: int, dim_name: str, name: str, path: Path) -> Dimension:
    units, factor = to_si(section.get(f"Dim{number}Unit", ""))
    low = _number(section, f"Dim{number}Min", name, path) if f"Dim{number}Min" in section else 0.0
    extent = _number(section, f"Dim{number}Range", name, path) if f"Dim{number}Range" in section else float(size)
    return Dimension.uniform(dim_name, units, size, offset=low * factor, scale=extent * factor / size)


def _channel(section: dict[str, str], name: str, raw: memoryview, path: Path, metadata: dict[str, Any]) -> tuple[Dataset, int]:
    """One channel from the start of `raw`; returns it and the bytes it took."""
    columns, rows, bits = (_number(section, key, name, path, int) for key in ("Points", "Lines", "SaveBits"))
    if bits not in (16, 32) or columns < 1 or rows < 1:
        raise UnreadableFileError(f"section [{name}]: {columns} points × {rows} lines of {bits} bits (16 or 32 bits are read)", path)
    if section.get("SaveSign", "Signed") != "Signed" or section.get("SaveOrder", "Intel") != "Intel":
        raise UnreadableFileError(f"section [{name}]: {section.get('SaveSign')} {section.get('SaveOrder')} integers; only signed Intel-order ones are read", path)
    length = columns * rows * bits // 8
    if length > len(raw):
        raise UnreadableFileError(f"section [{name}] needs {length} bytes of data; {len(raw)} are left after the header and the channels before it", path)
    stored = np.frombuffer(raw[:length], f"<i{bits // 8}").astype(np.float64).reshape(rows, columns)
    units, factor = to_si(section.get("Dim2Unit", ""))
    low, extent = _number(section, "Dim2Min", name, path), _number(section, "Dim2Range", name, path)
    values = (low + (stored + 2.0 ** (bits - 1)) / 2.0**bits * extent) * factor
    frame, quantity = section.get("Frame", name), section.get("Dim2Name", name)
    if frame.startswith("Spec"):
        positions, spectroscopic = [Dimension.uniform("Curve", "", rows)], [_axis(section, 0, columns, section.get("Dim0Name") or "Sweep", name, path)]
    else:
        positions, spectroscopic = [_axis(section, 1, rows, "Y", name, path), _axis(section, 0, columns, "X", name, path)], []
    dataset = Dataset.from_ndarray(values, positions, spectroscopic, name=f"{frame} {quantity}", quantity=quantity, units=units,
                                   metadata={"nanosurf": {**metadata, "channel": section}}, source=f"{path}::{name}")
    return dataset, length


def read_file(path: Path) -> list[Dataset]:
    """Every channel of a Nanosurf file, in the order of its ``[DataSet]`` list; see the module text."""
    raw = path.read_bytes()
    end = raw.find(DATA_MARK, 0, MAX_HEADER_BYTES)
    if end < 0:
        raise UnreadableFileError(f"no {DATA_MARK.decode()} mark ending the header in the first {MAX_HEADER_BYTES // 2**20} MiB: a truncated or damaged file", path)
    sections = parse_header(raw[:end].decode("latin-1"), path)
    listing = sections.get("DataSet", {})
    names = [listing[key] for key in sorted((key for key in listing if CHANNEL_KEY.match(key)), key=lambda key: tuple(map(int, CHANNEL_KEY.match(key).groups())))]
    missing = [name for name in names if name not in sections]
    if missing or not names:
        raise UnreadableFileError(f"the [DataSet] section lists channels {names} and the header lacks {missing}", path)
    metadata = {name: section for name, section in sections.items() if name not in names}
    data, datasets = memoryview(raw)[end + len(DATA_MARK) :], []
    try:
        for name in names:
            dataset, length = _channel(sections[name], name, data, path, metadata)
            datasets.append(dataset)
            data = data[length:]
    except ModelError as error:
        raise UnreadableFileError(f"a channel's sizes do not describe its data: {error.message}", path) from None
    return datasets


class NanosurfFormat(Format):
    name = "nanosurf"
    description = "Nanosurf .nid / .ezd files: every image and spectroscopy channel, in SI units (read-only)"
    extensions = (".nid", ".ezd")
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if head.lstrip(b"\xef\xbb\xbf").startswith(MAGIC) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path)


FORMAT = NanosurfFormat()
