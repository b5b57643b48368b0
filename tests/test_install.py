"""`usidbridge demo` from a plain, non-editable install in a fresh virtual environment, run outside the source tree."""

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_from_a_wheel_in_a_fresh_environment(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("usidbridge-*.whl")
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
