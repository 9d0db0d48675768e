"""Typed configuration of the provisioners: shell, shell-local, file, breakpoint, powershell,
windows-restart, windows-shell, ansible and ansible-local.

``only``/``except``/``override``/``pause_before``/``max_retries``/``timeout`` are handled by the core
and are not part of these configs.
"""

import os
import sys
from typing import Any

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.durations import Duration
from amibake.config.weak import Bool, Int, IntList, Str, StrList, StrMap, Trilean
from amibake.errors import Problem

ONLY_ON_OS = ("darwin", "freebsd", "linux", "openbsd", "solaris", "windows")


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


class ShellLocalConfig(ShellCommon):
    """shell-local (provisioner and post-processor): run commands on the machine running amibake."""

    command: Str = Field(
        "",
        description=(
            "** DEPRECATED: USE INLINE INSTEAD ** ** Only Present for backwards compatibility ** "
            "Command is the command to execute"
        ),
    )
    execute_command: StrList = execute_command_field(default_factory=list)
    inline_shebang: Str = inline_shebang_field()
    only_on: StrList = Field(default_factory=list, description="An array of multiple Runtime OSs to run on.")
    tempfile_extension: Str = Field(
        "",
        description=("The file extension to use for the file generated from the inline commands"),
    )
    use_linux_pathing: Bool = Field(False, description="End dedupe with postprocessor")

    @property
    def all_inline(self) -> list[str]:
        """``inline``, or ``[command]``."""
        return [self.command] if self.command else list(self.inline)

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = []
        if not self.command and not self.inline and not self.scripts and not self.script:
            errs.append(p("Command, Inline, Script and Scripts options cannot all be empty."))
        too_many = (
            "You may only specify one of the following options: Command, Inline, Script or Scripts. "
            "Please consolidate these options in your config."
        )
        if (
            (self.command and (self.inline or self.scripts or self.script))
            or (self.script and (self.scripts or self.inline))
            or (self.scripts and self.inline)
        ):
            errs.append(p(too_many))
        errs += script_problems(ctx, self.all_scripts)
        for i, os_name in enumerate(self.only_on):
            if os_name not in ONLY_ON_OS:
                errs.append(
                    p(
                        f"Invalid OS specified in only_on: '{os_name}'\nSupported OS names: "
                        + ", ".join(ONLY_ON_OS),
                        f"only_on[{i}]",
                    )
                )
                break
        if self.use_linux_pathing:
            # Packer converts each script's absolute path to WSL's /mnt/<drive>/...: a path without a
            # drive (any path on the machines amibake runs on) is an error
            for i, path in enumerate(self.all_scripts):
                absolute = os.path.abspath(path).replace("\\", "/")
                if ":/" not in absolute:
                    errs.append(
                        p(
                            "There was an error splitting your absolute path; expected to find a drive "
                            f"following the format ':/' but did not: absolute path: {absolute}",
                            f"scripts[{i}]" if self.scripts else "script",
                        )
                    )
        if self.use_linux_pathing and self.all_inline:
            errs.append(
                p(
                    "Packer is unable to use the Command and Inline features with the Windows Linux "
                    "Subsystem. Please use the Script or Scripts options instead",
                    "use_linux_pathing",
                )
            )
        errs += env_var_problems(ctx, self.environment_vars)
        return errs

    def runs_here(self) -> bool:
        """False when ``only_on`` excludes this OS."""
        here = {"win32": "windows", "cygwin": "windows"}.get(sys.platform, sys.platform)
        here = "freebsd" if here.startswith("freebsd") else here
        return not self.only_on or here in self.only_on


