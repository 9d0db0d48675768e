"""Packer's ``powershell`` provisioner (Packer 1.6.6 ``provisioner/powershell``, with ``pause_after``
and ``use_pwsh`` as later Packer versions added them).

Each script (``inline`` is written to one) is uploaded to ``remote_path`` and run with
``execute_command`` through whatever communicator the build has (WinRM, or SSH to Windows OpenSSH).
The environment variables are not put on the command line: they are written, one
``$env:KEY="value"; `` each, to a PowerShell file uploaded to ``remote_env_var_path`` and dot-sourced
by the command (``{{.Vars}}`` is that file's path). With ``elevated_user``, the command runs as a
Windows scheduled task through the wrapper script of Packer's ``guestexec.GenerateElevatedRunner``,
which is uploaded and run with ``powershell -executionpolicy bypass -file``. At the end one cleanup
script removes every uploaded file (unless ``skip_clean``).
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from amibake.api import BuildEnv
from amibake.errors import BuildError, CommunicatorError
from amibake.provisioners.shell.provisioner import (
    RETRY_DELAY_SECONDS,
    check_exit_code,
    env_vars,
    go_duration,
    go_sprintf,
    retry_start,
    run_streamed,
    seconds,
    split_env_var,
    write_temp_script,
)
from amibake.ui.redact import RedactingUi

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

log = logging.getLogger("amibake.provisioners.powershell")

DEFAULT_ENV_VAR_FORMAT = '$env:%s="%s"; '
DEFAULT_START_RETRY_TIMEOUT = 300.0
#: Packer's cleanup retry: for a minute, every 10 seconds
CLEANUP_TIMEOUT = 60.0
CLEANUP_DELAY = 10.0
ELEVATED_TASK_DESCRIPTION = "Packer elevated task"

_PS_ESCAPES = {"$": "`$", '"': '`"', "`": "``", "'": "`'"}


def ps_escape(value: str) -> str:
    """Packer's ``psEscape``: ``$``, ``"``, backtick and ``'`` prefixed with a backtick."""
    return "".join(_PS_ESCAPES.get(ch, ch) for ch in value)


def time_ordered_uuid() -> str:
    """Packer's ``uuid.TimeOrderedUUID``: 32 bits of Unix time, then 96 random bits."""
    b = secrets.token_bytes(12)
    return f"{int(time.time()) & 0xFFFFFFFF:08x}-{b[0:2].hex()}-{b[2:4].hex()}-{b[4:6].hex()}-{b[6:].hex()}"


def encoded_powershell(script: str) -> str:
    """The ``winrm.Powershell`` wrapper (masterzen/winrm): each byte of the UTF-8 text followed by a
    NUL byte, base64, as ``powershell.exe -EncodedCommand ...``."""
    wide = b"".join(bytes([b, 0]) for b in script.encode("utf-8"))
    return f"powershell.exe -EncodedCommand {base64.b64encode(wide).decode('ascii')}"


def xml_escape_text(text: str) -> str:
    """Go's ``xml.EscapeText``: the five markup characters as entities, tab/newline/CR as character
    references, characters XML cannot hold as U+FFFD."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append("&#34;")
        elif ch == "'":
            out.append("&#39;")
        elif ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == "\t":
            out.append("&#x9;")
        elif ch == "\n":
            out.append("&#xA;")
        elif ch == "\r":
            out.append("&#xD;")
        elif not (0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF):
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


#: Packer 1.6.6's ``elevatedTemplate`` (packer-plugin-sdk/guestexec/elevated.go), byte for byte
ELEVATED_TEMPLATE = """
$name = "{TaskName}"
$log = [System.Environment]::ExpandEnvironmentVariables("{LogFile}")
$s = New-Object -ComObject "Schedule.Service"
$s.Connect()
$t = $s.NewTask($null)
$xml = [xml]@'
<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>{TaskDescription}</Description>
  </RegistrationInfo>
  <Principals>
    <Principal id="Author">
      <UserId>{User}</UserId>
      <LogonType>Password</LogonType>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>false</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>4</Priority>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>cmd</Command>
      <Arguments>/c {XMLEscapedCommand}</Arguments>
    </Exec>
  </Actions>
</Task>
'@
$logon_type = 1
$password = "{Password}"
if ($password.Length -eq 0) {{
  $logon_type = 5
  $password = $null
  $ns = New-Object System.Xml.XmlNamespaceManager($xml.NameTable)
  $ns.AddNamespace("ns", $xml.DocumentElement.NamespaceURI)
  $node = $xml.SelectSingleNode("/ns:Task/ns:Principals/ns:Principal/ns:LogonType", $ns)
  $node.ParentNode.RemoveChild($node) | Out-Null
}}
$t.XmlText = $xml.OuterXml
if (Test-Path variable:global:ProgressPreference){{$ProgressPreference="SilentlyContinue"}}
$f = $s.GetFolder("\\")
$f.RegisterTaskDefinition($name, $t, 6, "{User}", $password, $logon_type, $null) | Out-Null
$t = $f.GetTask("\\$name")
$t.Run($null) | Out-Null
$timeout = 10
$sec = 0
while ((!($t.state -eq 4)) -and ($sec -lt $timeout)) {{
  Start-Sleep -s 1
  $sec++
}}

