import subprocess
import sys


def test_version_runs_as_module() -> None:
    out = subprocess.run([sys.executable, "-m", "amibake", "version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("amibake ")
    assert "Packer" in out.stdout


def test_bad_input_exits_1_without_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t = tmp_path / "t.json"
    t.write_text('{"builders": [{"type": "amazon-ebs",}]}')
    out = subprocess.run(
        [sys.executable, "-m", "amibake", "validate", str(t)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "t.json:1:" in out.stderr


def test_unknown_flag_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "amibake", "validate", "-nope", "x"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "No such option" in out.stderr