class FileConfig(PluginConfig):
    """file: upload files or directories to the machine, or download from it."""

    content: Str = Field(
        "",
        description=(
            "This is the content to copy to `destination`. If destination is a file, content will be "
            "written to that file, in case of a directory a file named `pkr-file-content` is created. "
            "It's recommended to use a file as the destination. The `templatefile` function might be "
            "used here, or any interpolation syntax. This attribute cannot be specified with source or "
            "sources."
        ),
    )
    source: Str = Field(
        "",
        description=(
            "The path to a local file or directory to upload to the machine. The path can be absolute "
            "or relative. If it is relative, it is relative to the working directory when Packer is "
            "executed. If this is a directory, the existence of a trailing slash is important. Read "
            "below on uploading directories. Mandatory unless `sources` is set."
        ),
    )
    sources: StrList = Field(
        default_factory=list,
        description=(
            "A list of sources to upload. This can be used in place of the `source` option if you have "
            "several files that you want to upload to the same place. Note that the destination must be "
            "a directory with a trailing slash, and that all files listed in `sources` will be uploaded "
            "to the same directory with their file names preserved."
        ),
    )
    destination: Str = Field(
        "",
        description=(
            "The path where the file will be uploaded to in the machine. This value must be a writable "
            "location and any parent directories must already exist. If the provisioning user "
            '(generally not root) cannot write to this directory, you will receive a "Permission '
            "Denied\" error. If the source is a file, it's a good idea to make the destination a file "
            "as well, but if you set your destination as a directory, at least make sure that the "
            "destination ends in a trailing slash so that Packer knows to use the source's basename in "
            "the final upload path. Failure to do so may cause Packer to fail on file uploads. If the "
            "destination file already exists, it will be overwritten."
        ),
    )
    direction: Str = Field(
        "upload",
        description=(
            'The direction of the file transfer. This defaults to "upload". If it is set to '
            '"download" then the file "source" in the machine will be downloaded locally to '
            '"destination"'
        ),
    )
    generated: Bool = Field(
        False,
        description=(
            "For advanced users only. If true, check the file existence only before uploading, rather "
            "than upon pre-build validation. This allows users to upload files created on-the-fly. This "
            "defaults to false. We don't recommend using this feature, since it can cause Packer to "
            "become dependent on system state. We would prefer you generate your files before the "
            "Packer run, but realize that there are situations where this may be unavoidable."
        ),
    )

    @property
    def all_sources(self) -> list[str]:
        """``sources`` then ``source``, as Packer appends them."""
        return [*self.sources, self.source] if self.source else list(self.sources)

    def local_inputs(self) -> list[tuple[str, str]]:
        """What an upload sends (a download reads from the machine: no local input)."""
        if self.direction != "upload":
            return []
        out = [(f"sources[{i}]", s) for i, s in enumerate(self.sources)]
        return out + ([("source", self.source)] if self.source else [])

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = []
        if self.direction not in ("download", "upload"):
            errs.append(p("Direction must be one of: download, upload.", "direction"))
        if self.direction == "upload" and not self.generated:
            for src in self.all_sources:
                missing = ctx.stat_error(src)
                if missing:
                    errs.append(
                        p(f"Bad source '{src}': {missing}", "source" if src == self.source else "sources")
                    )
        if self.all_sources and self.content:
            errs.append(p("source(s) conflicts with content.", "content"))
        if not self.destination:
            errs.append(p("Destination must be specified.", "destination"))
        return errs


class BreakpointConfig(PluginConfig):
    """breakpoint: pause the build until the user presses enter."""

    note: Str = Field("", description="A message shown when the breakpoint is reached.")
    disable: Bool = Field(False, description="When true, skip this breakpoint.")


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
        policies = (
            "bypass",
            "allsigned",
            "default",
            "remotesigned",
            "restricted",
            "undefined",
            "unrestricted",
            "none",
        )
        if self.execution_policy.lower() not in policies:
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


class WindowsRestartConfig(PluginConfig):
    """windows-restart: restart a Windows machine and wait for it to come back."""

    restart_command: Str = Field(
        'shutdown /r /f /t 0 /c "packer restart"',
        description=("The command used to restart the guest machine"),
    )
    restart_check_command: Str = Field(
        "",
        description=(
            "The command to run after executing `restart_command` to check if the guest machine has "
            "restarted. This command will retry until the connection to the guest machine has been "
            "restored or `restart_timeout` has exceeded. The output of this command will be displayed "
            "to the user."
        ),
    )
    restart_timeout: Duration = Field(300.0, description="The timeout for waiting for the machine to restart")
    check_registry: Bool = Field(
        False,
        description=("Whether to check the registry (see RegistryKeys) for pending reboots"),
    )
    registry_keys: StrList = Field(default_factory=list, description="custom keys to check for")


class WindowsShellConfig(RemoteShellCommon):
    """windows-shell: run cmd scripts on a Windows machine."""

    start_retry_timeout: Duration = start_retry_timeout_field()

    def check(self, ctx: CheckContext) -> list[Problem]:
        return self.check_remote_script(ctx)


def _file_problem(ctx: CheckContext, key: str, path: str, *, directory: bool = False) -> Problem | None:
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


