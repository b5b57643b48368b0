"""The registry: discovery, plugins through entry points, detection by content, refusals."""

import subprocess
import sys

import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry
from usidbridge.errors import MissingDependencyError, UnknownFormatError, UnsupportedFeatureError

from usid_files import compliant_file


@pytest.fixture
def clean_registry(monkeypatch):
    """A registry that forgets whatever a test registers."""
    registry.formats()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


def test_builtin_formats_are_discovered():
    names = [format.name for format in ub.formats()]
    assert "h5usid" in names
    h5usid = registry.get("h5usid")
    assert h5usid.installed and h5usid.can_read and h5usid.can_write


def test_detection_uses_content_before_extension(tmp_path):
    path = compliant_file(tmp_path / "measurement.dat")
    assert registry.detect(path).name == "h5usid"
    assert ub.read(path)[0].quantity == "Current"


def test_unknown_content_and_extension(tmp_path):
    path = tmp_path / "notes.xyz"
    path.write_text("hello")
    with pytest.raises(UnknownFormatError, match="no known format recognises"):
        registry.detect(path)
    with pytest.raises(UnknownFormatError, match="no format writes"):
        registry.for_extension(tmp_path / "out.xyz")
    with pytest.raises(UnknownFormatError, match="unknown format"):
        registry.get("nope")


class Refusing(registry.Format):
    name = "refusing"
    extensions = (".ref",)
    profile = registry.Profile(complex="refuses", several_datasets="refuses", max_dims=2)

    def write(self, datasets, path, **options):
        path.write_text("written")


def test_writers_refuse_what_their_profile_cannot_carry(clean_registry, tmp_path):
    ub.register(Refusing)
    dims = [ub.Dimension("Y", "m", 2), ub.Dimension("X", "m", 3)]
    complex_data = ub.Dataset.from_ndarray(np.ones((2, 3), np.complex64), dims)
    with pytest.raises(UnsupportedFeatureError, match="complex.*real and imaginary"):
        ub.write(complex_data, tmp_path / "a.ref")
    three_d = ub.Dataset.from_ndarray(np.ones((2, 3, 4)), dims, [ub.Dimension("V", "V", 4)])
    with pytest.raises(UnsupportedFeatureError, match="at most 2 dims"):
        ub.write(three_d, tmp_path / "b.ref")
    real = ub.Dataset.from_ndarray(np.ones((2, 3)), dims)
    with pytest.raises(UnsupportedFeatureError, match="--dataset"):
        ub.write([real, real], tmp_path / "c.ref")
    assert ub.write(real, tmp_path / "d.ref").read_text() == "written"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d.ref"]


class NeedsMissingLibrary(registry.Format):
    name = "needsmissing"
    dependency = "no_such_library_for_usidbridge"
    extra = "needsmissing"

    def read(self, path, *, lazy=False, **options):
        return []


def test_missing_dependency_is_reported(clean_registry, tmp_path):
    ub.register(NeedsMissingLibrary)
    format = registry.get("needsmissing")
    assert not format.installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'usidbridge\[needsmissing\]'"):
        ub.read(compliant_file(tmp_path / "x.h5"), format="needsmissing")


PLUGIN = '''
import numpy as np
from usidbridge import Dataset, Dimension
from usidbridge.registry import Format

class CsvFormat(Format):
    name = "plaincsv"
    extensions = (".csv",)

    def sniff(self, head, path):
        return 1 if path.suffix == ".csv" else 0

    def read(self, path, *, lazy=False, **options):
        values = np.loadtxt(path, delimiter=",", ndmin=1)
        return [Dataset.from_ndarray(values, [Dimension("Point", "", values.size)], quantity="Value")]
'''


def install_plugin(folder, source: str) -> None:
    """The plugin module `source` as an installed distribution in `folder`, with its entry point."""
    (folder / "plaincsv_plugin.py").write_text(source)
    info = folder / "plaincsv_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plaincsv-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[usidbridge.formats]\nplaincsv = plaincsv_plugin:CsvFormat\n")


