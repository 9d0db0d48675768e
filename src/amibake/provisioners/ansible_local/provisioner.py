"""The ``ansible-local`` provisioner: upload a playbook (and its directory, roles, vars, inventory) to a
staging directory on the machine and run ``ansible-playbook --connection=local`` there.

Behaviour follows the Packer ansible plugin's ``provisioner/ansible-local``: the same staging layout
(``playbook_dir`` as the staging directory itself, ``roles/``, ``playbooks/``, ``group_vars``,
``host_vars``, ``collections/``), the same generated inventory (``127.0.0.1``, in each of
``inventory_groups``), the same remote command lines and messages.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from amibake.api import BuildEnv
from amibake.errors import BuildError, CommunicatorError

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

log = logging.getLogger("amibake.provisioners.ansible_local")

DEFAULT_COMMAND = "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook"
DEFAULT_STAGING_DIR = "/tmp/packer-provisioner-ansible-local"

_HAS_ROLES = re.compile(r"(?m)^roles:")
_HAS_COLLECTIONS = re.compile(r"(?m)^collections:")


def time_ordered_uuid() -> str:
    """Packer's ``uuid.TimeOrderedUUID``: the time in nanoseconds in front, then random bits."""
    ns = time.time_ns()
    rnd = uuid.uuid4().hex
    return f"{ns >> 32:08x}-{(ns >> 16) & 0xFFFF:04x}-{ns & 0xFFFF:04x}-{rnd[:4]}-{rnd[4:16]}"


def _join(*parts: str) -> str:
    """``filepath.ToSlash(filepath.Join(...))``: cleaned, with forward slashes."""
    return os.path.normpath(os.path.join(*parts)).replace(os.sep, "/")


