"""Previews: an image, a line, or a map with its mean spectrum, axes labelled "label (units)"."""

import subprocess
import sys

import numpy as np
import pytest

import usidbridge as ub
from usidbridge.preview import figure, preview

from conftest import FIXTURES, need


@pytest.fixture(scope="module", autouse=True)
def matplotlib():
    return need("matplotlib")


def labels(fig):
    return [(axes.get_xlabel(), axes.get_ylabel()) for axes in fig.axes if axes.get_visible() and axes.get_label() != "<colorbar>"]


def test_kinds_of_pictures(shared_data):
    image = figure(ub.read(shared_data / "usid" / "simulated_STEM_Image.h5"))
    assert labels(image)[0] == ("X (nm)", "Y (nm)")
    curve = figure(ub.read(shared_data / "usid" / "AFM_Force_Curve.h5"))
    assert labels(curve)[0] == ("Z (m)", "Deflection (m)")
    spectral_map = figure(ub.read(FIXTURES / "pyusid_iv_map.h5"))
    assert labels(spectral_map)[:2] == [("X (um)", "Y (um)"), ("Bias (V)", "Current (A)")]


def test_preview_writes_a_png_for_every_fixture(tmp_path):
    import matplotlib.image

    for path in sorted(FIXTURES.iterdir()):
        if path.suffix in (".py", ".md"):
            continue
        out = preview(ub.read(path, lazy=True), tmp_path / f"{path.stem}.png")
        picture = matplotlib.image.imread(out)
        assert picture.ndim == 3 and picture.shape[0] > 100 and np.ptp(picture) > 0


def test_non_grid_and_complex_data(tmp_path):
    indices = np.array([[0, 0], [1, 0], [0, 1]], np.uint32)
    sparse = ub.Dataset(np.arange(3.0).reshape(3, 1) * (1 + 1j), ub.Ancillary.from_table(["y", "x"], ["m", "m"], indices, indices * 2.0), ub.Ancillary([ub.Dimension("arb", "a.u.", [0.0])]), quantity="Response", units="V")
    assert labels(figure([sparse]))[0] == ("x (m)", "y (m)")


def test_preview_command(tmp_path):
    out = tmp_path / "iv.png"
    result = subprocess.run([sys.executable, "-m", "usidbridge", "preview", str(FIXTURES / "pyusid_iv_map.h5"), "-o", str(out)], capture_output=True, text=True)
    assert result.returncode == 0 and out.stat().st_size > 1000
