"""The ``shell`` provisioner's options."""

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.durations import Duration
from amibake.config.weak import Bool, Str
from amibake.errors import Problem
from amibake.provisioners.common import (
    RemoteShellCommon,
    inline_shebang_field,
    pause_after_field,
    start_retry_timeout_field,
)


class ShellConfig(RemoteShellCommon):
    """shell: run shell scripts on the machine."""

    inline_shebang: Str = inline_shebang_field()
    pause_after: Duration = pause_after_field()
    use_env_var_file: Bool = Field(
        False,
        description=("Write the Vars to a file and source them from there rather than declaring inline"),
    )
    remote_folder: Str = Field(
        "/tmp",
        description=(
            "The remote folder where the local shell script will be uploaded to. This should be set to "
            "a pre-existing directory, it defaults to /tmp"
        ),
    )
    remote_file: Str = Field(
        "",
        description=("The remote file name of the local shell script. This defaults to script_nnn.sh"),
    )
    start_retry_timeout: Duration = start_retry_timeout_field()
    skip_clean: Bool = Field(False, description="Whether to clean scripts up")
    expect_disconnect: Bool = Field(
        False, description="Defaults to false. Whether to error if the server disconnects us."
    )

    @property
    def effective_env_var_format(self) -> str:
        if self.env_var_format:
            return self.env_var_format
        return "export %s='%s'\n" if self.use_env_var_file else "%s='%s' "

    @property
    def effective_execute_command(self) -> str:
        if self.execute_command:
            return self.execute_command
        if self.use_env_var_file:
            return "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"
        return "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"

    def check(self, ctx: CheckContext) -> list[Problem]:
        return self.check_remote_script(ctx)
