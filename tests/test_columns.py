"""Column text: one column (PyMca's XRFSpectrum.mca) and several columns, detected by content, never taken for SPEC."""

import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry
from usidbridge.errors import UnreadableFileError

from test_cli import assert_one_line_error, run


def test_one_column_is_a_spectrum_over_channels(tmp_path):
    counts = np.random.default_rng(1).poisson(50, 300)
    path = tmp_path / "XRFSpectrum.mca"
    path.write_text("\n".join(str(value) for value in counts) + "\n")
    assert registry.detect(path).name == "columns"
    (dataset,) = ub.read(path)
    assert dataset.pos.size == 1 and dataset.spec.dims[0].name == "Channel" and dataset.spec.dims[0].values.tolist() == list(range(300))
    assert np.array_equal(dataset.to_ndarray(squeeze=True), counts)
    assert ub.validate(ub.write(dataset, tmp_path / "mca.h5")).ok


def test_three_columns_are_counters_over_the_first(tmp_path):
    rows = np.column_stack([np.linspace(8900, 9100, 41), np.random.default_rng(2).normal(1e5, 10, 41), np.random.default_rng(3).normal(3e4, 10, 41)])
    path = tmp_path / "exafs scan.dat"
    path.write_text("# Cu K edge, sample 3\n# Energy  I0  It\n" + "\n".join(" ".join(repr(float(value)) for value in row) for row in rows) + "\n# end of scan\n")
    assert registry.detect(path).name == "columns"
    i0, it = ub.read(path)
    assert (i0.quantity, it.quantity) == ("I0", "It")
    assert i0.pos.dims[0].name == "Energy" and np.array_equal(i0.pos.dims[0].values, rows[:, 0])
    assert np.array_equal(it.data[:, 0], rows[:, 2]) and i0.pos.same_as(it.pos)
    assert i0.metadata["columns"]["comments"][-1] == "# end of scan"
    h5 = ub.write([i0, it], tmp_path / "scan.h5")
    assert ub.validate(h5).ok and len(ub.read(h5)) == 2


def test_spec_files_stay_spec_and_ragged_text_is_a_clear_error(tmp_path, shared_data):
    assert registry.detect(shared_data / "spec/EXAFS_Cu.dat").name == "spec"
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("1 2 3\n4 5 6\n7 8\n")
    with pytest.raises(UnreadableFileError, match="line 3: 2 values where the columns above have 3"):
        ub.read(ragged, "columns")
    words = tmp_path / "notes.txt"
    words.write_text("temperature 300 K\npressure 1 bar\n")
    assert_one_line_error(run("convert", words, tmp_path / "out.h5"), str(words), "no known format")
