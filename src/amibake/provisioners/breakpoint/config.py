"""The ``breakpoint`` provisioner's options."""

from pydantic import Field

from amibake.config.base import PluginConfig
from amibake.config.weak import Bool, Str


class BreakpointConfig(PluginConfig):
    """breakpoint: pause the build until the user presses enter."""

    note: Str = Field("", description="A message shown when the breakpoint is reached.")
    disable: Bool = Field(False, description="When true, skip this breakpoint.")
