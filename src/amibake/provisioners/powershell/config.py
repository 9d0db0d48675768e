"""The ``powershell`` provisioner's options."""

from typing import Any

from pydantic import Field, field_validator

from amibake.config.base import CheckContext
from amibake.config.durations import Duration
from amibake.config.weak import Bool, Int, Str
from amibake.errors import Problem
from amibake.provisioners.common import RemoteShellCommon, pause_after_field, start_retry_timeout_field

#: Packer's ExecutionPolicy enum in its declaration order: a number in a template names the policy at
#: that position (Packer's StringToExecutionPolicyHook turns "3" into 3, which is remotesigned)
EXECUTION_POLICIES = ("bypass", "allsigned", "default", "remotesigned", "restricted", "undefined",
                      "unrestricted", "none")


class PowershellConfig(RemoteShellCommon):
    """powershell: run PowerShell scripts on a Windows machine."""

    remote_env_var_path: Str = Field(
        "",
        description=(
            "The remote path where the file containing the environment variables will be uploaded to. "
            "This should be set to a writable file that is in a pre-existing directory."
        ),
    )
    elevated_execute_command: Str = Field(
        "",
        description=(
            "The command used to execute the elevated script. The '{{ .Path }}' variable should be used "
            "to specify where the script goes, {{ .Vars }} can be used to inject the environment_vars "
            "into the environment."
        ),
    )
    skip_clean: Bool = Field(
        False,
        description=(
            "Whether to clean scripts up after executing the provisioner. Defaults to false. When true "
            "any script created by a non-elevated Powershell provisioner will be removed from the "
            "remote machine. Elevated scripts, along with the scheduled tasks, will always be removed "
            "regardless of the value set for `skip_clean`."
        ),
    )
    start_retry_timeout: Duration = start_retry_timeout_field()
    elevated_env_var_format: Str = Field(
        "",
        description=(
            "This is used in the template generation to format environment variables inside the "
            "`ElevatedExecuteCommand` template."
        ),
    )
    elevated_user: Str = Field(
        "",
        description=(
            "Instructs the communicator to run the remote script as a Windows scheduled task, "
            "effectively elevating the remote user by impersonating a logged-in user"
        ),
    )
    elevated_password: Str = Field("", description="The password of `elevated_user`.")
    execution_policy: Str = Field(
        "bypass",
        description="The PowerShell execution policy: bypass, allsigned, default, remotesigned, "
        "restricted, undefined, unrestricted or none.",
    )
    debug_mode: Int = Field(
        0,
        description=(
            "If set, sets PowerShell's PSDebug mode on in order to make script debugging easier. For "
            "instance, setting the value to 1 results in adding this to the execute command:"
        ),
    )
    pause_after: Duration = pause_after_field()
    use_pwsh: Bool = Field(
        False,
        description=("Run pwsh.exe instead of powershell.exe - latest version of powershell."),
    )

    @field_validator("execution_policy", mode="before")
    @classmethod
    def _policy_number(cls, value: Any) -> Any:
        """A policy given by its number (``3`` or ``"3"``), as Packer decodes it, becomes its name."""
        text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else None
        if text is not None and text.isdigit() and int(text) < len(EXECUTION_POLICIES):
            return EXECUTION_POLICIES[int(text)]
        return value

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = []
        if self.script and self.scripts:
            errs.append(ctx.problem("Only one of script or scripts can be specified.", "scripts"))
        if not self.elevated_user and self.elevated_password:
            errs.append(
                ctx.problem(
                    "Must supply an 'elevated_user' if 'elevated_password' provided", "elevated_password"
                )
            )
        errs += [e for e in self.check_remote_script(ctx) if "Only one of script or scripts" not in e.message]
        if self.execution_policy.lower() not in EXECUTION_POLICIES:
            errs.append(ctx.problem(f"Invalid execution policy {self.execution_policy}", "execution_policy"))
        if not 0 <= self.debug_mode <= 2:
            errs.append(
                ctx.problem(
                    f"{self.debug_mode} is an invalid Trace level for `debug_mode`; valid values "
                    "are 0, 1, and 2",
                    "debug_mode",
                )
            )
        return errs