def test_third_party_format_through_entry_point(tmp_path):
    install_plugin(tmp_path, PLUGIN)
    (tmp_path / "data.csv").write_text("1,2,3\n")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import usidbridge as ub;"
        "print([f.name for f in ub.formats()]); print(ub.read(sys.argv[1] + '/data.csv')[0].to_ndarray(squeeze=True).tolist())"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    names, values = result.stdout.splitlines()
    assert "plaincsv" in names and "h5usid" in names and values == "[1.0, 2.0, 3.0]"


def test_plugins_are_asked_when_no_built_in_is_sure(tmp_path):
    """Entry points are read only when a lookup gets past the built-ins (35 ms of a fresh process):
    a file a built-in is sure of never loads them; a file only a plugin reads, or its name, does."""
    install_plugin(tmp_path, PLUGIN)
    (tmp_path / "data.csv").write_text("1,2,3\n")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import usidbridge as ub, numpy as np\n"
        "ub.write(ub.Dataset.from_ndarray(np.arange(3.0), [ub.Dimension('X', 'm', 3)]), sys.argv[1] + '/x.h5')\n"
        "ub.read(sys.argv[1] + '/x.h5')\n"
        "print('plaincsv' in ub.registry._REGISTRY)\n"
        "print(ub.registry.detect(sys.argv[1] + '/data.csv').name, ub.registry.get('plaincsv').name)"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "plaincsv", "plaincsv"]


BROKEN_SNIFF = PLUGIN.replace("return 1 if path.suffix == \".csv\" else 0", "return 1 // 0")


def test_a_plugin_whose_sniff_fails_is_skipped_with_a_warning(tmp_path):
    """A bug in a plugin's sniff must not stop every file being read: a warning names the plugin."""
    install_plugin(tmp_path, BROKEN_SNIFF)
    source = tmp_path / "columns.txt"  # no built-in format claims .txt: every sniff is asked, the plugin's too
    source.write_text("1 2 3\n4 5 6\n7 8 9\n")
    script = (
        "import sys, warnings; sys.path.insert(0, sys.argv[1]); import usidbridge as ub\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    print(ub.registry.detect(sys.argv[2]).name)\n"
        "print([str(w.message) for w in caught])"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(source)], capture_output=True, text=True, check=True)
    name, messages = result.stdout.splitlines()
    assert name == "columns"
    assert "format plugin 'plaincsv' failed to look at" in messages and "ZeroDivisionError" in messages


def test_a_built_in_sniff_meeting_a_damaged_hdf5_file_scores_0(clean_registry, tmp_path):
    path = compliant_file(tmp_path / "ok.h5")

    class Damaged(registry.Format):
        name = "damagedlook"

        def sniff(self, head, path):
            raise KeyError("Unable to synchronously open object (component not found)")

    ub.register(Damaged)
    assert registry._sniff(registry.get("damagedlook"), b"", path) == 0


def test_import_is_light():
    heavy = ("hyperspy", "xarray", "fabio", "tifffile", "nexusformat", "dask", "matplotlib", "pyUSID", "rich", "click")
    script = f"import sys, usidbridge; usidbridge.formats(); print([m for m in sys.modules if m.split('.')[0] in {heavy!r}])"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_recognised_instrument_files_say_how_to_convert_them(shared_data, tmp_path):
    """An Omicron MATRIX file is named, with the way in through Gwyddion, instead of "no known
    format recognises this file"."""
    from test_cli import assert_one_line_error, run

    path = tmp_path / "default_0001.Z_mtrx"
    path.write_bytes(b"ONTMATRX0101" + bytes(200))
    result = run("convert", path, tmp_path / "out.h5")
    assert_one_line_error(result, str(path), "Omicron MATRIX", "Gwyddion", ".gwy")
    assert not (tmp_path / "out.h5").exists()
