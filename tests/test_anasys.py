"""Anasys AFM-IR documents: every height map against the XML read here; damaged documents."""

import base64
import gzip
import re

import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry

from conftest import assert_read_fails_cleanly

AXZ = "spm/anasys_afmir.axz"


def maps_of(path):
    """(label, units, prefix, centre, size, resolution, values) of each HeightMap, by regular expressions over the text."""
    text = gzip.decompress(path.read_bytes()).decode("utf-16")
    found = []
    for block in re.findall(r"<HeightMap .*?</HeightMap>", text, flags=re.S):
        number = lambda name, axis: float(re.search(rf"<{name}>.*?<{axis}>([^<]+)</{axis}>", block, flags=re.S).group(1))  # noqa: E731
        prefix = re.search(r"<UnitPrefix>([^<]*)</UnitPrefix>", block)
        columns, rows = int(number("Resolution", "X")), int(number("Resolution", "Y"))
        values = np.frombuffer(base64.b64decode(re.search(r"<SampleBase64>([^<]+)</SampleBase64>", block).group(1)), "<f4").reshape(rows, columns)
        found.append((re.search(r'Label="([^"]*)"', block).group(1), re.search(r"<Units>([^<]*)</Units>", block).group(1), prefix.group(1) if prefix else "",
                      (number("Position", "X"), number("Position", "Y")), (number("Size", "X"), number("Size", "Y")), values))
    return found


def test_every_height_map_in_si_units(shared_data, tmp_path):
    path = shared_data / AXZ
    assert registry.detect(path).name == "anasys"
    expected = maps_of(path)
    datasets = ub.read(path)
    assert [dataset.quantity for dataset in datasets] == [label for label, *_ in expected] and len(datasets) == 68
    for dataset, (label, units, prefix, centre, size, values) in zip(datasets, expected):
        assert dataset.units == units
        np.testing.assert_allclose(dataset.to_ndarray(squeeze=True), values * {"": 1.0, "n": 1e-9}[prefix], rtol=1e-7)
        y, x = dataset.pos.dims
        assert x.values[0] == pytest.approx((centre[0] - size[0] / 2) * 1e-6) and x.scale == pytest.approx(size[0] * 1e-6 / values.shape[1])
        assert y.values[0] == pytest.approx((centre[1] - size[1] / 2) * 1e-6)
    assert ub.validate(ub.write(datasets[:3], tmp_path / "afmir.h5")).ok


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not xml"])
def test_damaged_documents_are_one_clean_error(shared_data, tmp_path, damage):
    raw = (shared_data / AXZ).read_bytes()
    damaged = {"truncated": raw[: len(raw) // 2], "garbage": raw[:10] + np.random.default_rng(8).bytes(4000), "not xml": gzip.compress(b"<Document><HeightMaps>")}[damage]
    path = tmp_path / "damaged.axz"
    assert_read_fails_cleanly(path, damaged)
