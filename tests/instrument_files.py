"""Write small instrument files of the formats no shared file covers (or layouts it lacks), byte by
byte from the published layouts, for the tests and the fuzzer's seeds."""

from __future__ import annotations

import struct

import numpy as np


def mdt_file(*frames: bytes) -> bytes:
    body = b"".join(frames)
    return b"\x01\xb0\x93\xff" + struct.pack("<I4sH18s", len(body), b"", len(frames) - 1, b"") + b"\x00" + body


def mdt_frame(kind: int, variables: bytes, rest: bytes) -> bytes:
    return struct.pack("<IHBB6HH", 22 + len(variables) + len(rest), kind, 0, 7, 2024, 5, 6, 7, 8, 9, len(variables)) + variables + rest


def mdt_scanned(columns: int, rows: int, stored: np.ndarray, title: str) -> bytes:
    """A classic scanned frame: x and y in µm from 1.5 µm by 0.02 µm, z 0.1 nm per count from 5 nm."""
    scales = struct.pack("<ffhffhffh", 1.5, 0.02, -2, 0.0, 0.02, -2, 5.0, 0.1, -1)
    variables = scales + struct.pack("<BBHHHfHBBBBBBfffBBiiB", 0, 1, columns, rows, 0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0.0, 2.5, -0.75, 0, 0, 0, 0, 0)
    encoded = title.encode("cp1251")
    comment = "<Parameters><Scan><Angle>0</Angle></Scan></Parameters>".encode("utf-16-le")
    rest = struct.pack("<4H", 0, columns, rows, 0) + stored.astype("<i2").tobytes() + struct.pack("<I", len(encoded)) + encoded + struct.pack("<I", len(comment)) + comment
    return mdt_frame(0, variables, rest)


def mdt_calibration(name: str, unit: str, bias: float, scale: float, count: int, data_type: int) -> bytes:
    fields = struct.pack("<IIIQdQddQQiI", len(name), 0, len(unit), 1, 0.0, 0, bias, scale, 0, count - 1, data_type, 0)
    return struct.pack("<II", 8 + len(fields) + len(name) + len(unit), len(fields)) + fields + name.encode() + unit.encode()


def mdt_mda(title: str, dimensions: list[bytes], measurands: list[bytes], cell: int, data: bytes) -> bytes:
    name = title.encode("cp1251")
    header = struct.pack("<II32s4s8I", 76, 0, b"", b"", len(name), 0, 0, 0, 0, 0, 0, len(data))
    array = struct.pack("<QIII", 0, cell, len(dimensions), len(measurands))
    variables = struct.pack("<II", 0, len(array)) + array + b"".join(dimensions) + b"".join(measurands)
    return mdt_frame(106, b"", header + name + variables + data)


def nid(channels: list[tuple[dict, np.ndarray]]) -> bytes:
    """A .nid file: [DataSet] listing the channel sections, info and parameter sections, the data."""
    listing = {"Version": "2", "GroupCount": "1", "Gr0-Name": "Scan", "Gr0-Count": str(len(channels))}
    listing.update({f"Gr0-Ch{number}": f"DataSet-0:{number + 1}" for number in range(len(channels))})
    sections = {"DataSet": listing, "DataSet-Info": {"-- Scan --": "", "Scan mode": "Dynamic Force"}, "DataSet\\Parameters\\Imaging": {"ScanRange": "V[5e-6,5e-6]*[m,m]"}}
    sections.update({f"DataSet-0:{number + 1}": header for number, (header, _) in enumerate(channels)})
    text = "\r\n\r\n".join(f"[{name}]\r\n" + "\r\n".join(f"{key}={value}" for key, value in section.items()) for name, section in sections.items())
    return (text + "\r\n\r\n").encode("latin-1") + b"#!" + b"".join(values.tobytes() for _, values in channels)


def nid_channel(frame: str, name: str, unit: str, points: int, lines: int, bits: int, stored: np.ndarray, lateral: str = "m") -> tuple[dict, np.ndarray]:
    header = {"Frame": frame, "Points": points, "Lines": lines, "SaveMode": "Binary", "SaveBits": bits, "SaveSign": "Signed", "SaveOrder": "Intel",
              "Dim0Name": "X*" if frame.startswith("Scan") else "Deflection", "Dim0Unit": lateral, "Dim0Min": "1e-6", "Dim0Range": "5e-6",
              "Dim1Name": "Y*", "Dim1Unit": "m", "Dim1Min": "-2e-6", "Dim1Range": "4e-6", "Dim2Name": name, "Dim2Unit": unit, "Dim2Min": "-2.5e-7", "Dim2Range": "5e-7"}
    return header, stored.astype(f"<i{bits // 8}")


def wsxm(stored: np.ndarray, kind: str = "short", z_amplitude: str = "11.6 nm") -> bytes:
    rows, columns = stored.shape
    lines = ["[Control]", "    X Amplitude: 500 nm", "    Y Amplitude: 250 nm", "    Set Point: 1.2 nA", "",
             "[General Info]", "    Acquisition channel: Topography", f"    Number of columns: {columns}", f"    Number of rows: {rows}",
             *([f"    Image Data Type: {kind}"] if kind != "short" else []), f"    Z Amplitude: {z_amplitude}", "", "[Header end]", ""]
    body = "\r\n".join(lines)
    preamble = "WSxM file copyright UAM\r\nSxM Image file\r\nImage header size: {:5d}\r\n"
    size = len(preamble.format(0)) + len(body)
    values = stored.astype({"short": "<i2", "double": "<f8", "float": "<f4", "int": "<i4"}[kind])
    return (preamble.format(size) + body).encode("latin-1") + values.tobytes()


def mrc(values: np.ndarray) -> bytes:
    """An MRC 2014 file of float32 sections (mode 2): the 1024-byte header, then the values."""
    sections, rows, columns = values.shape
    header = bytearray(1024)
    struct.pack_into("<4i", header, 0, columns, rows, sections, 2)
    struct.pack_into("<3i", header, 28, columns, rows, sections)
    struct.pack_into("<3f", header, 40, float(columns), float(rows), float(sections))
    struct.pack_into("<3i", header, 64, 1, 2, 3)
    header[208:216] = b"MAP DD\x00\x00"
    return bytes(header) + values.astype("<f4").tobytes()
