"""The fuzz suite's fixed sample and its regressions: every damaged file ends in a usidbridge error naming it.

`tests/fuzzing.py` makes each mutant from (seed, mutation, number) alone, so REGRESSIONS rebuild
the mutants that once escaped (each line is the defect it found). `make fuzz` runs thousands per
format (bench/fuzz.py).
"""

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge.errors import UnreadableFileError

import fuzzing

SAMPLE_PER_FORMAT = 25
REGRESSIONS = [
    ("ours.nxs", "hdf5_link_cycle", 39),  # RecursionError: metadata tree walked recursively through a cycle
    ("saved_multi_signal.nxs", "hdf5_link_cycle", 6),  # RecursionError in the NXdata walk
    ("ours.edf", "header_lies", 8),  # hang: FabIO counts to Dim_18446744073709551617
    ("ours.edf", "overwrite_range", 7),  # KeyError 'DataType'
    ("ours.edf", "overwrite_range", 37),  # KeyError in the usid_* keys
    ("ours.edf", "header_lies", 318),  # reshape of a description that does not fit
    ("ours.edf", "header_lies", 348),  # repeated axis in the description
    ("detector_frames.edf", "header_lies", 283),  # FabIO's bare Exception
    ("EELS_spectrum.dm3", "line_shuffle", 9),  # DM3TagIDError
    ("STEM_image.dm3", "overwrite_range", 134),  # UnboundLocalError inside RosettaSciIO
    ("ncem_example_signal.emd", "hdf5_huge_shape", 29),  # MemoryError for 8 TiB
    ("example1.msa", "truncate", 46),  # ModelError without the file name
    ("demo_scans.spec", "bit_flips", 36),  # ValueError in a header number
    ("ours.spec", "overwrite_range", 87),  # fewer MCA spectra than points
    ("demo_scans.spec", "line_shuffle", 144),  # scan parts that disagree
    ("imagej_stack.tif", "header_lies", 38),  # struct.error inside tifffile
    ("test_loading_image_saved_with_imageJ_stack.tif", "header_lies", 68),  # RuntimeError inside tifffile
    ("optical_Zeiss_AxioVision_RGB.tif", "bit_flips", 281),  # TypeError inside tifffile
    ("AFM_Force_Curve.h5", "bit_flips", 1),  # RuntimeError: object visitation failed
    ("plain.h5", "hdf5_retype", 4),  # anonymous dimension scale
    ("plain.h5", "hdf5_wrong_reference", 5),  # segfault in libhdf5's dimension-scale API
    ("plain.h5", "hdf5_huge_shape", 7),  # hang: index dim of 10^12 values
    ("saved_multi_signal.nxs", "hdf5_corrupt_json", 54),  # int() of an old-style axis attribute
    ("simple_signal.nxs", "hdf5_attribute_types", 152),  # int() of an _indices attribute
    ("saved_multi_signal.nxs", "overwrite_range", 310),  # UnicodeDecodeError in a link name
    ("ours.nc", "hdf5_corrupt_json", 21),  # JSONDecodeError in our attributes
    ("ours.nc", "hdf5_link_cycle", 281),  # netCDF-C aborts on an external link to the file itself
    ("temperature_series.nc", "hdf5_link_cycle", 28),  # netCDF-C hangs on a link cycle
    ("ours.nc", "hdf5_wrong_reference", 16),  # netCDF-C segfaults on a dimension-scale reference to the wrong object
    ("renishaw_test_map.wdf", "line_shuffle", 604),  # StopIteration inside RosettaSciIO
    ("demo_scans.spec", "header_lies", 1118),  # a mesh of absurd size
    ("ours.spec", "header_lies", 898),  # hang: building a mesh of billions of positions
    ("ours.tif", "bit_flips", 1301),  # OverflowError from a memory map
    ("optical_Zeiss_AxioVision_RGB.tif", "bit_flips", 1946),  # MemoryError: 60 GiB declared
    ("detector_frames.edf", "header_lies", 523),  # FabIO's UnboundLocalError
    ("ours.edf", "bit_flips", 926),  # int() of EDF_HeaderSize in our message
    ("ours.edf", "header_lies", 1838),  # frames of different shapes
    ("plain.h5", "bit_flips", 903),  # a float layout h5py cannot map
    ("ncem_example_signal.emd", "hdf5_huge_shape", 517),  # hang: RosettaSciIO reading a declared 8 TiB
    ("ours.nxs", "hdf5_huge_shape", 3032),  # MemoryError: index dims built before the size check
    ("detector_frames.edf", "bit_flips", 3041),  # a 1-D frame given to the memory map
    ("ours.tif", "bit_flips", 7106),  # tifffile's ZeroDivisionError on a damaged tag
    ("bruker_nano.spx", "line_shuffle", 7141),  # an axis scale that is an array, not a number
    ("ours.tif", "overwrite_range", 20112),  # tifffile's AssertionError on a page without a data type
    ("fluorescence_map.nxs", "bit_flips", 50007),  # an attribute name that is not UTF-8 (h5py gives bytes)
    ("ours.nc", "hdf5_wrong_reference", 50022),  # a _FillValue that is not a number
    ("bruker_nano.spx", "bit_flips", 60269),  # lxml's XMLSyntaxError when FabIO's XSD reader is asked
    ("ours.spec", "truncate", 60085),  # a '#O0 ' line cut after its tag
    ("ours.hspy", "hdf5_huge_shape", 900016),  # hang: HyperSpy reading a declared 10^12 values whole
    ("ours.hspy", "hdf5_huge_shape", 900027),  # MemoryError inside HyperSpy
    ("ours.hspy", "hdf5_attribute_types", 900029),  # traits' TraitError on an axis offset that is an array
    ("ours.hspy", "hdf5_retype", 900046),  # ModelError without the file name: data and axes disagree
    ("fluorescence_map.nxs", "bit_flips", 901011),  # a float layout h5py cannot map, met in an axis dataset
    ("bruker_nano.spx", "bit_flips", 1201152),  # LookupError: an XML declaration naming an unknown encoding
    ("demo_scans.spec", "header_lies", 1200263),  # ValueError from np.arange over a #@CHANN range of absurd size
    ("pyusid_iv_map.h5", "hdf5_huge_shape", 1201053),  # an object name that is not UTF-8 (h5py gives bytes)
    ("plain.h5", "bit_flips", 1200640),  # the same, in a dimension scale's name
    ("detector_frames.edf", "bit_flips", 2600301),  # ModelError without the file name: frames of 0 pixels
    ("AFM_Force_Curve.h5", "bit_flips", 2700391),  # TypeError from h5py: a string of an encoding HDF5 does not define
    ("bruker_force_curve.001", "bit_flips", 13),  # ValueError: int() of a garbled Bytes/pixel
    ("ours_dual.h5", "zero_tail", 3),  # hang: libhdf5 loops on a zeroed global heap (a string attribute); the probe child contains it
    ("ours.nc", "hdf5_attribute_types", 5278),  # SIGABRT inside netCDF-C on a retyped attribute; the netCDF probe contains it
    ("stack.mrc", "bit_flips", 20002),  # FabIO's AttributeError decoding a damaged MRC frame (read as a FabIO format)
    ("stack.mrc", "zero_tail", 21614),  # the same, on a zeroed tail
    ("ours.nc", "hdf5_link_cycle", 1795),  # 20 s: netCDF-C looping on a link cycle in the probe child, before the reader refused the cycle
    ("map.bcf", "overwrite_range", 137),  # StopIteration inside RosettaSciIO's .bcf decoder, at compute time of a lazy read
    ("asylum_force_curve.ibw", "bit_flips", 617),  # a dimension-label size of 2^30: igor2 built a 1 GiB struct format (6 s alone, minutes in a large process)
    ("temperature_series.nc", "hdf5_wrong_reference", 20769),  # SIGABRT inside netCDF-C once in the 80,000-read run (lazy); alone, the probe child contains it
]


