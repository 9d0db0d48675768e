#!/usr/bin/env python3
"""The ``ansible`` provisioner's cost, next to Packer 1.6.6 and to plain Ansible over OpenSSH.

    .venv/bin/python bench/ansible.py [--runs N] [--out bench/ANSIBLE.md]

One small playbook (``tests/stack/data/ansible/differential/diff.yml``: facts, a template, a handler,
a task with become) against the local stack's sshd, measured four ways, runs alternating:

* ``amibake build``, ansible through amibake's SSH proxy adapter (the default);
* ``amibake build``, ``use_proxy = false`` (Ansible's own ssh straight to the sshd);
* ``packer build`` (Debian's 1.6.6), through its proxy adapter, with the workaround it needs against
  this machine's OpenSSH (ssh-rsa host keys, ``scp -O``);
* ``ansible-playbook`` run by hand over OpenSSH to the same sshd: the limit.

For the builds, the provisioner's time is taken from the output, each line stamped on arrival: from
``Provisioning with Ansible...`` to the next step line that is not ``Executing Ansible:``. The plain run
is the whole ``ansible-playbook`` process. Targets (issue #20): the proxy within 1.3x the limit and
faster than Packer; ``use_proxy = false`` within 1.1x the limit.

Every run starts cold: it gets its own ``ANSIBLE_SSH_CONTROL_PATH_DIR``, and the ssh ControlMaster it
leaves (Ansible's ``ControlPersist=60s``) is stopped after it. Without that, a run to the sshd itself
(the limit, ``use_proxy = false``) reused the master an earlier run had left to the same host, port and
user, and skipped its SSH handshake, which no proxy run can do (its port and key are new each time).
Each round runs the four the other way round from the one before, so a change of load falls on all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stackkit import Stack  # noqa: E402

PLAYBOOK = ROOT / "tests" / "stack" / "data" / "ansible" / "differential" / "diff.yml"
BIN = Path(sys.executable).parent
WORKAROUND_ARGS = ["--ssh-extra-args", "-o HostKeyAlgorithms=+ssh-rsa -o PubkeyAcceptedKeyTypes=+ssh-rsa"]
WORKAROUND_ENV = ["ANSIBLE_SSH_TRANSFER_METHOD=scp", "ANSIBLE_SCP_EXTRA_ARGS=-O"]


def template(stack: Stack, endpoint: str, out_dir: str, **ansible: object) -> dict[str, object]:
    return {
        "builders": [{
            "type": "amazon-ebs", "name": "bench", "region": "us-east-1", "skip_region_validation": True,
            "custom_endpoint_ec2": endpoint, "source_ami": "ami-785db401", "instance_type": "t2.micro",
            "ssh_username": stack.sshd.user, "ssh_host": "127.0.0.1", "ssh_port": stack.sshd.port,
            "ssh_timeout": "2m", "ami_name": "ansible-bench-{{timestamp}}",
        }],
        "provisioners": [{
            "type": "ansible", "command": str(BIN / "ansible-playbook"), "playbook_file": str(PLAYBOOK),
            "user": stack.sshd.user, **ansible,
            "extra_arguments": [*ansible.get("extra_arguments", []),  # type: ignore[list-item]
                                "-e", f"out_dir={out_dir}", "-e", "kind=remote"],
        }],
    }


def provisioning_seconds(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a build; the time from 'Provisioning with Ansible...' to the next step line."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    start = end = 0.0
    lines = []
    for line in proc.stdout:
        now = time.monotonic()
        lines.append(line)
        if "Provisioning with Ansible..." in line:
            start = now
        elif start and not end and line.startswith("==>") and "Executing Ansible:" not in line:
            end = now
    if proc.wait() != 0 or not start or not end:
        raise SystemExit(f"{argv[0]} failed:\n{''.join(lines)}")
    return end - start


def plain_seconds(stack: Stack, key: Path, out_dir: str, env: dict[str, str]) -> float:
    inventory = key.parent / "inventory"
    inventory.write_text(f"default ansible_host=127.0.0.1 ansible_port={stack.sshd.port} "
                         f"ansible_user={stack.sshd.user}\n")
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), "--private-key", str(key),
            "-e", f"out_dir={out_dir}", "-e", "kind=remote", "-e", "packer_build_name=bench",
            "-e", "packer_builder_type=amazon-ebs",
            str(PLAYBOOK)]
    started = time.monotonic()
    r = subprocess.run(argv, env={**env, "ANSIBLE_HOST_KEY_CHECKING": "False"}, capture_output=True,
                       text=True)
    if r.returncode:
        raise SystemExit(f"ansible-playbook failed:\n{r.stdout}\n{r.stderr}")
    return time.monotonic() - started


def stop_masters(control_dir: Path) -> None:
    """Stop the ssh ControlMasters a run left in ``control_dir`` (its ControlPersist would keep them)."""
    for sock in control_dir.iterdir() if control_dir.is_dir() else []:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True,
                       check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "ANSIBLE.md"))
    args = ap.parse_args()
    packer = shutil.which("packer")
    work = Path(tempfile.mkdtemp(prefix="amibake-ansible-bench."))
    stack = Stack(work / "stack")
    stack.start()
    try:
        env = {**os.environ, **stack.env(), "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1",
               "AWS_POLL_DELAY_SECONDS": "1", "AWS_MAX_ATTEMPTS": "60"}
        endpoint = env.pop("AWS_ENDPOINT_URL")
        key = work / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        out_dir = f"/tmp/amibake-ansible-bench-{os.getpid()}"
        variants: dict[str, dict[str, object]] = {
            "amibake, proxy adapter": {},
            "amibake, use_proxy = false": {"use_proxy": False},
        }
        if packer:
            variants["Packer 1.6.6, proxy adapter (with the workaround)"] = {
                "extra_arguments": WORKAROUND_ARGS, "ansible_env_vars": WORKAROUND_ENV}
        limit_name = "ansible-playbook over OpenSSH (limit)"
        times: dict[str, list[float]] = {name: [] for name in [*variants, limit_name]}
        load_before = os.getloadavg()
        for i in range(args.runs + 1):  # the first round warms caches and is not counted
            names = [*variants, limit_name]
            for n, name in enumerate(names if i % 2 == 0 else names[::-1]):
                control_dir = work / f"cp-{i}-{n}"
                control_dir.mkdir()
                run_env = {**env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir)}
                if name == limit_name:
                    seconds = plain_seconds(stack, key, out_dir, run_env)
                else:
                    stack.moto.reset()
                    doc = template(stack, endpoint, out_dir, **variants[name])
                    (work / "t.json").write_text(json.dumps(doc))
                    tool = [packer or "packer"] if name.startswith("Packer") else [str(BIN / "amibake")]
                    seconds = provisioning_seconds([*tool, "build", "-color=false", "t.json"], work, run_env)
                stop_masters(control_dir)
                subprocess.run(["rm", "-rf", out_dir], check=False)
                if i:
                    times[name].append(seconds)
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    limit = statistics.median(times[limit_name])
    rows = ["| how | median s | min-max s | x limit |", "|---|---|---|---|"]
    for name, values in times.items():
        med = statistics.median(values)
        rows.append(f"| {name} | {med:.2f} | {min(values):.2f}-{max(values):.2f} | {med / limit:.2f} |")
    load = os.getloadavg()
    rounds = ["| round | " + " | ".join(times) + " |", "|---" * (len(times) + 1) + "|"]
    rounds += [f"| {r + 1} | " + " | ".join(f"{values[r]:.2f}" for values in times.values()) + " |"
               for r in range(args.runs)]
    paired = []
    proxy, packer_name = "amibake, proxy adapter", next((n for n in times if n.startswith("Packer")), "")
    if packer_name:
        diffs = [p - a for a, p in zip(times[proxy], times[packer_name])]
        faster, med = sum(d > 0 for d in diffs), statistics.median(diffs)
        paired = [f"Paired by round, Packer's proxy minus amibake's: median {med:.2f} s, {min(diffs):.2f} to "
                  f"{max(diffs):.2f} s; amibake's faster in {faster} of {len(diffs)} rounds.", ""]
    text = "\n".join([
        "# The ansible provisioner: amibake, Packer 1.6.6 and plain Ansible (bench/ansible.py)", "",
        f"{args.runs} runs each, alternating (every round in the other order), after one warm-up round, each "
        f"run with its own ssh ControlPath directory; {os.cpu_count()} cores; niceness {os.nice(0)}; load "
        f"average {load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f} at the start, "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end. Seconds of the provisioner step "
        "(a build's 'Provisioning with Ansible...' to its next step line), or of the whole ansible-playbook "
        "process for the limit. Targets: proxy within 1.3x the limit and faster than Packer; "
        "use_proxy = false within 1.1x.", "", *rows, "", *paired, "Each round (seconds):", "", *rounds, ""])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
