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


SFS_FILETIME = 132_000_000_000_000_000  # 2019, in 100 ns since 1601


def sfs(files: dict[str, bytes], chunk_size: int = 4096) -> bytes:
    """A Bruker SFS container (AidAim's single-file system, what a .bcf is) holding `files` by their
    paths ("EDSDatabase/HeaderData"): the header, the file tree (512-byte items: pointer-table chunk,
    size, times, parent, folder flag, name) and each file as a pointer table and its data chunks. Chunk
    k starts at 0x118 + k x chunk_size with the number of the next chunk of the same table and 28 more
    bytes; the header fills chunk 0. Uncompressed (no AACS blocks)."""
    usable = chunk_size - 32
    chunks: list[bytes] = [b""]  # chunk 0: the header

    def add(data: bytes) -> int:
        """Store `data` in new chunks, each naming the next; the number of the first."""
        first = len(chunks)
        pieces = [data[start : start + usable] for start in range(0, max(1, len(data)), usable)]
        for number, piece in enumerate(pieces):
            following = first + number + 1 if number + 1 < len(pieces) else 0
            chunks.append(struct.pack("<I28x", following) + piece.ljust(usable, b"\x00"))
        return first

    folders = sorted({path.rsplit("/", 1)[0] for path in files if "/" in path})
    names = folders + list(files)
    per_chunk = usable // 512  # whole items in each chunk of the tree
    tree_chunk = add(b"\x00" * (usable * -(-len(names) // per_chunk)))  # filled in below, once the files' chunks are known
    items = []
    for name in names:
        parent = folders.index(name.rsplit("/", 1)[0]) if "/" in name else -1
        if name in files:
            data = files[name]
            pointers = [add(data[start : start + usable]) for start in range(0, len(data), usable)]
            table = add(np.array(pointers, dtype="<u4").tobytes())
            items.append(struct.pack("<iQQQQIi176s?3s256s32s", table, len(data), SFS_FILETIME, SFS_FILETIME, SFS_FILETIME, 0, parent, b"", False, b"", name.rsplit("/", 1)[-1].encode(), b""))
        else:
            items.append(struct.pack("<iQQQQIi176s?3s256s32s", -1, 0, SFS_FILETIME, SFS_FILETIME, SFS_FILETIME, 0, parent, b"", True, b"", name.rsplit("/", 1)[-1].encode(), b""))
    tree = b"".join(items)
    for number in range(-(-len(items) // per_chunk)):
        part = tree[number * per_chunk * 512 : (number + 1) * per_chunk * 512]
        chunks[tree_chunk + number] = chunks[tree_chunk + number][:32] + part.ljust(usable, b"\x00")
    header = bytearray(0x118 + chunk_size)
    header[:8] = b"AAMVHFSS"
    struct.pack_into("<fI", header, 0x124, 2.6, chunk_size)
    struct.pack_into("<3I", header, 0x140, tree_chunk, len(items), len(chunks))
    return bytes(header) + b"".join(chunk.ljust(chunk_size, b"\x00") for chunk in chunks[1:])


def bcf(counts: np.ndarray, image: np.ndarray, channel_ev: float = 10.0, pixel_um: float = 0.5, beam_kv: float = 20.0) -> bytes:
    """A Bruker .bcf EDS hypermap: `counts` (height x width x channels, the X-rays counted in each
    channel of each pixel) stored as 16-bit pulse lists, `image` (height x width uint16) as the
    electron image, and the header XML RosettaSciIO reads (the sum spectrum, the energy calibration
    of `channel_ev` eV per channel, `pixel_um` µm pixels, the beam voltage), in an SFS container."""
    import base64
    import zlib

    height, width, channels = counts.shape
    layers = base64.b64encode(zlib.compress(b"<DetLayers><Layer0 Atom='14' Thickness='0.029'/></DetLayers>")).decode()
    xml = f"""<?xml version="1.0" encoding="WINDOWS-1252" standalone="yes"?><TRTSpectrumDatabase><ClassInstance Type="TRTSpectrumDatabase" Name="Map test">
<Header><Date>2.12.2026</Date><Time>10:30:00</Time><FileVersion>1</FileVersion></Header>
<ClassInstance Type="TRTSEMData"><HV>{beam_kv}</HV><Mag>1000</Mag><DX>{pixel_um}</DX><DY>{pixel_um}</DY></ClassInstance>
<ClassInstance Type="TRTSEMStageData"><State>0</State></ClassInstance>
<ClassInstance Type="TRTDSPConfiguration"><ImageWidth>{width}</ImageWidth><ImageHeight>{height}</ImageHeight><PixelAverage>1</PixelAverage><LineAverage>1</LineAverage><PixelTime>10</PixelTime></ClassInstance>
<ClassInstance Type="TRTImageData"><ItemSize>2</ItemSize><Width>{width}</Width><Height>{height}</Height><PlaneCount>1</PlaneCount>
<Plane0><Description>BSE</Description><Data>{base64.b64encode(image.astype("<u2").tobytes()).decode()}</Data></Plane0></ClassInstance>
<LineCounter>{",".join(["1"] * height)}</LineCounter><ChCount>{channels}</ChCount><DetectorCount>1</DetectorCount>
<SpectrumData0><ClassInstance Type="TRTSpectrum"><TRTHeaderedClass>
<ClassInstance Type="TRTSpectrumHardwareHeader"><Amplification>{channels * channel_ev:g}</Amplification><RealTime>1000</RealTime><LifeTime>900</LifeTime></ClassInstance>
<ClassInstance Type="TRTDetectorHeader"><Type>XFlash test</Type><DetLayers>{layers}</DetLayers></ClassInstance>
<ClassInstance Type="TRTESMAHeader"><PrimaryEnergy>{beam_kv}</PrimaryEnergy><ElevationAngle>35</ElevationAngle></ClassInstance>
</TRTHeaderedClass><ClassInstance Type="TRTSpectrumHeader"><Date>2.12.2026</Date><Time>10:30:00</Time><ChannelCount>{channels}</ChannelCount><CalibAbs>0</CalibAbs><CalibLin>{channel_ev / 1000:g}</CalibLin></ClassInstance>
<Channels>{",".join(str(int(value)) for value in counts.sum(axis=(0, 1)))}</Channels></ClassInstance></SpectrumData0>
</ClassInstance></TRTSpectrumDatabase>"""
    stream = bytearray(struct.pack("<ii", height, width).ljust(0x1A0, b"\x00"))
    for row in range(height):
        stream += struct.pack("<i", width)
        for column in range(width):
            pulses = np.repeat(np.arange(channels, dtype="<u2"), counts[row, column]).tobytes()
            stream += struct.pack("<IHHIHHHI", column, channels, channels, 0, 0, 0, len(pulses) // 2, len(pulses)) + pulses
    return sfs({"EDSDatabase/HeaderData": xml.encode("cp1252"), "EDSDatabase/SpectrumData0": bytes(stream)})
