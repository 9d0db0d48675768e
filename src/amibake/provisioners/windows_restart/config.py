"""The ``windows-restart`` provisioner's options."""

from pydantic import Field

from amibake.config.base import PluginConfig
from amibake.config.durations import Duration
from amibake.config.weak import Bool, Str, StrList


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