@pytest.fixture(scope="module")
def runner():
    running = fuzzing.Runner(timeout=30)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    return {seed.path.name: seed for seed in fuzzing.seeds(folder)}


@pytest.mark.parametrize(("name", "mutation", "number"), REGRESSIONS)
def test_regressions_end_in_a_clean_error(runner, seeds, tmp_path, name, mutation, number):
    path = fuzzing.make_mutant(seeds[name], mutation, number, tmp_path)
    outcome, detail = runner.run(path)
    assert outcome in ("ok", "clean"), detail


def test_fixed_sample_of_every_format(runner, seeds):
    escaped = []
    with tempfile.TemporaryDirectory() as folder:
        for seed, mutation, number in fuzzing.mutants(list(seeds.values()), SAMPLE_PER_FORMAT):
            path = fuzzing.make_mutant(seed, mutation, number, Path(folder))
            outcome, detail = runner.run(path)
            if outcome not in ("ok", "clean"):
                escaped.append(f"{seed.path.name} {mutation} {number}: {outcome} {detail}")
    assert not escaped, escaped


def test_external_storage_outside_the_folder_is_not_followed(tmp_path):
    with h5py.File(tmp_path / "hostile.h5", "w") as file:
        file.create_dataset("data", shape=(4,), dtype="u1", external=[("/etc/hostname", 0, 4)])
        file.create_dataset("beside", shape=(2,), dtype="u1", external=[("raw.bin", 0, 2)])
    (tmp_path / "raw.bin").write_bytes(b"\x01\x02")
    with pytest.raises(UnreadableFileError, match="outside the file's folder"), h5py.File(tmp_path / "hostile.h5", "r") as file:
        ub.hdf.read_whole(file["data"], tmp_path / "hostile.h5")
    with pytest.warns(UserWarning, match="outside the file's folder"):
        (beside,) = ub.read(tmp_path / "hostile.h5", dataset="/*")
    assert np.array_equal(beside.to_ndarray(squeeze=True), [1, 2])