$line = 0
do {{
  Start-Sleep -m 100
  if (Test-Path $log) {{
    Get-Content $log | select -skip $line | ForEach {{
      $line += 1
      Write-Output "$_"
    }}
  }}
}} while (!($t.state -eq 3))
$result = $t.LastTaskResult
if (Test-Path $log) {{
    Remove-Item $log -Force -ErrorAction SilentlyContinue | Out-Null
}}

$script = [System.Environment]::ExpandEnvironmentVariables("{ScriptFile}")
if (Test-Path $script) {{
    Remove-Item $script -Force -ErrorAction SilentlyContinue | Out-Null
}}
$f = $s.GetFolder("\\")
$f.DeleteTask("\\$name", "")

[System.Runtime.Interopservices.Marshal]::ReleaseComObject($s) | Out-Null
exit $result"""


def elevated_wrapper(command: str, user: str, password: str) -> tuple[str, str, str]:
    """Packer's ``GenerateElevatedRunner`` without the upload: (the wrapper script, its remote path,
    the command that runs it). The command's output goes to a log file the wrapper prints."""
    task_name = f"packer-{time_ordered_uuid()}"
    log_file = f"%SYSTEMROOT%/Temp/{task_name}.out"
    command += f" > {log_file} 2>&1"
    path = f"C:/Windows/Temp/packer-elevated-shell-{time_ordered_uuid()}.ps1"
    script = ELEVATED_TEMPLATE.format(
        TaskName=task_name,
        LogFile=log_file,
        TaskDescription=ELEVATED_TASK_DESCRIPTION,
        User=ps_escape(user),
        Password=ps_escape(password),
        XMLEscapedCommand=xml_escape_text(command),
        ScriptFile=path,
    )
    return script, path, f'powershell -executionpolicy bypass -file "{path}"'


def default_execute_command(execution_policy: str, debug_mode: int, use_pwsh: bool) -> str:
    """Packer's ``defaultExecuteCommand`` (also the default ``elevated_execute_command``)."""
    base = (
        "& { if (Test-Path variable:global:ProgressPreference)"
        "{set-variable -name variable:global:ProgressPreference -value 'SilentlyContinue'};"
    )
    if debug_mode:
        base += f"Set-PsDebug -Trace {debug_mode};"
    base += ". {{.Vars}}; &'{{.Path}}'; exit $LastExitCode }"
    policy = execution_policy.lower()
    if policy == "none":
        return base
    if use_pwsh:
        return f'pwsh -executionpolicy {policy} -command "{base}"'
    return f'powershell -executionpolicy {policy} "{base}"'


