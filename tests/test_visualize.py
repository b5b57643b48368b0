"""visualize: the notebook view (a map and the spectrum under a movable cursor, a stack and its
slider) checked against the data itself; the static fallback; physical aspect ratios and peak scales."""

import numpy as np
import pytest

import usidbridge as ub
from conftest import need
from usidbridge.preview import figure, line_scale, square_pixels
from usidbridge.visualize import Viewer, in_notebook, visualize


def spectrum_map(peak: float = 1e5) -> ub.Dataset:
    """A 4 × 5 map (µm, X five times longer than Y) of 50-channel spectra with one dominating peak."""
    rng = np.random.default_rng(3)
    data = rng.random((4, 5, 50)) * 10 + 1
    data[:, :, 2] += peak
    return ub.Dataset.from_ndarray(data, [ub.Dimension("Y", "m", np.arange(4) * 1e-6), ub.Dimension("X", "m", np.arange(5) * 5e-6)], [ub.Dimension("Energy", "eV", np.arange(50) * 10.0)], name="EDS", quantity="Counts", units="counts")


def test_the_cursor_shows_the_spectrum_under_it_and_the_slider_the_map_at_that_energy():
    need("ipywidgets")
    dataset = spectrum_map()
    box = visualize(dataset, notebook=True)
    sliders = {slider.description: slider for slider in box.children[:-1]}
    assert list(sliders) == ["Y", "X", "Energy"] and [slider.max for slider in sliders.values()] == [3, 4, 49]
    sliders["Y"].value, sliders["X"].value, sliders["Energy"].value = 2, 3, 7
    viewer, data = box.viewer, dataset.to_ndarray()
    assert np.allclose(viewer.line.get_ydata() / viewer.factor, data[2, 3, :])
    assert np.array_equal(viewer.image.get_array(), data[:, :, 7])
    assert np.allclose(np.ravel(viewer.marker.get_data()), [viewer.x_values[3], viewer.y_values[2]])
    assert viewer.spectrum_axes.get_yscale() == "log"  # the peak would flatten every other channel
    assert viewer.map_axes.get_aspect() == 1.0  # physical: a 20 × 15 µm map, not a square
    assert "Energy = 70 eV" in viewer.map_axes.get_title() and "X = 15 µm" in viewer.spectrum_axes.get_title()


def test_a_stack_gets_a_slider_over_its_frames():
    need("ipywidgets")
    frames = np.arange(3 * 6 * 8, dtype=np.float32).reshape(3, 6, 8)
    as_positions = ub.Dataset.from_ndarray(frames, [ub.Dimension("Frame", "", 3), ub.Dimension("Y", "px", 6), ub.Dimension("X", "px", 8)])
    box = visualize(as_positions, notebook=True)
    (slider,) = box.children[:-1]
    assert slider.description == "Frame" and slider.max == 2
    slider.value = 2
    assert np.array_equal(box.viewer.image.get_array(), frames[2])
    as_spectral = ub.Dataset.from_ndarray(np.moveaxis(frames, 0, -1), [ub.Dimension("Y", "px", 6), ub.Dimension("X", "px", 8)], [ub.Dimension("Frame", "", 3)])
    viewer = Viewer(as_spectral)
    viewer.show(Frame=1)
    assert np.array_equal(viewer.image.get_array(), frames[1])


def test_a_lazy_file_stack_is_viewed_from_the_file(shared_data):
    """The shared ImageJ stack, read lazily: each frame the slider shows is the file's frame."""
    need("ipywidgets")
    (dataset,) = ub.read(shared_data / "tiff/test_loading_image_saved_with_imageJ_stack.tif", lazy=True)
    box = visualize(dataset, notebook=True)
    frame_slider = box.children[-2]
    frame_slider.value = frame_slider.max
    assert np.array_equal(box.viewer.image.get_array(), dataset.to_ndarray()[..., frame_slider.max])


def test_outside_a_notebook_it_is_the_static_preview():
    assert not in_notebook()
    picture = visualize(spectrum_map())
    assert type(picture).__name__ == "Figure" and len(picture.axes) >= 2
    image = ub.Dataset.from_ndarray(np.ones((3, 4)), [ub.Dimension("Y", "m", 3), ub.Dimension("X", "m", 4)])
    assert type(visualize(image, notebook=True)).__name__ == "Figure"  # nothing to move: the picture
    assert type(image.visualize()).__name__ == "Figure"


def test_physical_aspect_ratio_and_peak_dominated_lines_in_the_preview():
    scan = ub.Dataset.from_ndarray(np.random.default_rng(0).random((11, 113)), [ub.Dimension("Y", "m", np.arange(11) * 1e-6), ub.Dimension("X", "m", np.arange(113) * 1e-6)])
    assert square_pixels(*scan.pos.dims[::-1])
    (axes, *_colourbar) = figure([scan]).axes
    assert axes.get_aspect() == 1.0 and axes.get_xlim()[1] - axes.get_xlim()[0] > 9 * abs(axes.get_ylim()[1] - axes.get_ylim()[0])
    strip = [ub.Dimension("Y", "m", np.arange(2) * 1e-6), ub.Dimension("X", "m", np.arange(1000) * 1e-6)]
    assert not square_pixels(strip[1], strip[0])  # a strip a pixel high: filled, not drawn as a line
    assert not square_pixels(ub.Dimension("X", "m", 5), ub.Dimension("Bias", "V", 5))
    spectrum = spectrum_map().isel(Y=0, X=0)
    (line_axes,) = figure([spectrum]).axes
    assert line_axes.get_yscale() == "log"
    assert line_scale(np.sin(np.linspace(0, 9, 100)))["value"] == "linear"
    assert line_scale(np.r_[np.zeros(99) - 1, 1e4])["value"] == "symlog"


@pytest.mark.parametrize("name", ["usid/SingFreqPFM_0003.h5", "spm/nanonis_sts_grid.3ds", "rosettasciio/dm/EELS_spectrum_image.dm3"])
def test_every_shared_map_of_spectra_opens_in_the_viewer(shared_data, name):
    need("ipywidgets")
    for dataset in ub.read(shared_data / name, lazy=True)[:2]:
        box = visualize(dataset, notebook=True)
        if type(box).__name__ == "Figure":
            continue
        for slider in box.children[:-1]:
            slider.value = slider.max
        row = box.viewer._row()
        if box.viewer.spectrum_axes is not None and len(box.viewer.spectral_dims) == 1:
            expected = np.asarray(dataset.data[row], dtype=np.float64) if dataset.dtype.kind != "c" else np.abs(np.asarray(dataset.data[row]))
            assert np.allclose(box.viewer.line.get_ydata() / box.viewer.factor, expected, equal_nan=True)
