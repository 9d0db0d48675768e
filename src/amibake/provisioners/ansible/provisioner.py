"""The ``ansible`` provisioner: run ``ansible-playbook`` on this machine against the machine being built.

Behaviour follows the Packer ansible plugin's ``provisioner/ansible``: by default Ansible reaches the
machine through a local SSH proxy adapter (:mod:`.adapter`) that forwards its sessions over the
build's communicator; with ``use_proxy = false`` it connects to the machine's SSH host, port and user
with the communicator's key. The generated inventory, the ``-e`` variables from the build, the
``--ssh-extra-args`` default, the galaxy install and the messages are Packer's.

Two things differ on purpose: ``ansible-playbook`` is looked up on PATH, then next to amibake's own
Python (the ``amibake[ansible]`` extra); and an ``-e``/``--extra-vars`` argument that holds a secret
(a sensitive variable) is passed to Ansible as ``@file`` (a 0600 JSON file, removed afterwards), so
the secret is never on a command line.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from amibake.api import BuildEnv
from amibake.errors import BuildError

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

log = logging.getLogger("amibake.provisioners.ansible")

DEFAULT_INVENTORY_TEMPLATE = (
    "{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }} ansible_port={{ .Port }}\n"
)
DEFAULT_INVENTORY_TEMPLATE_V1 = (
    "{{ .HostAlias }} ansible_ssh_host={{ .Host }} ansible_ssh_user={{ .User }} "
    "ansible_ssh_port={{ .Port }}\n"
)
HTTP_ADDR_NOT_IMPLEMENTED = "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"
INSTALL_HINT = "pip install 'amibake[ansible]'"

_HAS_ROLES = re.compile(rb"(?m)^roles:")
_HAS_COLLECTIONS = re.compile(rb"(?m)^collections:")
_VERSION = re.compile(r"\w (\d+\.\d+[.\d+]*)")
_EXTRA_VARS_FLAGS = ("-e", "--extra-vars")


def find_tool(name: str) -> str:
    """``name`` on PATH, else next to the running Python (the ``amibake[ansible]`` extra's venv)."""
    found = shutil.which(name)
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    raise BuildError(f"{name} was not found on PATH nor next to amibake's Python ({sys.executable}); "
                     f"install it with: {INSTALL_HINT}")


def kv_to_dict(text: str) -> dict[str, str]:
    """Ansible's ``key=value key2='quoted value'`` form of ``--extra-vars`` as a dict."""
    out: dict[str, str] = {}
    for token in shlex.split(text):
        key, sep, value = token.partition("=")
        if not sep:
            raise ValueError(token)
        out[key] = value
    return out


class AnsibleProvisioner:
    """Packer's ``ansible`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env
        c = config
        self.host_alias: str = c.host_alias or "default"
        self.user_was_empty = not c.user
        self.user: str = c.user or _current_user()
        self.key_type = (c.ansible_proxy_key_type or "ECDSA").upper()
        self.major_version = 2

    # -- the provisioner ------------------------------------------------------------------------

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        c, ui = self.config, self.env.ui
        ui.say("Provisioning with Ansible...")
        command = self.env.render(c.command, build_data) if c.command else find_tool("ansible-playbook")
        if not c.skip_version_check:
            self._check_version(command)
        data = dict(build_data)
        use_proxy = c.use_proxy is not False
        if not use_proxy:
            if not data.get("Host"):
                ui.error("Warning: use_proxy is false, but instance does not have an IP address to give to "
                         "Ansible. Falling back to use localhost proxy.")
                use_proxy = True
            if data.get("ConnType") not in ("ssh", "winrm"):
                ui.error("Warning: use_proxy is false, but communicator is neither ssh nor winrm, so without "
                         "the proxy ansible will not function. Falling back to localhost proxy.")
                use_proxy = True
        if not use_proxy and data.get("ConnType") == "winrm":
            raise BuildError("use_proxy = false with the WinRM communicator is not supported by amibake")

        cleanup: list[Callable[[], None]] = []
        try:
            adapter = None
            priv_key_file = ""
            if use_proxy:
                from amibake.provisioners.ansible.adapter import Adapter

                ui.message("Setting up proxy adapter for Ansible....")
                adapter = Adapter(comm, self.user, sftp_command=c.sftp_command, local_port=c.local_port,
                                  key_type=self.key_type)
                cleanup.append(adapter.close)
                adapter.start()
                priv_key_file = adapter.private_key_file
                data["Host"], data["Port"] = "127.0.0.1", adapter.port
            else:
                ui.message("Not using Proxy adapter for Ansible run:\n"
                           "\tUsing ssh keys from Packer communicator...")
                key_file = str(data.get("SSHPrivateKeyFile") or "")
                if key_file or data.get("SSHAgentAuth"):
                    priv_key_file = key_file
                else:
                    priv_key_file = _private_file("ansible-key", str(data.get("SSHPrivateKey") or ""))
                    cleanup.append(lambda: _remove(priv_key_file))
                if self.user_was_empty:
                    self.user = str(data.get("User") or "")

            inventory = c.inventory_file
            if not inventory:
                inventory = self._create_inventory(data)
                if not c.keep_inventory_file:
                    cleanup.append(lambda: _remove(inventory))
            try:
                self._execute(command, data, inventory, priv_key_file, cleanup)
            except BuildError as exc:
                raise BuildError(f"Error executing Ansible: {exc}") from None
        finally:
            for fn in reversed(cleanup):
                fn()

    # -- steps -----------------------------------------------------------------------------------

    def _check_version(self, command: str) -> None:
        own = _own_ansible_version(command)
        if own:  # the amibake[ansible] extra's: its version without starting Python again
            log.info("%s version: %s", command, own)
            self.major_version = int(own.split(".")[0])
            return
        try:
            out = subprocess.run([command, "--version"], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            hint = f" (install it with: {INSTALL_HINT})" if isinstance(exc, FileNotFoundError) else ""
            raise BuildError(f'Error running "{command} --version": {_go_exec_error(exc)}{hint}') from None
        m = _VERSION.search(out)
        if m is None:
            raise BuildError(f"Could not find {command} version in output:\n{out}")
        log.info("%s version: %s", command, m.group(1))
        self.major_version = int(m.group(1).split(".")[0])

    def _create_inventory(self, data: dict[str, Any]) -> str:
        c = self.config
        template = c.inventory_file_template or (
            DEFAULT_INVENTORY_TEMPLATE if self.major_version >= 2 else DEFAULT_INVENTORY_TEMPLATE_V1)
        data.update(HostAlias=self.host_alias, User=self.user)
        host = self.env.render(template, data)
        content = host + "".join(f"[{g}]\n{host}" for g in c.groups)
        content += "".join(f"[{g}]\n" for g in c.empty_groups)
        directory = os.path.expanduser(c.inventory_directory) if c.inventory_directory else None
        try:
            fd, path = tempfile.mkstemp(prefix="packer-provisioner-ansible", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(content)
        except OSError as exc:
            raise BuildError(f"Error preparing inventory file: {exc}") from None
        return path

    def _env(self) -> dict[str, str]:
        """The environment of ansible-playbook and ansible-galaxy: ours, Packer's additions, then
        ``ansible_env_vars`` (which win)."""
        c = self.config
        env = dict(os.environ)
        if not c.ssh_host_key_file:
            env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
        if c.use_sftp:
            env["ANSIBLE_SSH_TRANSFER_METHOD"] = "sftp"
        else:
            # Packer's (Ansible before 2.17); newer Ansible reads the transfer method
            env["ANSIBLE_SCP_IF_SSH"] = "True"
            env["ANSIBLE_SSH_TRANSFER_METHOD"] = "scp"
        for kv in c.ansible_env_vars:
            key, _, value = kv.partition("=")
            env[key] = value
        return env

    def _galaxy(self, env: dict[str, str]) -> None:
        c = self.config
        galaxy_file = c.galaxy_file
        role_args = ["install", "-r", galaxy_file]
        collection_args = ["collection", "install", "-r", galaxy_file]
        if c.galaxy_force_install:
            role_args.append("-f")
            collection_args.append("-f")
        if c.galaxy_force_with_deps:
            role_args.append("--force-with-deps")
            collection_args.append("--force-with-deps")
        if c.roles_path:
            role_args += ["-p", c.roles_path]
        if c.collections_path:
            collection_args += ["-p", c.collections_path]
        try:
            with open(os.path.expanduser(galaxy_file), "rb") as f:
                text = f.read()
        except OSError as exc:
            raise BuildError(f"Error executing Ansible Galaxy: {exc}") from None
        galaxy = c.galaxy_command or find_tool("ansible-galaxy")
        has_roles, has_collections = bool(_HAS_ROLES.search(text)), bool(_HAS_COLLECTIONS.search(text))
        runs = ((role_args, has_roles or not has_collections), (collection_args, has_collections))
        for args, wanted in runs:
            if not wanted:
                continue
            self.env.ui.message("Executing Ansible Galaxy")
            status = self._stream([galaxy, *args], env)
            if status != 0:
                raise BuildError(
                    f"Error executing Ansible Galaxy: Non-zero exit status: exit status {status}")

    def _execute(self, command: str, data: Mapping[str, Any], inventory: str, priv_key_file: str,
                 cleanup: list[Callable[[], None]]) -> None:
        c, ui = self.config, self.env.ui
        playbook = os.path.abspath(os.path.expanduser(c.playbook_file))
        env = self._env()
        if c.galaxy_file:
            self._galaxy(env)
        args: list[str] = []
        if self.env.build_name:
            args += ["-e", f"packer_build_name={json.dumps(self.env.build_name)}"]
        args += ["-e", f"packer_builder_type={self.env.builder_type}"]
        http_addr = str(data.get("PackerHTTPAddr", HTTP_ADDR_NOT_IMPLEMENTED))
        if http_addr != HTTP_ADDR_NOT_IMPLEMENTED:
            args += ["-e", f"packer_http_addr={http_addr}"]
        if data.get("ConnType") == "ssh" and priv_key_file:
            if c.ansible_ssh_extra_args:
                args += ["--ssh-extra-args", "'" + "' '".join(c.ansible_ssh_extra_args) + "'"]
            else:
                args += ["--ssh-extra-args", "'-o IdentitiesOnly=yes'"]
        args += self._hide_secrets(list(c.extra_arguments), cleanup)
        has_password = any("ansible_password" in a for a in args)
        if not has_password and priv_key_file:
            args += ["-e", f"ansible_ssh_private_key_file={priv_key_file}"]
        if has_password and data.get("ConnType") == "ssh" and not any(
                "ansible_host_key_checking" in a for a in args) and "ANSIBLE_HOST_KEY_CHECKING" not in {
                kv.partition("=")[0] for kv in c.ansible_env_vars}:
            args += ["-e", "ansible_host_key_checking=False"]
        args += ["-i", inventory, playbook]
        ui.say(f"Executing Ansible: {self._sanitized(command, args, data)}")
        status = self._stream([command, *args], env)
        if status != 0:
            raise BuildError(f"Non-zero exit status: exit status {status}")

    def _hide_secrets(self, args: list[str], cleanup: list[Callable[[], None]]) -> list[str]:
        """Each ``-e``/``--extra-vars`` value that holds a secret becomes ``@file`` (0600 JSON)."""
        secrets = [s for s in self.env.secrets if s]
        if not secrets:
            return args
        out: list[str] = []
        i = 0
        while i < len(args):
            start, arg = i, args[i]
            flag, value = "", None
            if arg in _EXTRA_VARS_FLAGS and i + 1 < len(args):
                flag, value = arg, args[i + 1]
                i += 1
            elif arg.startswith("--extra-vars="):
                flag, value = "--extra-vars", arg.partition("=")[2]
            elif arg.startswith("-e") and not arg.startswith("-e="):
                flag, value = "-e", arg[2:]
            i += 1
            if value is None or value.startswith("@") or not any(s in value for s in secrets):
                out += args[start:i]
                continue
            stripped = value.strip()
            try:
                variables = json.loads(stripped) if stripped.startswith("{") else kv_to_dict(stripped)
            except ValueError:
                raise BuildError("an extra_arguments -e value that holds a sensitive variable is neither "
                                 "JSON nor key=value pairs") from None
            path = _private_file("packer-ansible-vars", json.dumps(variables), suffix=".json")
            cleanup.append(lambda p=path: _remove(p))  # type: ignore[misc]
            out += [flag, f"@{path}"]
        return out

    def _sanitized(self, command: str, args: list[str], data: Mapping[str, Any]) -> str:
        """Packer's ``Executing Ansible:`` line: values of ``*password*``/``*secret*`` extra arguments
        and the communicator's passwords as ``*****``."""
        text = " ".join([command, *args])
        for arg in self.config.extra_arguments:
            key, sep, value = arg.partition("=")
            if sep and value and ("password" in key.lower() or "secret" in key.lower()):
                text = text.replace(value, "*****")
        for key in ("WinRMPassword", "Password"):
            secret = data.get(key)
            if isinstance(secret, str) and secret:
                text = text.replace(secret, "*****")
        return text

    def _stream(self, argv: list[str], env: dict[str, str]) -> int:
        """Run ``argv``, each output line (stdout and stderr) as a detail line, blank ones included, as
        Packer 1.6.6 does; stop it on cancel."""
        ui = self.env.ui
        log.debug("[%s] running: %s", self.env.build_name, argv[0])
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            raise BuildError(f"{_go_exec_error(exc)} (install Ansible with: {INSTALL_HINT})") from None
        lock = threading.Lock()

        def pump(stream: Any) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                with lock:
                    ui.message(line)

        threads = [threading.Thread(target=pump, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
        for t in threads:
            t.start()
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.2):
                if self.env.cancel.is_set():
                    try:  # ansible-playbook and its ssh processes: its own process group
                        os.killpg(proc.pid, signal.SIGTERM)
                    except OSError:
                        pass
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            for t in threads:
                t.join()
            status = proc.wait()
        finally:
            stop.set()
        if self.env.cancel.is_set():
            raise BuildError("cancelled while running Ansible")
        return status


def _own_ansible_version(command: str) -> str:
    """The version of ansible-core installed beside amibake when ``command`` is its ansible-playbook
    (next to the running Python), else ""."""
    if os.path.dirname(os.path.abspath(command)) != os.path.dirname(os.path.abspath(sys.executable)):
        return ""
    from importlib import metadata

    try:
        return metadata.version("ansible-core")
    except metadata.PackageNotFoundError:
        return ""


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


def _go_exec_error(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return f"exit status {exc.returncode}"
    if isinstance(exc, FileNotFoundError):
        return f"exec: {exc.filename!r}: executable file not found in $PATH".replace("'", '"')
    return str(exc)


def _private_file(prefix: str, content: str, suffix: str = "") -> str:
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix)  # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(content)
    return path


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
