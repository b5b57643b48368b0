"""Previews: what a scientist would show. Images, lines, maps with their mean spectrum, true-colour
RGB, amplitude and phase of complex data, axes in the unit's natural prefix, a figure that fills its canvas."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import usidbridge as ub
from usidbridge.preview import figure, natural_units, preview

from conftest import FIXTURES, fixture_files, need
from strategies import datasets


@pytest.fixture(scope="module", autouse=True)
def matplotlib():
    module = need("matplotlib")
    module.use("Agg")
    return module


def plots(fig):
    return [axes for axes in fig.axes if axes.get_visible() and axes.get_label() != "<colorbar>"]


def labels(fig):
    return [(axes.get_xlabel(), axes.get_ylabel()) for axes in plots(fig)]


def drawn(fig):
    fig.canvas.draw()
    return fig


def test_kinds_of_pictures(shared_data):
    image = figure(ub.read(shared_data / "usid" / "simulated_STEM_Image.h5"))
    assert labels(image)[0] == ("X (×10⁻⁹ nm)", "Y (×10⁻⁹ nm)")  # the file stores metres under "nm": shown as it says, no stray multiplier
    curve = figure(ub.read(shared_data / "usid" / "AFM_Force_Curve.h5"))
    assert labels(curve)[0] == ("Z (µm)", "Deflection (nm)")  # one position: its spectrum, not a "mean"
    spectral_map = figure(ub.read(FIXTURES / "pyusid_iv_map.h5"))
    assert labels(spectral_map)[:2] == [("X (um)", "Y (um)"), ("Bias (V)", "mean Current (pA)")]


@pytest.mark.parametrize(
    ("values", "units", "expected"),
    [
        ([0, 0.0014], "m", (1e3, "mm")),
        ([0, 5e-6], "m", (1e6, "µm")),
        ([300e3, 335e3], "Hz", (1e-3, "kHz")),
        ([1.0, 2.0], "V", (1.0, "V")),
        ([0, 5000], "nm", (1.0, "nm")),  # a prefix the writer chose is kept
        ([0, 2e6], "counts", (1e-6, "×10⁶ counts")),
        ([0, 1e-9], "", (1e9, "×10⁻⁹")),
        ([0, 0], "m", (1.0, "m")),
    ],
)
def test_natural_units(values, units, expected):
    factor, shown = natural_units(np.array(values, float), units)
    assert shown == expected[1] and factor == pytest.approx(expected[0])


def test_no_multiplier_text_on_any_axis(shared_data):
    """matplotlib's offset text ('1e-6') sits on the title or the colour bar; the units carry the scale instead."""
    for path in [shared_data / "usid" / "SingFreqPFM_0003.h5", shared_data / "tiff" / "FEI-Helios-Ebeam-8bits.tif", FIXTURES / "pyusid_iv_map.h5"]:
        fig = drawn(figure(ub.read(path)))
        offsets = [axis.get_offset_text().get_text() for axes in fig.axes for axis in (axes.xaxis, axes.yaxis)]
        assert not any(offsets), (path.name, offsets)
    assert labels(figure(ub.read(shared_data / "tiff" / "FEI-Helios-Ebeam-8bits.tif")))[0] == ("X (mm)", "Y (mm)")


def test_rgb_in_true_colour(shared_data):
    fig = figure(ub.read(shared_data / "tiff" / "optical_Zeiss_AxioVision_RGB.tif"))
    (axes,) = plots(fig)
    picture = axes.get_images()[0].get_array()
    assert picture.shape == (10, 13, 3)  # colour samples, not a colour-mapped field
    assert not any(axes.get_label() == "<colorbar>" for axes in fig.axes)
    red = np.asarray(ub.read(shared_data / "tiff" / "optical_Zeiss_AxioVision_RGB.tif")[0].data)["red"].reshape(10, 13)
    assert np.corrcoef(picture[..., 0].ravel(), red.ravel())[0, 1] > 0.99


def test_complex_shows_amplitude_and_phase():
    fig = figure(ub.read(FIXTURES / "pyusid_complex_response.h5"))
    titles = [axes.get_title() for axes in plots(fig)]
    assert titles[1:] == ["amplitude of mean Response", "phase of mean Response"]
    assert labels(fig)[2][1] == "phase of mean Response (rad)"
    values = np.exp(1j * np.linspace(0, 3, 64)).reshape(8, 8) * 2
    image = ub.Dataset.from_ndarray(values, [ub.Dimension("Y", "m", 8), ub.Dimension("X", "m", 8)], quantity="Field", units="V")
    amplitude, phase = plots(figure([image]))
    assert np.allclose(amplitude.get_images()[0].get_array(), 2)
    assert np.allclose(phase.get_images()[0].get_array(), np.angle(values))


