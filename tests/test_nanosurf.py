"""Nanosurf .nid files built here from the published layout (an INI header up to ``#!``, then the
channels' integers): every channel against values the test computes from the header; damaged
files."""

import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry

from conftest import assert_read_fails_cleanly
from instrument_files import nid, nid_channel


def expected(stored: np.ndarray, bits: int) -> np.ndarray:
    return -2.5e-7 + (stored + 2.0 ** (bits - 1)) / 2.0**bits * 5e-7


def test_every_channel_against_its_header(tmp_path, same_units, usid):
    rng = np.random.default_rng(11)
    topography, phase, curves = rng.integers(-30000, 30000, (4, 6)), rng.integers(-2**30, 2**30, (4, 6)), rng.integers(-30000, 30000, (3, 8))
    path = tmp_path / "session.nid"
    path.write_bytes(nid([
        nid_channel("Scan forward", "Z-Axis", "m", 6, 4, 16, topography),
        nid_channel("Scan backward", "Phase", "deg", 6, 4, 32, phase),
        nid_channel("Spec forward", "Deflection", "V", 8, 3, 16, curves, lateral="nm"),
    ]))
    assert registry.detect(path).name == "nanosurf"
    forward, backward, spectra = ub.read(path)
    assert [d.name for d in (forward, backward, spectra)] == ["Scan forward Z-Axis", "Scan backward Phase", "Spec forward Deflection"]
    np.testing.assert_allclose(forward.to_ndarray(squeeze=True), expected(topography, 16), rtol=1e-12)
    np.testing.assert_allclose(backward.to_ndarray(squeeze=True), expected(phase, 32), rtol=1e-12)
    assert same_units(forward.units, "m") and same_units(backward.units, "degree")
    y, x = forward.pos.dims
    np.testing.assert_allclose(x.values, 1e-6 + 5e-6 / 6 * np.arange(6), rtol=1e-12)
    np.testing.assert_allclose(y.values, -2e-6 + 4e-6 / 4 * np.arange(4), rtol=1e-12)
    assert [dim.name for dim in spectra.pos.dims] == ["Curve"] and spectra.spec.dims[0].name == "Deflection"
    np.testing.assert_allclose(spectra.spec.dims[0].values, (1e-6 + 5e-6 / 8 * np.arange(8)) * 1e-9, rtol=1e-12)  # nm in the header
    np.testing.assert_allclose(spectra.to_ndarray(), expected(curves, 16) * 1.0, rtol=1e-12)
    assert forward.metadata["nanosurf"]["DataSet-Info"]["Scan mode"] == "Dynamic Force"
    out = ub.write([forward, backward, spectra], tmp_path / "session.h5")
    assert ub.validate(out).ok


@pytest.mark.parametrize("damage", ["truncated", "no data mark", "missing channel section", "bits", "garbage"])
def test_damaged_files_are_one_clean_error(tmp_path, damage):
    good = nid([nid_channel("Scan forward", "Z-Axis", "m", 6, 4, 16, np.zeros((4, 6)))])
    damaged = {
        "truncated": good[:-10],
        "no data mark": good.replace(b"#!", b"##"),
        "missing channel section": good.replace(b"[DataSet-0:1]", b"[Other]"),
        "bits": good.replace(b"SaveBits=16", b"SaveBits=12"),
        "garbage": good[:20] + np.random.default_rng(4).bytes(3000),
    }[damage]
    assert_read_fails_cleanly(tmp_path / "damaged.nid", damaged)
