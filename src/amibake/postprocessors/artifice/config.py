"""The ``artifice`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import StrList
from amibake.errors import Problem


class ArtificeConfig(PluginConfig):
    """artifice: replace the build's artifact with the listed local files (Packer's
    ``post-processor/artifice``). ``keep_input_artifact`` is the core's, as for every post-processor."""

    files: StrList = Field(
        default_factory=list,
        description=(
            "A list of files that comprise your artifact. These files must exist on your local disk "
            "after the provisioning phase of packer is complete. These will replace any of the "
            "builder's original artifacts (such as a VM snapshot). Glob patterns are expanded."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        if not self.files:
            return [ctx.problem("No files specified in artifice configuration", "files")]
        return []
