"""The ``ansible`` provisioner's command line, environment, inventory and galaxy calls, and
``ansible-local``'s galaxy and collection options, observed through stand-in executables that record
what they were given (no Ansible run; the stack tests run real playbooks).

``ansible`` with ``use_proxy = false`` needs no communicator: it runs ``command`` here. ``ansible-local``
gets a communicator that records the commands and uploads it is asked for.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from amibake.communicator.base import Communicator, LineSink
from amibake.config.base import CheckContext, decode
from amibake.errors import BuildError
from amibake.provisioners.ansible.config import AnsibleConfig
from amibake.provisioners.ansible.provisioner import AnsibleProvisioner
from amibake.provisioners.ansible_local.config import AnsibleLocalConfig
from amibake.provisioners.ansible_local.provisioner import AnsibleLocalProvisioner
from tests.unit.test_provisioners_local import RecordingUi, make_env

HTTP_NONE = "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"
BUILD_DATA = {"ConnType": "ssh", "Host": "10.1.2.3", "Port": 2222, "User": "ec2-user",
              "SSHPrivateKey": "PRIVATE-KEY-PEM", "SSHPrivateKeyFile": "", "SSHAgentAuth": False,
              "PackerHTTPAddr": HTTP_NONE}

RECORDER = '''#!{python}
import json, os, stat, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("ansible-playbook [core 2.19.1]")
    sys.exit(int(os.environ.get("FAKE_VERSION_STATUS", "0")))
files = {{}}
for i, a in enumerate(args):
    for p in ([a[1:]] if a.startswith("@") else []) + ([args[i + 1]] if a == "-i" else []) + (
            [a.partition("=")[2]] if a.startswith("ansible_ssh_private_key_file=") else []):
        files[p] = {{"text": open(p).read(), "mode": oct(stat.S_IMODE(os.stat(p).st_mode))}}
rec = {{"argv": args, "files": files,
       "env": {{k: v for k, v in os.environ.items() if k.startswith(("ANSIBLE", "FAKE"))}}}}
with open(os.environ["FAKE_RECORD"], "a") as f:
    f.write(json.dumps(rec) + "\\n")
print("PLAY RECAP", flush=True)
if os.environ.get("FAKE_SLEEP"):
    import time
    time.sleep(float(os.environ["FAKE_SLEEP"]))
sys.exit(int(os.environ.get("FAKE_STATUS", "0")))
'''


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``ansible-playbook`` (and ``ansible-galaxy``) that records its calls."""
    exe = tmp_path / "fake-ansible"
    exe.write_text(RECORDER.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("FAKE_RECORD", str(tmp_path / "record.jsonl"))
    (tmp_path / "play.yml").write_text("- hosts: all\n")
    return exe


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ansible(tmp_path: Path, fake: Path, ui: RecordingUi | None = None, secrets: Sequence[str] = (),
            **options: Any) -> AnsibleProvisioner:
    raw = {"playbook_file": str(tmp_path / "play.yml"), "command": str(fake), "use_proxy": False, **options}
    config, problems, _ = decode(AnsibleConfig, raw, CheckContext(tmp_path, "provisioners[0]"))
    assert not problems and config is not None, problems
    return AnsibleProvisioner(config, make_env(ui, build_name="b1", builder_type="amazon-ebs",
                                               secrets=list(secrets)))


@pytest.mark.effect("provisioner/ansible", "use_proxy", "command", "host_alias", "groups", "empty_groups",
                    "extra_arguments", "ansible_env_vars", "ansible_ssh_extra_args")
def test_direct_command_line_inventory_and_environment(tmp_path: Path, fake: Path) -> None:
    ui = RecordingUi()
    ansible(tmp_path, fake, ui, host_alias="web1", groups=["a", "b"], empty_groups=["e"],
            extra_arguments=["--tags", "x"], ansible_env_vars=["ANSIBLE_FORKS=3", "FAKE_X=1"],
            ansible_ssh_extra_args=["-o A=1", "-o B=2"]).provision(None, BUILD_DATA)  # type: ignore[arg-type]
    (call,) = calls(tmp_path)
    argv = call["argv"]
    key_file = argv[argv.index("-i") - 1].partition("=")[2]
    inventory = argv[argv.index("-i") + 1]
    assert argv == ["-e", 'packer_build_name="b1"', "-e", "packer_builder_type=amazon-ebs",
                    "--ssh-extra-args", "'-o A=1' '-o B=2'", "--tags", "x",
                    "-e", f"ansible_ssh_private_key_file={key_file}", "-i", inventory,
                    str(tmp_path / "play.yml")]
    host = "web1 ansible_host=10.1.2.3 ansible_user=ec2-user ansible_port=2222\n"
    assert call["files"][inventory]["text"] == f"{host}[a]\n{host}[b]\n{host}[e]\n"
    # the communicator's key, in a private file, gone afterwards with the inventory
    assert call["files"][key_file] == {"text": "PRIVATE-KEY-PEM", "mode": "0o600"}
    assert not os.path.exists(key_file) and not os.path.exists(inventory)
    assert call["env"]["ANSIBLE_FORKS"] == "3" and call["env"]["FAKE_X"] == "1"
    assert call["env"]["ANSIBLE_HOST_KEY_CHECKING"] == "False"
    assert call["env"]["ANSIBLE_SSH_TRANSFER_METHOD"] == "scp"  # use_sftp false
    not_proxy = "Not using Proxy adapter for Ansible run:\n\tUsing ssh keys from Packer communicator..."
    assert ("message", not_proxy) in ui.lines
    assert ("message", "PLAY RECAP") in ui.lines  # the output, as detail lines (Packer 1.6.6's ui.Message)
    assert any(m.startswith(f"Executing Ansible: {fake} -e packer_build_name=") for m in ui.of("say"))


@pytest.mark.effect("provisioner/ansible", "use_sftp", "user", "inventory_file_template", "inventory_file")
def test_sftp_user_and_inventory_options(tmp_path: Path, fake: Path) -> None:
    ansible(tmp_path, fake, use_sftp=True, user="deploy",
            inventory_file_template="{{ .HostAlias }} h={{ .Host }} u={{ .User }}\n",
            ).provision(None, BUILD_DATA)  # type: ignore[arg-type]
    (call,) = calls(tmp_path)
    inventory = call["argv"][call["argv"].index("-i") + 1]
    assert call["files"][inventory]["text"] == "default h=10.1.2.3 u=deploy\n"
    assert call["env"]["ANSIBLE_SSH_TRANSFER_METHOD"] == "sftp"
    (tmp_path / "record.jsonl").unlink()
    (tmp_path / "hosts.ini").write_text("mine\n")
    ansible(tmp_path, fake, inventory_file=str(tmp_path / "hosts.ini")).provision(
        None, BUILD_DATA)  # type: ignore[arg-type]
    (call,) = calls(tmp_path)
    assert call["argv"][-3:] == ["-i", str(tmp_path / "hosts.ini"), str(tmp_path / "play.yml")]
    assert (tmp_path / "hosts.ini").read_text() == "mine\n"


def test_sensitive_extra_vars_go_through_a_private_file(tmp_path: Path, fake: Path) -> None:
    ui = RecordingUi()
    secret = "hunter2-canary"
    ansible(tmp_path, fake, ui, secrets=[secret],
            extra_arguments=["-e", f"db_password={secret} region='us east'", "-e", "plain=1",
                             f'--extra-vars={{"token": "{secret}"}}']).provision(
        None, BUILD_DATA)  # type: ignore[arg-type]
    (call,) = calls(tmp_path)
    assert secret not in json.dumps(call["argv"])
    files = [(p, f) for p, f in call["files"].items() if p.endswith(".json")]
    assert len(files) == 2
    contents = sorted((json.loads(f["text"]) for _, f in files), key=len)
    assert contents == [{"token": secret}, {"db_password": secret, "region": "us east"}]
    assert all(f["mode"] == "0o600" and not os.path.exists(p) for p, f in files)
    assert "-e" in call["argv"] and "plain=1" in call["argv"]
    assert secret not in "\n".join(m for _, m in ui.lines)


@pytest.mark.effect("provisioner/ansible", "skip_version_check")
def test_version_check(tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VERSION_STATUS", "1")
    with pytest.raises(BuildError, match=r'Error running ".*fake-ansible --version": exit status 1'):
        ansible(tmp_path, fake).provision(None, BUILD_DATA)  # type: ignore[arg-type]
    assert calls(tmp_path) == []
    ansible(tmp_path, fake, skip_version_check=True).provision(None, BUILD_DATA)  # type: ignore[arg-type]
    assert len(calls(tmp_path)) == 1


def test_failed_play_and_missing_ansible(tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_STATUS", "2")
    with pytest.raises(BuildError, match=r"^Error executing Ansible: Non-zero exit status: exit status 2$"):
        ansible(tmp_path, fake).provision(None, BUILD_DATA)  # type: ignore[arg-type]
    # neither on PATH nor next to the running Python: how to install it, no traceback
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(BuildError, match=r"ansible-playbook was not found .* 'amibake\[ansible\]'"):
        ansible(tmp_path, fake, command="").provision(None, BUILD_DATA)  # type: ignore[arg-type]


def test_cancel_stops_ansible(tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "60")
    prov = ansible(tmp_path, fake, skip_version_check=True)
    threading.Timer(0.5, prov.env.cancel.set).start()
    started = time.monotonic()
    with pytest.raises(BuildError, match="cancelled while running Ansible"):
        prov.provision(None, BUILD_DATA)  # type: ignore[arg-type]
    assert time.monotonic() - started < 30


@pytest.mark.effect("provisioner/ansible", "galaxy_file", "galaxy_command", "galaxy_force_install",
                    "galaxy_force_with_deps", "roles_path", "collections_path")
def test_galaxy(tmp_path: Path, fake: Path) -> None:
    req = tmp_path / "requirements.yml"
    req.write_text("roles:\n  - src: x.tar.gz\ncollections:\n  - name: y.tar.gz\n")
    ansible(tmp_path, fake, galaxy_file=str(req), galaxy_command=str(fake), galaxy_force_install=True,
            galaxy_force_with_deps=True, roles_path="r", collections_path="c").provision(
        None, BUILD_DATA)  # type: ignore[arg-type]
    roles, collections, _play = (c["argv"] for c in calls(tmp_path))
    assert roles == ["install", "-r", str(req), "-f", "--force-with-deps", "-p", "r"]
    assert collections == ["collection", "install", "-r", str(req), "-f", "--force-with-deps", "-p", "c"]
    (tmp_path / "record.jsonl").unlink()
    req.write_text("- src: x.tar.gz\n")  # the v1 format: roles only
    ansible(tmp_path, fake, galaxy_file=str(req), galaxy_command=str(fake), skip_version_check=True,
            ).provision(None, BUILD_DATA)  # type: ignore[arg-type]
    assert calls(tmp_path)[0]["argv"] == ["install", "-r", str(req)]
    assert len(calls(tmp_path)) == 2


class RecordingComm(Communicator):
    """Records the commands run and the files uploaded (ansible-local drives nothing else)."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.uploads: dict[str, bytes] = {}
        self.dirs: list[tuple[str, str]] = []

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        self.commands.append(command)
        return 0

    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        assert isinstance(src, bytes)
        self.uploads[dst] = src

    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        self.dirs.append((dst, src))

    def download(self, src: str, dst: Path | BinaryIO) -> None:
        raise AssertionError

    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        raise AssertionError

    def close(self) -> None:
        pass


@pytest.mark.effect("provisioner/ansible-local", "galaxy_roles_path", "galaxy_collections_path",
                    "galaxy_force_install", "collection_paths")
def test_local_galaxy_and_collections(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text("- hosts: all\n")
    (tmp_path / "req.yml").write_text("roles:\n  - src: a\ncollections:\n  - name: b\n")
    (tmp_path / "ns" / "coll").mkdir(parents=True)
    raw = {"playbook_file": str(tmp_path / "play.yml"), "galaxy_file": str(tmp_path / "req.yml"),
           "galaxy_roles_path": "/opt/roles", "galaxy_collections_path": "/opt/colls",
           "galaxy_force_install": True, "collection_paths": [str(tmp_path / "ns")],
           "staging_directory": "/stage"}
    config, problems, _ = decode(AnsibleLocalConfig, raw, CheckContext(tmp_path, "provisioners[0]"))
    assert not problems and config is not None
    comm = RecordingComm()
    AnsibleLocalProvisioner(config, make_env(build_name="b1", builder_type="null")).provision(
        comm, {"PackerHTTPAddr": HTTP_NONE})
    assert ("/stage/collections/ns", str(tmp_path / "ns") + "/") in comm.dirs
    assert "cd /stage && ansible-galaxy install -r /stage/req.yml -p /opt/roles -f" in comm.commands
    assert "cd /stage && ansible-galaxy collection install -r /stage/req.yml -p /opt/colls -f" \
        in comm.commands
    (play,) = [c for c in comm.commands if "ansible-playbook" in c]
    assert play.startswith(
        "cd /stage &&  ANSIBLE_COLLECTIONS_PATH=$ANSIBLE_COLLECTIONS_PATH:/opt/colls:/stage/collections "
        "ANSIBLE_ROLES_PATH=$ANSIBLE_ROLES_PATH:/opt/roles ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 "
        "ansible-playbook /stage/play.yml --extra-vars \"packer_build_name=b1 packer_builder_type=null "
        f"packer_http_addr={HTTP_NONE} -o IdentitiesOnly=yes\"  -c local "
        "-i /stage/packer-provisioner-ansible-local")
    assert comm.uploads["/stage/req.yml"].startswith(b"roles:")
    inventory = [k for k in comm.uploads if "packer-provisioner-ansible-local" in k]
    assert [comm.uploads[k] for k in inventory] == [b"127.0.0.1"]
    assert stat.S_ISREG(os.stat(tmp_path / "play.yml").st_mode)


def test_the_example_validates_with_required_plugins_ansible(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/ansible.pkr.hcl names github.com/hashicorp/ansible in required_plugins: the built-in
    provisioners satisfy it (an unknown plugin is still refused by name)."""
    from tests.unit.test_plugins_command import cli_run

    example = Path(__file__).resolve().parents[2] / "examples" / "ansible.pkr.hcl"
    monkeypatch.chdir(example.parent)
    assert cli_run("validate", example.name) == (0, "The configuration is valid.\n")
    (tmp_path / "ansible").mkdir()
    (tmp_path / "ansible" / "playbook.yml").write_text("- hosts: all\n")
    (tmp_path / "t.pkr.hcl").write_text(example.read_text().replace("hashicorp/ansible", "hashicorp/nope"))
    monkeypatch.chdir(tmp_path)
    code, out = cli_run("validate", "t.pkr.hcl")
    assert code == 1 and 'Missing plugin: plugin "ansible" (github.com/hashicorp/nope)' in out, out


def test_the_extras_version_is_read_without_running_it(tmp_path: Path, fake: Path) -> None:
    """ansible-playbook beside amibake's Python (the amibake[ansible] extra) is checked by its package's
    version; any other command by running ``--version``, as Packer does."""
    from importlib import metadata

    from amibake.provisioners.ansible.provisioner import _own_ansible_version

    beside = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    assert _own_ansible_version(beside) == metadata.version("ansible-core")
    assert _own_ansible_version(str(fake)) == ""