def test_a_single_panel_fills_its_canvas(shared_data):
    fig = drawn(figure(ub.read(shared_data / "tiff" / "test_tiff_Zeiss_SEM_512pix.tif")))
    (axes,) = plots(fig)
    box = axes.get_position()
    assert box.width > 0.6 and fig.get_figwidth() < 6  # one panel wide, not half of an empty two-panel row


def test_position_by_spectrum_panel_is_readable():
    """An MCA over a scanned motor: the image fills its panel (no square pixels between unrelated axes)."""
    scan = next(d for d in ub.read(FIXTURES / "demo_scans.spec") if d.quantity == "MCA")
    fig = drawn(figure([scan]))
    image, spectrum = plots(fig)
    assert image.get_aspect() == "auto" and image.get_position().width > 0.3
    assert image.get_xlabel().startswith("Energy") and spectrum.get_ylabel().startswith("mean MCA")
    ticks = [label.get_window_extent() for label in image.get_xticklabels() if label.get_text()]
    assert all(left.x1 < right.x0 for left, right in zip(ticks, ticks[1:]))  # tick labels do not overlap


def test_spectral_images_per_position(shared_data):
    """A stack of camera frames over time: a line over time and the mean frame, in the frame's units."""
    fig = figure(ub.read(shared_data / "rosettasciio" / "emd" / "velox_tem_stack.emd"))
    line, image = plots(fig)
    assert line.get_xlabel() == "Time (ms)" and image.get_images()[0].get_array().shape == (3, 3)


def test_preview_writes_a_png_for_every_fixture(tmp_path):
    import matplotlib.image

    for path in fixture_files():
        out = preview(ub.read(path, lazy=True), tmp_path / f"{path.stem}.png")
        picture = matplotlib.image.imread(out)
        assert picture.ndim == 3 and picture.shape[0] > 100 and np.ptp(picture) > 0


def test_preview_of_every_shared_file(shared_data, tmp_path):
    for path in sorted(shared_data.rglob("*")):
        if path.is_dir() or path.suffix in (".md", ".ser"):
            continue
        out = preview(ub.read(path, lazy=True), tmp_path / f"{path.name}.png")
        assert out.stat().st_size > 5000, path


def test_non_grid_and_complex_data(tmp_path):
    indices = np.array([[0, 0], [1, 0], [0, 1]], np.uint32)
    sparse = ub.Dataset(np.arange(3.0).reshape(3, 1) * (1 + 1j), ub.Ancillary.from_table(["y", "x"], ["m", "m"], indices, indices * 2.0), ub.Ancillary([ub.Dimension("arb", "a.u.", [0.0])]), quantity="Response", units="V")
    assert labels(figure([sparse]))[0] == ("x (m)", "y (m)")
    line = ub.Dataset(np.array([[1.0], [1e308], [-1e308]]), ub.Ancillary.from_table(["t"], ["s"], np.array([[0], [2], [1]], np.uint32), np.array([[0.0], [2e-6], [1e-6]])), ub.Ancillary([ub.Dimension("arb", "a.u.", [0.0])]), quantity="Counts", units="")
    fig = figure([line])
    fig.canvas.draw()  # values at the edge of float64 do not overflow matplotlib's ticks
    assert labels(fig)[0] == ("t (µs)", "|Counts| (×10³⁰⁶)")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_any_dataset_has_a_picture(dataset):
    import matplotlib.pyplot as plt

    fig = figure([dataset])
    fig.canvas.draw()
    assert plots(fig)
    plt.close(fig)


def test_preview_command(tmp_path):
    out = tmp_path / "iv.png"
    result = subprocess.run([sys.executable, "-m", "usidbridge", "preview", str(FIXTURES / "pyusid_iv_map.h5"), "-o", str(out)], capture_output=True, text=True)
    assert result.returncode == 0 and out.stat().st_size > 1000


def test_names_are_text_not_formulas(tmp_path):
    """pyNSID's sample file names a dim "$\\sqrt E$": matplotlib took it for a formula and failed to typeset it."""
    dataset = ub.Dataset.from_ndarray(np.arange(6.0).reshape(2, 3), [ub.Dimension("x", "m", 2)], [ub.Dimension(r"$\sqrt E$", "", 3)], quantity="I", units="A")
    assert preview([dataset], tmp_path / "formula.png").stat().st_size > 5000
