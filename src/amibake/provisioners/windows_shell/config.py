"""The ``windows-shell`` provisioner's options."""

from amibake.config.base import CheckContext
from amibake.config.durations import Duration
from amibake.errors import Problem
from amibake.provisioners.common import RemoteShellCommon, start_retry_timeout_field


class WindowsShellConfig(RemoteShellCommon):
    """windows-shell: run cmd scripts on a Windows machine."""

    start_retry_timeout: Duration = start_retry_timeout_field()

    def check(self, ctx: CheckContext) -> list[Problem]:
        return self.check_remote_script(ctx)
