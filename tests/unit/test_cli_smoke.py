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


def test_sensitive_value_never_in_validate_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    doc = {
        "variables": {"port": "hunter2-canary"},
        "sensitive-variables": ["port"],
        "builders": [
            {
                "type": "amazon-ebs",
                "region": "us-east-1",
                "source_ami": "ami-12345678",
                "instance_type": "t2.micro",
                "ssh_username": "u",
                "ssh_port": "{{user `port`}}",
                "ami_name": "x-{{timestamp}}",
            }
        ],
    }
    t = tmp_path / "t.json"
    t.write_text(json.dumps(doc))
    out = subprocess.run(
        [sys.executable, "-m", "amibake", "validate", str(t)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "ssh_port" in out.stderr
    assert "hunter2-canary" not in out.stderr + out.stdout
