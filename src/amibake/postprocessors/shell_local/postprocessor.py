"""The ``shell-local`` post-processor: run local scripts after a build, with its generated data.

The same engine as the ``shell-local`` provisioner (:func:`run_shell_local`); as in Packer, an
``execute_command`` of a single string runs through ``sh -c``, and the input artifact is kept.
"""

from __future__ import annotations

from typing import Any

from amibake.api import Artifact, BuildEnv
from amibake.provisioners.shell_local.provisioner import execute_command_of, run_shell_local


class ShellLocalPostProcessor:
    """Packer's ``shell-local`` post-processor."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        data = dict(artifact.state("generated_data") or {})
        run_shell_local(self.config, self.env, data, execute_command_of(self.config, post_processor=True))
        return artifact, True, True
