"""Bruker / Veeco Nanoscope files (``.spm``, ``.00N``, ``.di``, force curves), parsed here.

A Nanoscope file is a text header of ``\\Key: value`` lines in sections (``\\*Ciao image list``,
``\\*Ciao force image list``, ...) up to ``\\*File list end``, then the channels as little-endian
integers at the ``Data offset`` each section gives. No maintained Python library converts them to
physical units from the header's own scales; the rule is the Nanoscope manual's:

    value = integer × hard scale (per 16-bit LSB) × 2^(16 − 8 · bytes per pixel) × soft scale

where ``\\@2:Z scale: V [Sens. Zsens] (0.005035 V/LSB) 329.99 V`` gives the hard scale (V/LSB) and
names the soft scale, read from ``\\@Sens. Zsens: V 34.55678 nm/V`` (its units give the
channel's: nm; a soft scale without units leaves the hard one's: mV, º).

Mapping between the file and the model:

=============================================  ================================================
file                                           `Dataset`
=============================================  ================================================
each ``\\*Ciao image list`` section            one Dataset, quantity ``\\@2:Image Data``'s
                                               name (``Height Sensor``), in physical units
                                               converted to SI (nm → m, º → deg)
``Samps/line`` × ``Number of lines``,          positions Y (lines, the first stored line first)
``Scan Size: 10 10 ~m``                        then X; pixel k at ``k · size / pixels``
each ``\\*Ciao force image list`` section      one Dataset over the spectroscopic dims
(a force curve: extend then retract)           ``Segment`` (0 extend, 1 retract) × ``Z``: the
                                               ramp, ``Ramp size`` × its soft scale over
                                               ``Samps/line`` points, in m
every header line                              ``metadata["nanoscope"]`` by section
=============================================  ================================================
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile
from usidbridge.units import to_si

MAGICS = (b"\\*File list", b"\\*Force file list", b"?*File list", b"\\*NC Afm list")
HEADER_END = "\\*File list end"
MAX_HEADER_BYTES = 2**22
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"  # what float() takes, so that a match always converts
VALUE = re.compile(rf"^V\s*(?:\[(?P<soft>[^\]]*)\])?\s*(?:\((?P<hard>{NUMBER})\s*(?P<hard_units>[^)]*)/LSB\))?\s*(?P<value>{NUMBER})?\s*(?P<units>.*)$")


def parse_header(text: str) -> list[tuple[str, dict[str, str]]]:
    """The header's sections in file order: (section name, {key: value}); ``\\@2:Z scale`` keeps its group number."""
    sections: list[tuple[str, dict[str, str]]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.lstrip("\x00")
        if line.startswith("\\*"):
            sections.append((line[2:].strip(), {}))
        elif line.startswith("\\") and sections:
            key, _, value = line[1:].partition(": ")
            sections[-1][1].setdefault(key.strip(), value.strip())
    return sections


def si(value: float, units: str) -> tuple[float, str]:
    """A value and its Nanoscope units in SI (nm → m; Nanoscope writes µm as ``~m``)."""
    name, factor = to_si(units.strip().replace("~m", "µm"))
    return value * factor, name


def _key(name: str) -> str:
    """A header key without its CIAO mark and group number: ``@2:Z scale`` → ``Z scale``."""
    return re.sub(r"^@(\d+:)?", "", name.strip()).strip()


def _value_line(header: dict[str, str], key: str) -> re.Match | None:
    return VALUE.match(next((text for name, text in header.items() if _key(name) == key), "") or "\0")


def _soft_scale(sections: list[tuple[str, dict[str, str]]], name: str) -> tuple[float, str]:
    """The soft scale a value names (``Sens. Zsens``): its number, and the units it converts to (nm of nm/V)."""
    for _section, header in sections:
        match = _value_line(header, _key(name))
        if match and match["value"]:
            units = match["units"].strip()
            return float(match["value"]), units.split("/")[0] if "/" in units else ""
    return 1.0, ""


def _scale_of(sections: list[tuple[str, dict[str, str]]], header: dict[str, str], key: str, bytes_per_pixel: int, path: Path) -> tuple[float, str]:
    """Factor from stored integers to SI values for the section's `key` value (``Z scale``), and the SI units."""
    match = _value_line(header, key)
    if not match or not match["hard"]:
        raise UnreadableFileError(f"no {key!r} line with a hard scale (V/LSB) in a data section", path)
    soft, soft_units = _soft_scale(sections, match["soft"]) if match["soft"] else (1.0, "")
    factor = float(match["hard"]) * 2.0 ** (16 - 8 * bytes_per_pixel) * soft
    return si(factor, soft_units or match["hard_units"].strip())


def _channel_name(header: dict[str, str]) -> str:
    image_data = next((text for name, text in header.items() if name.endswith("Image Data")), "")
    quoted = re.search(r'"([^"]*)"', image_data)
    return (quoted.group(1) if quoted else image_data) or "Height"


def _bytes_per_pixel(header: dict[str, str], path: Path) -> int:
    text = header.get("Bytes/pixel", "2")
    if text.strip() not in ("2", "4"):
        raise UnreadableFileError(f"Bytes/pixel is {text[:40]!r}: Nanoscope data are 2 or 4 bytes per value", path)
    return int(text)


def _integers(raw: bytes, header: dict[str, str], count: int, path: Path) -> np.ndarray:
    """The section's `count` stored integers, after checking offset, length and bytes per pixel."""
    size = _bytes_per_pixel(header, path)
    try:
        offset, length = int(header["Data offset"]), int(header["Data length"])
    except (KeyError, ValueError) as error:
        raise UnreadableFileError(f"a data section lacks or garbles Data offset or Data length ({error})", path) from None
    if count < 1 or count * size > length or offset < 0 or offset + count * size > len(raw):
        raise UnreadableFileError(f"{count} values of {size} bytes at byte {offset} (Data length {length}) do not fit the file's {len(raw)} bytes", path)
    return np.frombuffer(raw, f"<i{size}", count=count, offset=offset).astype(np.float64)


def _image(raw: bytes, sections: list, header: dict[str, str], path: Path, metadata: dict[str, Any]) -> Dataset:
    try:
        columns, rows = int(header["Samps/line"].split()[0]), int(header["Number of lines"])
        size = header["Scan Size"].split()
        width, height, size_units = float(size[0]), float(size[1]), size[2] if len(size) > 2 else "nm"
    except (KeyError, ValueError, IndexError) as error:
        raise UnreadableFileError(f"an image section lacks or garbles Samps/line, Number of lines or Scan Size ({error})", path) from None
    factor, units = _scale_of(sections, header, "Z scale", _bytes_per_pixel(header, path), path)
    values = _integers(raw, header, rows * columns, path).reshape(rows, columns) * factor
    width_m, lateral = si(width, size_units)
    height_m, _ = si(height, size_units)
    x = Dimension.uniform("X", lateral, columns, scale=width_m / columns)
    y = Dimension.uniform("Y", lateral, rows, scale=height_m / rows)
    name = _channel_name(header)
    return Dataset.from_ndarray(values, [y, x], name=name, quantity=name, units=units, metadata=metadata, source=f"{path}::{name}")


def _force_curve(raw: bytes, sections: list, header: dict[str, str], path: Path, metadata: dict[str, Any]) -> Dataset:
    try:
        extend, retract = (int(value) for value in header["Samps/line"].split()[:2])
    except (KeyError, ValueError) as error:
        raise UnreadableFileError(f"a force section lacks or garbles Samps/line ({error})", path) from None
    if extend != retract or extend < 1:
        raise UnreadableFileError(f"extend and retract of {extend} and {retract} points: only curves of equal halves are read", path)
    factor, units = _scale_of(sections, header, "Z scale", _bytes_per_pixel(header, path), path)
    ramp = _value_line(header, "Ramp size")
    if not ramp or not ramp["value"] or not ramp["soft"]:
        raise UnreadableFileError("a force section without a Ramp size in physical units", path)
    soft, soft_units = _soft_scale(sections, ramp["soft"])
    ramp_size, ramp_units = si(float(ramp["value"]) * soft, soft_units)
    values = _integers(raw, header, 2 * extend, path).reshape(2, extend) * factor
    name = _channel_name(header)
    segment = Dimension("Segment", "", [0.0, 1.0])
    z = Dimension("Z", ramp_units, np.linspace(0.0, ramp_size, extend))
    return Dataset.from_ndarray(values, [], [segment, z], name=name, quantity=name, units=units, metadata=metadata, source=f"{path}::{name}")


def read_file(path: Path) -> list[Dataset]:
    """Every image or force channel of a Nanoscope file; see the module text."""
    raw = path.read_bytes()
    text = raw[:MAX_HEADER_BYTES].decode("latin-1")
    end = text.find(HEADER_END)
    if end < 0:
        raise UnreadableFileError(f"no {HEADER_END!r} line in the first {MAX_HEADER_BYTES // 2**20} MiB: a truncated or damaged header", path)
    sections = parse_header(text[:end])
    metadata = {"nanoscope": {f"{number:02d} {name}": header for number, (name, header) in enumerate(sections)}}
    datasets = []
    try:
        for name, header in sections:
            if name.lower() == "ciao image list":
                datasets.append(_image(raw, sections, header, path, metadata))
            elif name.lower() == "ciao force image list":
                datasets.append(_force_curve(raw, sections, header, path, metadata))
    except ModelError as error:
        raise UnreadableFileError(f"a section's sizes do not describe its data: {error.message}", path) from None
    if not datasets:
        raise UnreadableFileError("no image or force data section (\\*Ciao image list, \\*Ciao force image list) in the header", path)
    counts, seen = Counter(dataset.quantity for dataset in datasets), Counter()
    for dataset in datasets:  # two channels of one kind (Height trace and retrace) are numbered apart: Height 0, Height 1
        if counts[dataset.quantity] > 1:
            dataset.name = f"{dataset.quantity} {seen[dataset.quantity]}"
            seen[dataset.quantity] += 1
    return datasets


class NanoscopeFormat(Format):
    name = "nanoscope"
    description = "Bruker / Veeco Nanoscope images and force curves (.spm, .00N, .di), in physical units (read-only)"
    extensions = (".spm", ".di", ".001", ".002", ".003", ".004", ".005")
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if head.lstrip(b"\x00").startswith(MAGICS) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path)


FORMAT = NanoscopeFormat()
