"""Packer 1.6.6 and amibake build an amazon-ebsvolume and an amazon-ebssurrogate template against the
same stack (moto reset before each): the same end state, ids and amibake's own ``amibake:*`` tags
left out. The templates are in ``tests/stack/data/packer-baseline-volumes``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.endstate import client, comparable, end_state, leftovers
from tests.stack.test_differential import PACKER, _packer_166  # noqa: F401  (the Packer-or-fail fixture)
from tests.stackkit import Stack

pytestmark = [pytest.mark.stack, pytest.mark.packer]

TEMPLATES = Path(__file__).resolve().parent / "data" / "packer-baseline-volumes"


def run_tool(tool: str, template: Path, stack: Stack, env: dict[str, str],
             work: Path) -> subprocess.CompletedProcess[str]:
    args = ["build", "-color=false", f"-var=ec2_endpoint={env['AWS_ENDPOINT_URL']}",
            f"-var=ssh_port={stack.sshd.port}", f"-var=ssh_username={stack.sshd.user}", str(template)]
    argv = [PACKER or "packer", *args] if tool == "packer" else [sys.executable, "-m", "amibake", *args]
    full_env = {**os.environ, **env, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1",
                "AWS_POLL_DELAY_SECONDS": "1", "AWS_MAX_ATTEMPTS": "60",
                "AMIBAKE_STATE_DIR": str(work / "state")}
    full_env.pop("AWS_ENDPOINT_URL", None)  # both tools get the endpoint from the template
    return subprocess.run(argv, cwd=work, env=full_env, capture_output=True, text=True, timeout=300)


def volumes(env: dict[str, str]) -> list[dict[str, Any]]:
    """The volumes left in us-east-1 (the artifact of an ebsvolume build), without ids or amibake tags."""
    out = []
    for v in client(env, "us-east-1").describe_volumes()["Volumes"]:
        tags = {t["Key"]: t["Value"] for t in v.get("Tags", []) if not t["Key"].startswith("amibake:")}
        out.append({"size": v["Size"], "type": v["VolumeType"], "state": v["State"], "tags": tags})
    return sorted(out, key=repr)


def test_ebsvolume_same_end_state_as_packer(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    results = {}
    for tool in ("packer", "amibake"):
        stack.moto.reset()
        work = tmp_path / tool
        work.mkdir()
        r = run_tool(tool, TEMPLATES / "ebsvolume.json", stack, aws_env, work)
        assert r.returncode == 0, f"{tool}:\n{r.stdout}\n{r.stderr}"
        assert "EBS Volumes were created:" in r.stdout, r.stdout
        state = comparable(end_state(aws_env, ("us-east-1",)))["us-east-1"]
        kept = volumes(aws_env)
        assert [v["tags"] for v in kept] == [{"Name": "data-volume", "Role": "data"}], tool
        state["volumes"] = kept
        results[tool] = state
    assert results["amibake"] == results["packer"]


def test_ebssurrogate_same_end_state_as_packer(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    results = {}
    for tool in ("packer", "amibake"):
        stack.moto.reset()
        work = tmp_path / tool
        work.mkdir()
        shutil.copy(TEMPLATES / "ebssurrogate.json", work / "t.json")
        r = run_tool(tool, work / "t.json", stack, aws_env, work)
        assert r.returncode == 0, f"{tool}:\n{r.stdout}\n{r.stderr}"
        assert "AMIs were created:" in r.stdout, r.stdout
        state = end_state(aws_env, ("us-east-1",))
        assert leftovers(state) == {}, tool
        results[tool] = comparable(state)
    assert results["amibake"] == results["packer"]
