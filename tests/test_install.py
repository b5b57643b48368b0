"""`usidbridge demo` from a plain, non-editable install in a fresh virtual environment, run outside the source tree."""

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ("numpy", "numpy.libs", "h5py", "h5py.libs", "click", "rich", "markdown_it", "mdurl", "pygments")  # the core dependencies and theirs


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    wheels = tmp_path_factory.mktemp("wheels")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (found,) = wheels.glob("usidbridge-*.whl")
    return found


def fresh_environment(folder: Path, wheel: Path, libraries: str) -> Path:
    """A venv with the wheel installed and `libraries` (a folder of packages) on its path; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(libraries + "\n")  # the libraries only: a .pth line does not run the editable hook
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    return folder / "bin"


def test_a_minimal_install_names_the_extra_each_command_needs(tmp_path, wheel):
    """`pip install usidbridge` without extras: the core commands work, and a command that needs an
    optional library says which extra brings it, in one line (issue 23)."""
    libraries = tmp_path / "core"
    libraries.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in CORE:
        (libraries / name).symlink_to(site / name)
    for info in site.glob("*.dist-info"):
        if re.match(r"(numpy|h5py|click|rich|markdown_it_py|mdurl|pygments)-", info.name):
            (libraries / info.name).symlink_to(info)
    bin_folder = fresh_environment(tmp_path / "minimal", wheel, str(libraries))
    work = tmp_path / "work"
    work.mkdir()

    def usidbridge(*args):
        return subprocess.run([str(bin_folder / "usidbridge"), *map(str, args)], capture_output=True, text=True, cwd=work, timeout=300)

    source = ROOT / "fixtures" / "pyusid_iv_map.h5"
    assert usidbridge("validate", source).returncode == 0
    assert usidbridge("convert", source, work / "copy.h5").returncode == 0
    local = usidbridge("batch", ROOT / "fixtures" / "pyusid_iv_map.h5", "--to", "h5usid", "--out", work / "batch")
    assert local.returncode == 0, local.stderr
    for args, extra in [(("preview", source), "preview"), (("demo", "--out", work / "demo"), "preview"),
                        (("batch", source, "--to", "h5usid", "--out", work / "remote", "--scheduler", "tcp://127.0.0.1:1"), "batch"),
                        (("convert", source, work / "out.nc"), "netcdf")]:
        result = usidbridge(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and f"pip install 'usidbridge[{extra}]'" in lines[0], (args, result.stderr)
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr


def test_demo_runs_from_a_wheel_in_a_fresh_environment(tmp_path, wheel):
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # the libraries only: a .pth line does not run the editable hook
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import usidbridge; print(usidbridge.__file__)"], capture_output=True, text=True, cwd=elsewhere)
    assert str(site) in where.stdout, where
    demo = subprocess.run([str(fresh / "bin" / "usidbridge"), "demo", "--out", str(elsewhere / "demo-out")], capture_output=True, text=True, cwd=elsewhere, timeout=600)
    assert demo.returncode == 0, demo.stderr
    assert len(list((elsewhere / "demo-out").glob("*.h5"))) >= 7
