"""The ``shell-local`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

from amibake.provisioners.shell_local.config import ShellLocalConfig


class ShellLocalPostProcessorConfig(ShellLocalConfig):
    """shell-local as a post-processor (same options as the provisioner)."""

    @property
    def effective_execute_command(self) -> list[str]:
        """A one-element ``execute_command`` runs through ``sh -c``, as Packer does."""
        if len(self.execute_command) == 1:
            return ["sh", "-c", *self.execute_command]
        return list(self.execute_command) or ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]
