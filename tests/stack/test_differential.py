"""Packer 1.6.6 and amibake build the baseline templates against the same stack: same end state.

``tests/stack/data/packer-baseline/templates/basic.json`` and ``parallel.json`` are built by the real
Packer (Debian's ``packer`` 1.6.6) and by amibake, moto reset before each; ids, uuids and timestamps
are masked, and the two end states and manifests must be equal. Known, explained differences:

* the AMI description: Packer 1.6.6 sets it with ModifyImageAttribute, which moto drops
  (``Description.Value`` is not implemented there); amibake passes it to CreateImage, so moto keeps it.
  Both ask for the same description; the comparison leaves it out.
* amibake's own ``amibake:*`` tags (run id, build, creation time) exist only on amibake's resources;
  the end state lists them apart.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.endstate import comparable, comparable_manifest, end_state, leftovers
from tests.stackkit import Stack

BASELINE = Path(__file__).resolve().parent / "data" / "packer-baseline"
PACKER = shutil.which("packer")


def _in_ci() -> bool:
    """As tests/conftest.py: ``CI`` set to any true value (1, true, yes; any case)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _packer_166() -> None:
    """Without Packer the comparison cannot run: a failure in CI, a skip elsewhere."""
    if PACKER is None:
        if _in_ci():
            pytest.fail("packer 1.6.6 not installed (required in CI)")
        pytest.skip("packer 1.6.6 not installed")


pytestmark = [pytest.mark.stack, pytest.mark.packer]


def remote_dir(work: Path) -> Path:
    """The directory on the "instance" (this machine, through the stack's sshd) where the baseline
    templates' provisioners write (their ``remote_dir`` variable, "/tmp" by default): one per test,
    so that no other run's files are touched. Under /tmp, where the stack's login user can reach it."""
    return Path("/tmp") / f"amibake-baseline-{hashlib.sha256(str(work).encode()).hexdigest()[:16]}"


def clear(remote: Path) -> None:
    for p in remote.iterdir():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def run_tool(
    tool: str, template: str, stack: Stack, env: dict[str, str], work: Path
) -> subprocess.CompletedProcess[str]:
    clear(remote_dir(work))
    (work / tool).mkdir(exist_ok=True)  # the manifest post-processor does not create its directory
    args = [
        "build",
        "-color=false",
        f"-var=ec2_endpoint={env['AWS_ENDPOINT_URL']}",
        f"-var=ssh_port={stack.sshd.port}",
        f"-var=ssh_username={stack.sshd.user}",
        f"-var=out_dir={work / tool}",
        f"-var=remote_dir={remote_dir(work)}",
        str(work / "templates" / template),
    ]
    argv = [PACKER or "packer", *args] if tool == "packer" else [sys.executable, "-m", "amibake", *args]
    full_env = {
        **os.environ,
        **env,
        "CHECKPOINT_DISABLE": "1",
        "PACKER_NO_COLOR": "1",
        "AWS_POLL_DELAY_SECONDS": "1",
        "AWS_MAX_ATTEMPTS": "60",
    }
    full_env.pop("AWS_ENDPOINT_URL", None)  # both tools get the endpoint from the template
    return subprocess.run(argv, cwd=work, env=full_env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(BASELINE / "templates", tmp_path / "templates")
    shutil.copytree(BASELINE / "files", tmp_path / "files")
    remote = remote_dir(tmp_path)
    remote.mkdir(mode=0o1777)
    remote.chmod(0o1777)  # the login user writes there
    yield tmp_path
    shutil.rmtree(remote, ignore_errors=True)


@pytest.mark.parametrize(
    ("template", "manifest_name", "builds"),
    [
        ("basic.json", "manifest-basic.json", 1),
        ("parallel.json", "manifest-parallel.json", 4),
    ],
)
def test_same_end_state_as_packer(
    template: str, manifest_name: str, builds: int, stack: Stack, aws_env: dict[str, str], work: Path
) -> None:
    results = {}
    for tool in ("packer", "amibake"):
        stack.moto.reset()
        r = run_tool(tool, template, stack, aws_env, work)
        assert r.returncode == 0, f"{tool}:\n{r.stdout}\n{r.stderr}"
        # a manifest post-processor returns its input: Packer lists the AMI twice per build
        assert r.stdout.count("AMIs were created") == 2 * builds, r.stdout
        state = end_state(aws_env, ("us-east-1",))
        assert leftovers(state) == {}, tool
        for img in state["us-east-1"]["images"]:
            img["description"] = "(moto drops Packer 1.6.6's ModifyImageAttribute Description)"
        results[tool] = (comparable(state), comparable_manifest(work / tool / manifest_name))
    assert results["amibake"][0] == results["packer"][0]
    assert results["amibake"][1] == results["packer"][1]
