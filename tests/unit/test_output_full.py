"""Output that cannot be written (stdout a file at ``ulimit -f`` or on a full disk) ends in a clear
error and exit status 1, never amibake's "internal error" (exit 70)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path


def _run_limited(args: list[str], cwd: Path, limit: int) -> tuple[int, str]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with open(cwd / "out.txt", "wb") as out, open(cwd / "err.txt", "wb") as err:
        rc = subprocess.run([sys.executable, "-m", "amibake", *args], cwd=cwd, stdout=out, stderr=err,
                            preexec_fn=cap, timeout=120).returncode
    return rc, (cwd / "err.txt").read_text()


def test_inspect_into_a_full_file_is_a_clear_error(tmp_path: Path) -> None:
    template = {"variables": {f"v{i}": "x" * 50 for i in range(100)},
                "builders": [{"type": "null", "communicator": "none"}]}
    (tmp_path / "t.json").write_text(json.dumps(template))
    # stderr gets room for the message; stdout (the same limit) fills up after 2 KiB
    rc, err = _run_limited(["inspect", "t.json"], tmp_path, 2048)
    assert rc == 1, err
    assert "Error: cannot write the output: File too large" in err
    assert "Internal error" not in err
    assert (tmp_path / "out.txt").stat().st_size == 2048
    # without the limit, the same command succeeds: the limit was the cause
    rc, err = _run_limited(["inspect", "t.json"], tmp_path, resource.RLIM_INFINITY)
    assert rc == 0, err
    assert (tmp_path / "out.txt").stat().st_size > 2048
