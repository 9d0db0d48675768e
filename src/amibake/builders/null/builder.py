"""The ``null`` builder (Packer's ``builder/null``): connect to ``ssh_host`` (``winrm_host`` with
``communicator = "winrm"``; nothing with ``"none"``), run the provisioners, export nothing.

Packer's steps are ``StepConnect`` and ``StepProvision``; its artifact exports no file, has the id
``Null`` and says "Did not export anything. This is the null builder".
"""

from __future__ import annotations

import os
from typing import Any

from amibake.api import HTTP_NOT_IMPLEMENTED, BuildEnv, Hooks, open_communicator, provision
from amibake.communicator.base import Communicator
from amibake.errors import BuildError

BUILDER_ID = "fnoeding.null"

#: packer-plugin-sdk ``commonsteps``: the HTTP server values of a builder that has none


class NullArtifact:
    builder_id = BUILDER_ID
    id = "Null"

    def __init__(self) -> None:
        self.files: list[str] = []

    def string(self) -> str:
        return "Did not export anything. This is the null builder"

    def state(self, name: str) -> Any:
        return {"ID": "Null"} if name == "generated_data" else None

    def destroy(self) -> None:
        pass


class NullBuilder:
    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def _private_key(self) -> str:
        path = self.config.ssh_private_key_file
        if not path:
            return ""
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"ssh_private_key_file is invalid: {exc}") from None

    def build_data(self, private_key: str) -> dict[str, Any]:
        """Packer's ``PopulateProvisionHookData`` for this builder (``instance_id`` is ``Null``)."""
        c = self.config
        data: dict[str, Any] = {"ID": "Null", "PackerRunUUID": self.env.run_uuid, **HTTP_NOT_IMPLEMENTED}
        if c.communicator == "none":
            return data
        data.update(
            Host=c.host(),
            **c.connection_data(),
            SSHPublicKey="",
            SSHPrivateKey=private_key,
            SSHPrivateKeyFile=c.ssh_private_key_file,
            SSHAgentAuth=c.ssh_agent_auth,
        )
        return data

    def _connect(self, private_key: str) -> Communicator:
        c, ui = self.config, self.env.ui
        if c.communicator == "none":
            from amibake.communicator.none import NoneCommunicator

            return NoneCommunicator()
        if c.communicator != "ssh":
            # no password step: the template's winrm_password (Packer's null builder has none)
            return open_communicator(c, c.host(), password="", ui=ui, cancel=self.env.cancel)
        from amibake.communicator import ssh

        ui.say(f"Using SSH communicator to connect: {c.ssh_host}")
        ui.say("Waiting for SSH to become available...")
        comm = ssh.connect(
            c.ssh_settings(c.ssh_host, private_key_pem=private_key), cancel=self.env.cancel, log=ui.message
        )
        ui.say("Connected to SSH!")
        return comm

    def run(self, hooks: Hooks) -> NullArtifact | None:
        private_key = self._private_key()
        for secret in (private_key, self.config.ssh_password, self.config.winrm_password):
            if secret and secret not in self.env.secrets:
                self.env.secrets.append(secret)
        comm = self._connect(private_key)
        try:
            provision(hooks, comm, self.build_data(private_key), self.env, self.env.ui)
        finally:
            comm.close()
        if self.env.cancel.is_set():
            raise BuildError("build cancelled")
        return NullArtifact()