class AnsibleConfig(PluginConfig):
    """ansible: run an Ansible playbook from this machine against the machine being built."""

    command: Str = ansible_command_field()
    extra_arguments: StrList = extra_arguments_field()
    ansible_env_vars: StrList = Field(
        default_factory=list,
        description=("Environment variables to set before running Ansible. Usage example:"),
    )
    playbook_file: Str = Field("", description="The playbook to be run by Ansible.")
    ansible_ssh_extra_args: StrList = Field(
        default_factory=list,
        description=("Specifies --ssh-extra-args on command line defaults to -o IdentitiesOnly=yes"),
    )
    groups: StrList = Field(
        default_factory=list,
        description=(
            "The groups into which the Ansible host should be placed. When unspecified, the host is not "
            "associated with any groups."
        ),
    )
    empty_groups: StrList = Field(
        default_factory=list,
        description=("The groups which should be present in inventory file but remain empty."),
    )
    host_alias: Str = Field(
        "",
        description=(
            "The alias by which the Ansible host should be known. Defaults to `default`. This setting "
            "is ignored when using a custom inventory file."
        ),
    )
    user: Str = Field(
        "",
        description=(
            "The `ansible_user` to use. Defaults to the user running packer, NOT the user set for your "
            "communicator. If you want to use the same user as the communicator, you will need to "
            "manually set it again in this field."
        ),
    )
    local_port: Int = Field(
        0,
        description=(
            "The port on which to attempt to listen for SSH connections. This value is a starting "
            "point. The provisioner will attempt listen for SSH connections on the first available of "
            "ten ports, starting at `local_port`. A system-chosen port is used when `local_port` is "
            "missing or empty."
        ),
    )
    ssh_host_key_file: Str = Field(
        "",
        description=(
            "The SSH key that will be used to run the SSH server on the host machine to forward "
            "commands to the target machine. Ansible connects to this server and will validate the "
            "identity of the server using the system known_hosts. The default behavior is to generate "
            "and use a onetime key. Host key checking is disabled via the `ANSIBLE_HOST_KEY_CHECKING` "
            "environment variable if the key is generated."
        ),
    )
    ssh_authorized_key_file: Str = Field(
        "",
        description=(
            "The SSH public key of the Ansible `ssh_user`. The default behavior is to generate and use "
            "a onetime key. If this key is generated, the corresponding private key is passed to "
            "`ansible-playbook` with the `-e ansible_ssh_private_key_file` option."
        ),
    )
    ansible_proxy_key_type: Str = Field(
        "",
        description=(
            "Change the key type used for the adapter. Supported values: * ECDSA (default) * RSA NOTE: "
            "using RSA may cause problems if the key is used to authenticate with rsa-sha1 as modern "
            "OpenSSH versions reject this by default as it is unsafe."
        ),
    )
    sftp_command: Str = Field(
        "",
        description=(
            "The command to run on the machine being provisioned by Packer to handle the SFTP protocol "
            "that Ansible will use to transfer files. The command should read and write on stdin and "
            "stdout, respectively. Defaults to `/usr/lib/sftp-server -e`."
        ),
    )
    skip_version_check: Bool = Field(
        False,
        description=(
            "Check if ansible is installed prior to running. Set this to `true`, for example, if you're "
            "going to install ansible during the packer run."
        ),
    )
    use_sftp: Bool = Field(False, description="Use SFTP instead of SCP to transfer files.")
    inventory_directory: Str = Field(
        "",
        description=(
            "The directory in which to place the temporary generated Ansible inventory file. By "
            "default, this is the system-specific temporary file location. The fully-qualified name of "
            "this temporary file will be passed to the `-i` argument of the `ansible` command when this "
            "provisioner runs ansible. Specify this if you have an existing inventory directory with "
            "`host_vars` `group_vars` that you would like to use in the playbook that this provisioner "
            "will run."
        ),
    )
    inventory_file_template: Str = Field(
        "",
        description=(
            "This template represents the format for the lines added to the temporary inventory file "
            "that Packer will create to run Ansible against your image. The default for recent versions "
            'of Ansible is: "{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }} '
            'ansible_port={{ .Port }}\\n" Available template engines are: This option is a template '
            "engine; variables available to you include the examples in the default (Host, HostAlias, "
            'User, Port) as well as any variables available to you via the "build" template engine.'
        ),
    )
    inventory_file: Str = Field(
        "",
        description=(
            "The inventory file to use during provisioning. When unspecified, Packer will create a "
            "temporary inventory file and will use the `host_alias`."
        ),
    )
    keep_inventory_file: Bool = Field(
        False,
        description=(
            "If `true`, the Ansible provisioner will not delete the temporary inventory file it creates "
            "in order to connect to the instance. This is useful if you are trying to debug your "
            'ansible run and using "--on-error=ask" in order to leave your instance running while you '
            "test your playbook. this option is not used if you set an `inventory_file`."
        ),
    )
    galaxy_file: Str = galaxy_file_field()
    galaxy_command: Str = galaxy_command_field()
    galaxy_force_install: Bool = galaxy_force_install_field()
    galaxy_force_with_deps: Bool = Field(
        False,
        description=(
            "Force overwriting an existing role and its dependencies. Adds `--force-with-deps` option "
            "to `ansible-galaxy` command. By default, this is `false`."
        ),
    )
    roles_path: Str = Field(
        "",
        description=(
            "The path to the directory on your local system in which to install the roles. Adds "
            "`--roles-path /path/to/your/roles` to `ansible-galaxy` command. By default, this is empty, "
            "and thus `--roles-path` option is not added to the command."
        ),
    )
    collections_path: Str = Field(
        "",
        description=(
            "The path to the directory on your local system in which to install the collections. Adds "
            "`--collections-path /path/to/your/collections` to `ansible-galaxy` command. By default, "
            "this is empty, and thus `--collections-path` option is not added to the command."
        ),
    )
    use_proxy: Trilean = Field(
        None,
        description=(
            "When `true`, set up a localhost proxy adapter so that Ansible has an IP address to connect "
            "to, even if your guest does not have an IP address. For example, the adapter is necessary "
            "for Docker builds to use the Ansible provisioner. If you set this option to `false`, but "
            "Packer cannot find an IP address to connect Ansible to, it will automatically set up the "
            "adapter anyway."
        ),
    )
    ansible_winrm_use_http: Bool = Field(
        False,
        description=(
            "Force WinRM to use HTTP instead of HTTPS. Set this to true to force Ansible to use HTTP "
            "instead of HTTPS to communicate over WinRM to the destination host. Ansible uses the port "
            "as a heuristic to determine whether to use HTTP or not. In the current state, Packer "
            "assigns a random port for connecting to WinRM and Ansible's heuristic fails to determine "
            "that it should be using HTTP, even when the communicator is setup to use it."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs: list[Problem | None] = []
        if not self.playbook_file:
            errs.append(ctx.problem("playbook_file must be specified.", "playbook_file"))
        else:
            errs.append(_file_problem(ctx, "playbook_file", self.playbook_file))
        for key in ("galaxy_file", "ssh_authorized_key_file", "ssh_host_key_file"):
            value = getattr(self, key)
            if value:
                errs.append(_file_problem(ctx, key, value))
        if self.inventory_directory:
            errs.append(_file_problem(ctx, "inventory_directory", self.inventory_directory, directory=True))
        if self.local_port > 65535:
            errs.append(ctx.problem(f"local_port: {self.local_port} must be a valid port", "local_port"))
        return [e for e in errs if e is not None]

    def local_inputs(self) -> list[tuple[str, str]]:
        keys = ("playbook_file", "galaxy_file", "inventory_file", "inventory_directory", "roles_path",
                "collections_path")
        return [(k, getattr(self, k)) for k in keys if getattr(self, k)]


class AnsibleLocalConfig(PluginConfig):
    """ansible-local: run Ansible on the machine being built."""

    command: Str = ansible_command_field()
    extra_arguments: StrList = extra_arguments_field()
    group_vars: Str = Field(
        "",
        description=(
            "A path to the directory containing ansible group variables on your local system to be "
            "copied to the remote machine. By default, this is empty."
        ),
    )
    host_vars: Str = Field(
        "",
        description=(
            "A path to the directory containing ansible host variables on your local system to be "
            "copied to the remote machine. By default, this is empty."
        ),
    )
    playbook_dir: Str = Field(
        "",
        description=(
            "A path to the complete ansible directory structure on your local system to be copied to "
            "the remote machine as the `staging_directory` before all other files and directories."
        ),
    )
    playbook_file: Str = Field(
        "",
        description=(
            "The playbook file to be executed by ansible. This file must exist on your local system and "
            "will be uploaded to the remote machine. This option is exclusive with `playbook_files`."
        ),
    )
    playbook_files: StrList = Field(
        default_factory=list,
        description=(
            "The playbook files to be executed by ansible. These files must exist on your local system. "
            "If the files don't exist in the `playbook_dir` or you don't set `playbook_dir` they will "
            "be uploaded to the remote machine. This option is exclusive with `playbook_file`."
        ),
    )
    playbook_paths: StrList = Field(
        default_factory=list,
        description=(
            "An array of directories of playbook files on your local system. These will be uploaded to "
            "the remote machine under `staging_directory`/playbooks. By default, this is empty."
        ),
    )
    role_paths: StrList = Field(
        default_factory=list,
        description=(
            "An array of paths to role directories on your local system. These will be uploaded to the "
            "remote machine under `staging_directory`/roles. By default, this is empty."
        ),
    )
    collection_paths: StrList = Field(
        default_factory=list,
        description=("An array of local paths of collections to upload."),
    )
    staging_directory: Str = Field(
        "",
        description=(
            "The directory where files will be uploaded. Packer requires write permissions in this directory."
        ),
    )
    clean_staging_directory: Bool = Field(
        False,
        description=(
            "If set to `true`, the content of the `staging_directory` will be removed after executing "
            "ansible. By default this is set to `false`."
        ),
    )
    inventory_file: Str = Field(
        "",
        description=(
            "The inventory file to be used by ansible. This file must exist on your local system and "
            "will be uploaded to the remote machine. When using an inventory file, it's also required "
            "to `--limit` the hosts to the specified host you're building. The `--limit` argument can "
            "be provided in the `extra_arguments` option. An example inventory file may look like:"
        ),
    )
    inventory_groups: StrList = Field(
        default_factory=list,
        description=(
            "`inventory_groups` (string) - A comma-separated list of groups to which packer will assign "
            "the host `127.0.0.1`. A value of `my_group_1,my_group_2` will generate an Ansible "
            "inventory like:"
        ),
    )
    galaxy_file: Str = galaxy_file_field()
    galaxy_command: Str = galaxy_command_field()
    galaxy_force_install: Bool = galaxy_force_install_field()
    galaxy_roles_path: Str = Field(
        "",
        description=(
            "The path to the directory on the remote system in which to install the roles. Adds "
            "`--roles-path /path/to/your/roles` to `ansible-galaxy` command. By default, this will "
            "install to a 'galaxy_roles' subfolder in the staging/roles directory."
        ),
    )
    galaxy_collections_path: Str = Field(
        "",
        description=(
            "The path to the directory on the remote system in which to install the collections. Adds "
            "`--collections-path /path/to/your/collections` to `ansible-galaxy` command. By default, "
            "this will install to a 'galaxy_collections' subfolder in the staging/collections "
            "directory."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs: list[Problem | None] = []
        if self.playbook_files and self.playbook_file:
            errs.append(
                ctx.problem(
                    "Either playbook_file or playbook_files can be specified, not both", "playbook_files"
                )
            )
        if not self.playbook_files and not self.playbook_file:
            errs.append(
                ctx.problem("Either playbook_file or playbook_files must be specified", "playbook_file")
            )
        if self.playbook_file:
            errs.append(_file_problem(ctx, "playbook_file", self.playbook_file))
        for path in self.playbook_files:
            errs.append(_file_problem(ctx, "playbook_files", path))
        for key in ("inventory_file", "galaxy_file"):
            if getattr(self, key):
                errs.append(_file_problem(ctx, key, getattr(self, key)))
        for key in ("playbook_dir", "group_vars", "host_vars"):
            if getattr(self, key):
                errs.append(_file_problem(ctx, key, getattr(self, key), directory=True))
        for key in ("playbook_paths", "role_paths", "collection_paths"):
            for path in getattr(self, key):
                errs.append(_file_problem(ctx, key, path, directory=True))
        return [e for e in errs if e is not None]

    def local_inputs(self) -> list[tuple[str, str]]:
        out = [(k, getattr(self, k)) for k in ("playbook_file", "playbook_dir", "group_vars", "host_vars",
                                                "inventory_file", "galaxy_file") if getattr(self, k)]
        for key in ("playbook_files", "playbook_paths", "role_paths", "collection_paths"):
            out += [(f"{key}[{i}]", path) for i, path in enumerate(getattr(self, key))]
        return out
