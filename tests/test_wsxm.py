"""WSxM images built here from the published layout (a text header of a declared size, then the
values): the image against values the test computes from the header; damaged files."""

import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry

from conftest import assert_read_fails_cleanly
from instrument_files import wsxm


@pytest.mark.parametrize("kind", ["short", "double"])
def test_image_against_its_header(tmp_path, same_units, kind):
    stored = np.random.default_rng(6).integers(-2000, 3000, (5, 8)).astype(float)
    path = tmp_path / "scan.top"
    path.write_bytes(wsxm(stored, kind))
    assert registry.detect(path).name == "wsxm"
    (dataset,) = ub.read(path)
    assert dataset.quantity == "Topography" and same_units(dataset.units, "m")
    values = dataset.to_ndarray(squeeze=True)
    np.testing.assert_allclose(values, stored * 11.6e-9 / np.ptp(stored), rtol=1e-12)
    assert np.ptp(values) == pytest.approx(11.6e-9)
    y, x = dataset.pos.dims
    assert x.scale == pytest.approx(500e-9 / 8) and y.scale == pytest.approx(250e-9 / 5) and same_units(x.units, "m")
    assert dataset.metadata["wsxm"]["Control"]["Set Point"] == "1.2 nA"
    assert ub.validate(ub.write([dataset], tmp_path / "scan.h5")).ok


def test_arbitrary_units_are_no_units(tmp_path):
    path = tmp_path / "phase.top"
    path.write_bytes(wsxm(np.arange(12.0).reshape(3, 4), z_amplitude="2 a.u."))
    (dataset,) = ub.read(path)
    assert dataset.units == "" and np.ptp(dataset.to_ndarray()) == pytest.approx(2.0)


@pytest.mark.parametrize("damage", ["truncated", "header size lies", "no header end", "unknown type", "garbage"])
def test_damaged_files_are_one_clean_error(tmp_path, damage):
    good = wsxm(np.ones((5, 8)))
    damaged = {
        "truncated": good[:-7],
        "header size lies": good.replace(b"Image header size:  ", b"Image header size: 9"),
        "no header end": good.replace(b"[Header end]", b"[Header and]"),
        "unknown type": wsxm(np.ones((5, 8)), "int").replace(b"Data Type: int", b"Data Type: hex"),
        "garbage": good[:30] + np.random.default_rng(9).bytes(2000),
    }[damage]
    assert_read_fails_cleanly(tmp_path / "damaged.top", damaged)