class AnsibleLocalProvisioner:
    """Packer's ``ansible-local`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env
        c = config
        self.command: str = c.command or DEFAULT_COMMAND
        self.galaxy_command: str = c.galaxy_command or "ansible-galaxy"
        self.staging_dir: str = c.staging_directory or _join(DEFAULT_STAGING_DIR, time_ordered_uuid())
        self.galaxy_roles_path: str = c.galaxy_roles_path or _join(self.staging_dir, "galaxy_roles")
        self.galaxy_collections_path: str = c.galaxy_collections_path or _join(
            self.staging_dir, "galaxy_collections")
        self.playbook_files = [os.path.abspath(os.path.expanduser(p)) for p in c.playbook_files]

    # -- the provisioner ------------------------------------------------------------------------

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        c, ui = self.config, self.env.ui
        ui.say("Provisioning with Ansible...")  # the rest are detail lines, as in Packer 1.6.6
        staging = self.staging_dir
        if c.playbook_dir:
            ui.message("Uploading Playbook directory to Ansible staging directory...")
            self._upload_dir(comm, staging, c.playbook_dir, "Error uploading playbook_dir directory")
        else:
            ui.message("Creating Ansible staging directory...")
            self._create_dir(comm, staging, "Error creating staging directory")

        playbooks: list[str] = []
        if c.playbook_file:
            ui.message("Uploading main Playbook file...")
            dst = _join(staging, os.path.basename(c.playbook_file))
            self._upload_file(comm, dst, c.playbook_file, "Error uploading main playbook")
            playbooks.append(dst)
        else:
            playbooks = self._provision_playbook_files(comm)

        inventory_tmp = ""
        try:
            inventory = c.inventory_file
            if not inventory:
                fd, inventory_tmp = tempfile.mkstemp(prefix="packer-provisioner-ansible-local")
                content = "".join(f"[{g}]\n127.0.0.1\n" for g in c.inventory_groups) or "127.0.0.1"
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(content)
                inventory = inventory_tmp

            if c.galaxy_file:
                ui.message("Uploading galaxy file...")
                dst = _join(staging, os.path.basename(c.galaxy_file))
                self._upload_file(comm, dst, c.galaxy_file, "Error uploading galaxy file")

            ui.message("Uploading inventory file...")
            remote_inventory = _join(staging, os.path.basename(inventory))
            self._upload_file(comm, remote_inventory, inventory, "Error uploading inventory file")
        finally:
            if inventory_tmp:
                os.remove(inventory_tmp)

        if c.group_vars:
            ui.message("Uploading group_vars directory...")
            self._upload_dir(comm, _join(staging, "group_vars"), c.group_vars,
                             "Error uploading group_vars directory")
        if c.host_vars:
            ui.message("Uploading host_vars directory...")
            self._upload_dir(comm, _join(staging, "host_vars"), c.host_vars,
                             "Error uploading host_vars directory")
        if c.role_paths:
            ui.message("Uploading role directories...")
            for src in c.role_paths:
                dst = _join(staging, "roles", os.path.basename(os.path.normpath(src)))
                self._upload_dir(comm, dst, src, "Error uploading roles")
        if c.collection_paths:
            ui.message("Uploading collection directories...")
            for src in c.collection_paths:
                dst = _join(staging, "collections", os.path.basename(os.path.normpath(src)))
                self._upload_dir(comm, dst, src, "Error uploading collections")
        if c.playbook_paths:
            ui.message("Uploading additional Playbooks...")
            playbook_dir = _join(staging, "playbooks")
            self._create_dir(comm, playbook_dir, "Error creating playbooks directory")
            for src in c.playbook_paths:
                dst = _join(playbook_dir, os.path.basename(os.path.normpath(src)))
                self._upload_dir(comm, dst, src, "Error uploading playbooks")

        try:
            self._execute_ansible(comm, build_data, playbooks, remote_inventory)
        except BuildError as exc:
            raise BuildError(f"Error executing Ansible: {exc}") from None

        if c.clean_staging_directory:
            ui.message("Removing staging directory...")
            self._remove_dir(comm, staging)

    # -- steps -----------------------------------------------------------------------------------

    def _provision_playbook_files(self, comm: Communicator) -> list[str]:
        """Upload each of ``playbook_files`` not inside ``playbook_dir`` to the staging directory
        under its own (absolute) path, as Packer does; returns their remote paths."""
        playbook_dir = os.path.abspath(os.path.expanduser(self.config.playbook_dir)) \
            if self.config.playbook_dir else ""
        out = []
        for path in self.playbook_files:
            if playbook_dir and path.startswith(playbook_dir):
                out.append(_join(self.staging_dir, path[len(playbook_dir):].lstrip("/")))
                continue
            self.env.ui.message(f"Uploading playbook file: {path}")
            remote = _join(self.staging_dir, path.lstrip("/"))
            try:
                self._create_dir(comm, _join(self.staging_dir, os.path.dirname(path).lstrip("/")), "")
                self._upload_file(comm, remote, path, "")
            except BuildError as exc:
                raise BuildError(f"Error uploading playbook file: {path} [{exc}]") from None
            out.append(remote)
        return out

    def _execute_ansible(self, comm: Communicator, build_data: Mapping[str, Any], playbooks: list[str],
                         inventory: str) -> None:
        c = self.config
        extra = (f' --extra-vars "packer_build_name={self.env.build_name} '
                 f'packer_builder_type={self.env.builder_type} '
                 f'packer_http_addr={build_data.get("PackerHTTPAddr", "")} -o IdentitiesOnly=yes" ')
        if c.extra_arguments:
            extra += " ".join(c.extra_arguments)
        galaxy = ""
        if c.galaxy_file:
            try:
                with open(os.path.expanduser(c.galaxy_file), encoding="utf-8", errors="replace") as f:
                    galaxy = f.read()
            except OSError as exc:
                raise BuildError(str(exc)) from None
            self._execute_galaxy(comm, galaxy)
        for playbook in playbooks:
            self._execute_playbook(comm, playbook, extra, inventory, galaxy)

    def _execute_galaxy(self, comm: Communicator, galaxy: str) -> None:
        c = self.config
        galaxy_file = _join(self.staging_dir, os.path.basename(c.galaxy_file))
        role_args = ["install", "-r", galaxy_file, "-p", self.galaxy_roles_path]
        collection_args = ["collection", "install", "-r", galaxy_file, "-p", self.galaxy_collections_path]
        if c.galaxy_force_install:
            role_args.append("-f")
            collection_args.append("-f")
        has_roles, has_collections = bool(_HAS_ROLES.search(galaxy)), bool(_HAS_COLLECTIONS.search(galaxy))
        try:
            if has_roles or not has_collections:
                self._galaxy(comm, role_args)
            if has_collections:
                self._galaxy(comm, collection_args)
        except BuildError as exc:
            raise BuildError(f"Error executing Ansible Galaxy: {exc}") from None

    def _galaxy(self, comm: Communicator, args: list[str]) -> None:
        command = f"cd {self.staging_dir} && {self.galaxy_command} {' '.join(args)}"
        self.env.ui.message(f"Executing Ansible Galaxy: {command}")
        status = self._run(comm, command)
        if status != 0:
            raise BuildError(f"Non-zero exit status: {status}")

    def _execute_playbook(self, comm: Communicator, playbook: str, extra: str, inventory: str,
                          galaxy: str) -> None:
        c = self.config
        env_vars = ""
        collections_path = []
        if _HAS_COLLECTIONS.search(galaxy):
            collections_path.append(self.galaxy_collections_path)
        if c.collection_paths:
            collections_path.append(_join(self.staging_dir, "collections"))
        if collections_path:
            env_vars += f" ANSIBLE_COLLECTIONS_PATH=$ANSIBLE_COLLECTIONS_PATH:{':'.join(collections_path)}"
        if _HAS_ROLES.search(galaxy):
            env_vars += f" ANSIBLE_ROLES_PATH=$ANSIBLE_ROLES_PATH:{self.galaxy_roles_path}"
        command = (f"cd {self.staging_dir} && {env_vars} {self.command} {playbook}{extra} -c local "
                   f"-i {inventory}")
        self.env.ui.message(f"Executing Ansible: {command}")
        status = self._run(comm, command)
        if status == 127:
            raise BuildError(f"{self.command} could not be found. Verify that it is available on the\n"
                             "PATH after connecting to the machine.")
        if status != 0:
            raise BuildError(f"Non-zero exit status: {status}")

    def _run(self, comm: Communicator, command: str) -> int:
        ui = self.env.ui
        log.debug("[%s] running: %s", self.env.build_name, command)
        return comm.run(command, stdout=lambda line: ui.message(line.rstrip()),
                        stderr=lambda line: ui.error(line.rstrip()))

    def _upload_file(self, comm: Communicator, dst: str, src: str, what: str) -> None:
        try:
            with open(os.path.expanduser(src), "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BuildError(_prefixed(what, f"Error opening: {exc}")) from None
        try:
            comm.upload(dst, data)
        except CommunicatorError as exc:
            raise BuildError(_prefixed(what, f"Error uploading {src}: {exc}")) from None

    def _create_dir(self, comm: Communicator, path: str, what: str) -> None:
        self.env.ui.message(f"Creating directory: {path}")
        if self._run(comm, f"mkdir -p '{path}'") != 0:
            raise BuildError(_prefixed(what, "Non-zero exit status. See output above for more information."))

    def _remove_dir(self, comm: Communicator, path: str) -> None:
        self.env.ui.message(f"Removing directory: {path}")
        if self._run(comm, f"rm -rf '{path}'") != 0:
            raise BuildError("Error removing staging directory: Non-zero exit status. See output above for "
                             "more information.")

    def _upload_dir(self, comm: Communicator, dst: str, src: str, what: str) -> None:
        self._create_dir(comm, dst, what)
        src = os.path.expanduser(src)
        try:
            comm.upload_dir(dst, src if src.endswith("/") else src + "/")
        except CommunicatorError as exc:
            raise BuildError(_prefixed(what, str(exc))) from None


def _prefixed(what: str, message: str) -> str:
    return f"{what}: {message}" if what else message
