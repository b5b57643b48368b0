"""Write small USID files with plain h5py (not with usidbridge), optionally breaking one rule."""

from __future__ import annotations

import h5py
import numpy as np

BOOKKEEPING = {"timestamp": "2024_01_02-03_04_05", "machine_id": "test", "platform": "test", "pyUSID_version": "0.0.12"}


def write_ancillary(group, kind, indices, values, labels, units):
    """Indices and Values datasets with labels and units; returns (indices, values)."""
    pair = []
    for name, table in (("Indices", indices), ("Values", values)):
        dataset = group.create_dataset(f"{kind}_{name}", data=table)
        dataset.attrs["labels"] = np.array([label.encode() for label in labels])
        dataset.attrs["units"] = np.array([unit.encode() for unit in units])
        pair.append(dataset)
    return pair


def compliant_file(path, data=None, chunks=None):
    """A 2 x 3 position grid (Y, X) by 4 spectral points (Bias), columns slowest first: no findings."""
    data = np.arange(24, dtype=np.float32).reshape(6, 4) if data is None else data
    with h5py.File(path, "w") as file:
        measurement = file.create_group("Measurement_000")
        channel = measurement.create_group("Channel_000")
        for group in (measurement, channel):
            group.attrs.update(BOOKKEEPING)
        pos_indices = np.array([[y, x] for y in range(2) for x in range(3)], dtype=np.uint32)
        pos = write_ancillary(channel, "Position", pos_indices, pos_indices * np.float32(0.5), ["Y", "X"], ["nm", "nm"])
        spec_indices = np.arange(4, dtype=np.uint32)[None, :]
        spec = write_ancillary(channel, "Spectroscopic", spec_indices, np.array([[-1, 0, 1, 3]], dtype=np.float32), ["Bias"], ["V"])
        main = channel.create_dataset("Raw_Data", data=data, chunks=chunks)
        main.attrs.update(BOOKKEEPING)
        main.attrs["quantity"] = "Current"
        main.attrs["units"] = "nA"
        for name, target in zip(
            ("Position_Indices", "Position_Values", "Spectroscopic_Indices", "Spectroscopic_Values"), pos + spec
        ):
            main.attrs[name] = target.ref
    return path