class PowershellProvisioner:
    """Packer's ``powershell`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env
        #: the output, without the secrets the build has so far (the elevated password joins them)
        self.ui = RedactingUi(env.ui, env.secrets)
        c = config
        policy = c.execution_policy or "bypass"
        default = default_execute_command(policy, int(c.debug_mode or 0), bool(c.use_pwsh))
        self.execute_command: str = c.execute_command or default
        self.elevated_execute_command: str = c.elevated_execute_command or default
        self.env_var_format: str = c.env_var_format or DEFAULT_ENV_VAR_FORMAT
        self.elevated_env_var_format: str = c.elevated_env_var_format or DEFAULT_ENV_VAR_FORMAT
        self.start_retry_timeout = seconds(c.start_retry_timeout) or DEFAULT_START_RETRY_TIMEOUT
        self.remote_path: str = c.remote_path or f"c:/Windows/Temp/script-{time_ordered_uuid()}.ps1"
        self.remote_env_var_path: str = (
            c.remote_env_var_path or f"c:/Windows/Temp/packer-ps-env-vars-{time_ordered_uuid()}.ps1"
        )
        self.cleanup_path = f"c:/Windows/Temp/packer-cleanup-{time_ordered_uuid()}.ps1"
        self.pause_after = seconds(c.pause_after)
        self.retry_delay = RETRY_DELAY_SECONDS
        self.cleanup_delay = CLEANUP_DELAY

    # -- the provisioner ------------------------------------------------------------------------

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        c, ui = self.config, self.ui
        ui.say("Provisioning with Powershell...")
        scripts = [str(s) for s in (c.scripts or [])]
        if c.script:
            scripts = [str(c.script)]
        temps: list[str] = []
        try:
            if c.inline:
                commands = [self.env.render(cmd, build_data) for cmd in c.inline]
                text = "".join(f"{cmd}\n" for cmd in commands)
                temps.append(write_temp_script(text, "powershell-provisioner"))
                scripts.append(temps[-1])
            # every run has one env var file: it is cleaned up first
            uploaded = [self.remote_env_var_path]
            for path in scripts:
                ui.say(f"Provisioning with powershell script: {path}")
                try:
                    with open(path, "rb") as f:
                        content = f.read()
                except OSError as exc:
                    raise BuildError(f"Error stating powershell script: {exc}") from exc
                if self.remote_path.endswith("\\"):  # a directory (Packer 1.6.6's test)
                    self.remote_path += os.path.basename(path)
                command = self.command_text(comm, build_data)
                status = self._upload_and_run(comm, content, command)
                uploaded.append(self.remote_path)
                log.debug("%s returned with exit code %d", self.remote_path, status)
                check_exit_code(status, c.valid_exit_codes)
            if c.skip_clean:
                return  # Packer returns here, before pause_after
            self._clean_up(comm, build_data, uploaded)
        finally:
            for t in temps:
                try:
                    os.remove(t)
                except OSError:
                    pass
        if self.pause_after > 0:
            ui.say(f"Pausing {go_duration(self.pause_after)} after this provisioner...")
            if self.env.cancel.wait(self.pause_after):
                raise BuildError("cancelled while pausing after the powershell provisioner")

    # -- commands --------------------------------------------------------------------------------

    def flattened_env_vars(self, build_data: Mapping[str, Any], elevated: bool) -> str:
        """Packer's ``createFlattenedEnvVars``: Packer's own variables as they are, the template's
        (``environment_vars``, then ``env``) escaped for PowerShell; sorted by name."""
        c = self.config
        variables = env_vars(self.env.build_name, self.env.builder_type, build_data)
        for kv in c.environment_vars or ():
            key, value = split_env_var(kv)
            variables[key] = ps_escape(value)
        for key, value in (c.env or {}).items():
            variables[key] = ps_escape(str(value))
        fmt = self.elevated_env_var_format if elevated else self.env_var_format
        return "".join(go_sprintf(fmt, k, variables[k]) for k in sorted(variables))

    def command_text(self, comm: Communicator, build_data: Mapping[str, Any]) -> str:
        """Packer's ``createCommandText``: uploads the env var file (and for ``elevated_user`` the
        elevated wrapper) and returns the command to run."""
        c = self.config
        elevated = bool(c.elevated_user)
        self._upload_env_vars(comm, self.flattened_env_vars(build_data, elevated))
        data = {**build_data, "Path": self.remote_path, "Vars": self.remote_env_var_path}
        if not elevated:
            return self.env.render(self.execute_command, data)
        command = self.env.render(self.elevated_execute_command, data)
        password = self.env.render(c.elevated_password, build_data) if c.elevated_password else ""
        self.env.add_secret(password)
        script, path, run = elevated_wrapper(command, c.elevated_user, password)
        log.debug("Uploading elevated shell wrapper to [%s]", path)
        try:
            comm.upload(path, script.encode("utf-8"))
        except CommunicatorError as exc:
            raise BuildError(
                f"Error processing command: Error generating elevated runner: "
                f"Error preparing elevated powershell script: {exc}"
            ) from exc
        return run

    def _upload_env_vars(self, comm: Communicator, flattened: str) -> None:
        data = flattened.encode("utf-8")

        def attempt() -> None:
            try:
                comm.upload(self.remote_env_var_path, data)
            except CommunicatorError as exc:
                raise CommunicatorError(f"Error uploading ps script containing env vars: {exc}") from exc

        try:
            retry_start(attempt, self.start_retry_timeout, self.env.cancel, self.retry_delay)
        except CommunicatorError as exc:
            raise BuildError(f"Error processing command: {exc}") from exc

    def _run(self, comm: Communicator, command: str) -> int:
        return run_streamed(comm, command, self.ui, self.env.build_name)

    def _upload_and_run(self, comm: Communicator, content: bytes, command: str) -> int:
        """Upload the script and run it in one retried attempt (a restart between the two would lose
        the file), as Packer does."""

        def attempt() -> int:
            try:
                comm.upload(self.remote_path, content)
            except CommunicatorError as exc:
                raise CommunicatorError(f"Error uploading script: {exc}") from exc
            return self._run(comm, command)

        return retry_start(attempt, self.start_retry_timeout, self.env.cancel, self.retry_delay)

    def cleanup_script(self, uploaded: list[str]) -> str:
        """Packer's self-destructing cleanup script: one ``Remove-Item`` line per uploaded file."""
        return "".join(f"if (Test-Path {p}) {{Remove-Item {p}}}\n" for p in [*uploaded, self.cleanup_path])

    def _clean_up(self, comm: Communicator, build_data: Mapping[str, Any], uploaded: list[str]) -> None:
        script = self.cleanup_script(uploaded).encode("utf-8")
        data = {**build_data, "Path": self.cleanup_path, "Vars": self.remote_env_var_path}
        command = self.env.render(self.execute_command, data)

        def attempt() -> None:
            try:
                comm.upload(self.cleanup_path, script)
            except CommunicatorError as exc:
                raise CommunicatorError(
                    f"clean up script {self.cleanup_path!r} failed to upload: {exc}"
                ) from exc
            self._run(comm, command)

        try:
            retry_start(attempt, CLEANUP_TIMEOUT, self.env.cancel, self.cleanup_delay)
        except CommunicatorError as exc:
            log.info("remote cleanup script failed to upload; skipping the removal of temporary files: "
                     "%s; (%s)", ",".join(uploaded), exc)

