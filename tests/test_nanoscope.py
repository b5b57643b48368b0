"""Bruker / Veeco Nanoscope: image channels and a force curve in physical units, against the
integers, scales and sensitivities read from the header here (the Nanoscope manual's rule)."""

import re

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry

from conftest import assert_read_fails_cleanly

IMAGE = "spm/nanoscope_image.di"
FORCE = "spm/bruker_force_curve.001"


def sections(raw: bytes) -> list[str]:
    text = raw[: raw.index(b"\\*File list end")].decode("latin-1")
    return text.split("\\*")


def line(section: str, pattern: str) -> re.Match:
    return re.search(pattern, section, flags=re.M)


def test_image_channels_in_physical_units(shared_data, tmp_path, usid):
    path = shared_data / IMAGE
    raw = path.read_bytes()
    parts = sections(raw)
    header = "".join(parts)
    images = [part for part in parts if part.startswith("Ciao image list")]
    assert registry.detect(path).name == "nanoscope"
    datasets = ub.read(path)
    assert [dataset.quantity for dataset in datasets] == [line(image, r'Image Data: S \[\w*\] "([^"]*)"').group(1) for image in images]
    expected_units = {"Height Sensor": "m", "Amplitude Error": "V", "Phase": "deg", "Height": "m"}
    for image, dataset in zip(images, datasets):
        offset, samples, lines = (int(line(image, rf"^\\{key}: (\d+)").group(1)) for key in ("Data offset", "Samps/line", "Number of lines"))
        scale = line(image, r"^\\@2:Z scale: V \[([^\]]*)\] \(([\d.]+) (\S+)/LSB\)")
        sens = line(header, rf"^\\@{re.escape(scale.group(1))}: V ([\d.]+) ?(\S*)")
        sens_units = sens.group(2).split("/")[0] if "/" in sens.group(2) else ""
        to_si = {"nm": 1e-9, "mV": 1e-3, "º": 1.0}[sens_units or scale.group(3)]
        integers = np.frombuffer(raw, "<i2", count=samples * lines, offset=offset).reshape(lines, samples)
        expected = integers * float(scale.group(2)) * float(sens.group(1)) * to_si
        assert dataset.units == expected_units[dataset.quantity]
        np.testing.assert_allclose(dataset.to_ndarray(squeeze=True), expected, rtol=1e-12)
        y, x = dataset.pos.dims
        assert x.units == y.units == "m" and x.size == samples and x.scale == pytest.approx(10e-6 / samples)  # Scan Size: 10 10 ~m
    out = ub.write(datasets, tmp_path / "image.h5")
    assert ub.validate(out).ok
    with h5py.File(out, "r") as file:
        assert all(usid.hdf_utils.check_if_main(main) for main in usid.hdf_utils.get_all_main(file))


def test_force_curve_over_the_ramp(shared_data, tmp_path):
    path = shared_data / FORCE
    raw = path.read_bytes()
    parts = sections(raw)
    header = "".join(parts)
    force = [part for part in parts if part.startswith("Ciao force image list")]
    deflection, height = ub.read(path)
    offset = int(line(force[0], r"^\\Data offset: (\d+)").group(1))
    integers = np.frombuffer(raw, "<i2", count=1024, offset=offset).reshape(2, 512)
    defl_sens = float(line(header, r"^\\@Sens. DeflSens: V ([\d.]+) nm/V").group(1))
    np.testing.assert_allclose(deflection.to_ndarray(squeeze=True), integers * 0.000375 * defl_sens * 1e-9, rtol=1e-12)
    segment, z = deflection.spec.dims
    zsens = float(line(header, r"^\\@Sens. Zsens: V ([\d.]+) nm/V").group(1))
    ramp = float(line(force[0], r"^\\@4:Ramp size: V \[Sens. Zsens\] \([\d.]+ V/LSB\) ([\d.]+) V").group(1))
    assert (segment.size, z.name, z.units) == (2, "Z", "m") and z.values[-1] == pytest.approx(ramp * zsens * 1e-9)
    assert (deflection.units, height.quantity) == ("m", "Height Sensor")
    assert ub.validate(ub.write([deflection, height], tmp_path / "force.h5")).ok


@pytest.mark.parametrize("damage", ["truncated", "offset lies", "garbage"])
def test_damaged_files_are_one_clean_error(shared_data, tmp_path, damage):
    raw = (shared_data / IMAGE).read_bytes()
    damaged = {
        "truncated": raw[: len(raw) // 2],
        "offset lies": raw.replace(b"\\Data offset: 434176", b"\\Data offset: 934176"),
        "garbage": raw[:12] + np.random.default_rng(6).bytes(3000),
    }[damage]
    path = tmp_path / "damaged.spm"
    assert_read_fails_cleanly(path, damaged)
