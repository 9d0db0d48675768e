"""The ``breakpoint`` provisioner: pause the build until the user presses Enter.

As Packer's ``provisioner/breakpoint``: ``disable`` turns it into a message; ``note`` is shown.
The wait is :meth:`amibake.api.Ui.ask`, which returns at once when there is no terminal, so a
build without a TTY prints the messages and continues.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from amibake.api import BuildEnv

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator


class BreakpointProvisioner:
    """Packer's ``breakpoint`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        ui = self.env.ui
        note = self.config.note or ""
        if self.config.disable:
            if note:
                ui.say(f'Breakpoint provisioner with note "{note}" disabled; continuing...')
            else:
                ui.say("Breakpoint provisioner disabled; continuing...")
            return
        if note:
            ui.say(f'Pausing at breakpoint provisioner with note "{note}".')
        else:
            ui.say("Pausing at breakpoint provisioner.")
        ui.ask("Press enter to continue.")
