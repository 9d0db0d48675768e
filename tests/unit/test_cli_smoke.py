import subprocess
import sys


def test_version_runs_as_module() -> None:
    out = subprocess.run([sys.executable, "-m", "amibake", "version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("amibake ")
    assert "Packer" in out.stdout
