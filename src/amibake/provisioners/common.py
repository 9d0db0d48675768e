"""What the provisioner configs share: the shell-like bases (the SDK's ``shell.Provisioner`` and
``shell.ProvisionerRemoteSpecific``), their checks and field declarations, and the options
ansible and ansible-local both declare.

``only``/``except``/``override``/``pause_before``/``max_retries``/``timeout`` are handled by the core
and are not part of these configs.
"""

from typing import Any

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Bool, IntList, Str, StrList, StrMap
from amibake.errors import Problem


def env_var_problems(ctx: CheckContext, env: list[str]) -> list[Problem]:
    """``environment_vars`` entries must read ``key=value`` with a non-empty key."""
    return [
        ctx.problem(f"Environment variable not in format 'key=value': {kv}", f"environment_vars[{i}]")
        for i, kv in enumerate(env)
        if "=" not in kv or kv.startswith("=")
    ]


def script_problems(ctx: CheckContext, scripts: list[str]) -> list[Problem]:
    out = []
    for i, path in enumerate(scripts):
        missing = ctx.stat_error(path)
        if missing:
            out.append(ctx.problem(f"Bad script '{path}': {missing}", f"scripts[{i}]"))
    return out


def execute_command_field(**default: Any) -> Any:
    """``execute_command`` of the remote shells (a string) and of shell-local (a list)."""
    return Field(
        **default,
        description=(
            "The command used to execute the script. The '{{ .Path }}' variable should be used to "
            "specify where the script goes, {{ .Vars }} can be used to inject the environment_vars into "
            "the environment."
        ),
    )


def inline_shebang_field() -> Any:
    """``inline_shebang`` of shell and shell-local."""
    return Field(
        "/bin/sh -e",
        description=("The shebang value used when running inline scripts."),
    )


def pause_after_field() -> Any:
    """``pause_after`` of shell and powershell."""
    return Field(0.0, description="A duration of how long to pause after the provisioner")


def start_retry_timeout_field() -> Any:
    """``start_retry_timeout`` of shell, powershell and windows-shell."""
    return Field(
        300.0,
        description=(
            "The timeout for retrying to start the process. Until this timeout is reached, if the "
            "provisioner can't start a process, it retries. This can be set high to allow for reboots."
        ),
    )


class ShellCommon(PluginConfig):
    """Options every shell-like provisioner shares (the SDK's ``shell.Provisioner``)."""

    inline: StrList = Field(
        default_factory=list,
        description=(
            "An inline script to execute. Multiple strings are all executed in the context of a single shell."
        ),
    )
    script: Str = Field("", description="The local path of the shell script to upload and execute.")
    scripts: StrList = Field(default_factory=list, description="An array of multiple scripts to run.")
    valid_exit_codes: IntList = Field(
        default_factory=list,
        description=(
            "Valid Exit Codes - 0 is not always the only valid error code! See "
            "http://www.symantec.com/connect/articles/windows-system-error-codes-exit-codes-description "
            'for examples such as 3010 - "The requested operation is successful.'
        ),
    )
    environment_vars: StrList = Field(
        default_factory=list,
        description=(
            "An array of environment variables that will be injected before your command(s) are "
            "executed. Any duplicate vars will be overridden by `env`."
        ),
    )
    env: StrMap = Field(
        default_factory=dict,
        description=(
            "An map of environment variables that will be injected before your command(s) are executed. "
            "Any duplicate `environment_vars` will be overridden by `env`."
        ),
    )
    env_var_format: Str = Field(
        "",
        description=(
            "This is used in the template generation to format environment variables inside the "
            "`ExecuteCommand` template."
        ),
    )

    @property
    def all_scripts(self) -> list[str]:
        """``scripts``, or ``[script]``."""
        return [self.script] if self.script else list(self.scripts)

    def local_inputs(self) -> list[tuple[str, str]]:
        if self.script:
            return [("script", self.script)]
        return [(f"scripts[{i}]", s) for i, s in enumerate(self.scripts)]

    def check_remote_script(self, ctx: CheckContext) -> list[Problem]:
        """The rules of the remote shell provisioners (shell, powershell, windows-shell)."""
        errs = []
        if self.script and self.scripts:
            errs.append(ctx.problem("Only one of script or scripts can be specified.", "scripts"))
        scripts = self.all_scripts
        if not scripts and not self.inline:
            errs.append(ctx.problem("Either a script file or inline script must be specified."))
        elif scripts and self.inline:
            errs.append(
                ctx.problem("Only a script file or an inline script can be specified, not both.", "inline")
            )
        errs += script_problems(ctx, scripts)
        errs += env_var_problems(ctx, self.environment_vars)
        return errs


class RemoteShellCommon(ShellCommon):
    """The SDK's ``shell.ProvisionerRemoteSpecific``."""

    binary: Bool = Field(
        False,
        description=(
            "If true, the script contains binary and line endings will not be converted from Windows to "
            "Unix-style."
        ),
    )
    remote_path: Str = Field(
        "",
        description=(
            "The remote path where the local shell script will be uploaded to. This should be set to a "
            "writable file that is in a pre-existing directory. This defaults to "
            "remote_folder/remote_file"
        ),
    )
    execute_command: Str = execute_command_field(default="")


def file_problem(ctx: CheckContext, key: str, path: str, *, directory: bool = False) -> Problem | None:
    missing = ctx.stat_error(path)
    if missing:
        return ctx.problem(f"{key}: {path} is invalid: {missing}", key)
    if directory and ctx.check_files:
        import os

        if not os.path.isdir(os.path.expanduser(path)):
            return ctx.problem(f"{key}: {path} must point to a directory", key)
    return None


def ansible_command_field() -> Any:
    """``command`` of ansible and ansible-local."""
    return Field(
        "",
        description=(
            "The command to invoke ansible. Defaults to `ansible-playbook`. If you would like to "
            "provide a more complex command, for example, something that sets up a virtual environment "
            "before calling ansible, take a look at the ansible wrapper guide here for inspiration. "
            "Please note that Packer expects Command to be a path to an executable. Arbitrary bash "
            "scripting will not work and needs to go inside an executable script."
        ),
    )


def extra_arguments_field() -> Any:
    """``extra_arguments`` of ansible and ansible-local."""
    return Field(
        default_factory=list,
        description=(
            "Extra arguments to pass to Ansible. These arguments _will not_ be passed through a shell "
            "and arguments should not be quoted. Usage example:"
        ),
    )


def galaxy_file_field() -> Any:
    """``galaxy_file`` of ansible and ansible-local."""
    return Field(
        "",
        description=(
            "A requirements file which provides a way to install roles or collections with the "
            "ansible-galaxy cli on the local machine before executing `ansible-playbook`. By default, "
            "this is empty."
        ),
    )


def galaxy_command_field() -> Any:
    """``galaxy_command`` of ansible and ansible-local."""
    return Field(
        "",
        description=("The command to invoke ansible-galaxy. By default, this is `ansible-galaxy`."),
    )


def galaxy_force_install_field() -> Any:
    """``galaxy_force_install`` of ansible and ansible-local."""
    return Field(
        False,
        description=(
            "Force overwriting an existing role. Adds `--force` option to `ansible-galaxy` command. By "
            "default, this is `false`."
        ),
    )
