"""The ``amibake-launch-template`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

import re

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Bool, Str, StrList
from amibake.errors import Problem

#: EC2's launch template name rules
_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")


class LaunchTemplateConfig(PluginConfig):
    """amibake-launch-template: add a version pointing at the region's AMI to an existing launch
    template of the same name in each region; optionally make it the default."""

    launch_template_name: Str = Field(
        "", description="The launch template's name (it must exist in each region). Required.")
    source_version: Str = Field(
        "$Latest",
        description=("The version the new one is based on (its other settings are kept): `$Latest`, "
                     "`$Default` or a version number. Default `$Latest`."),
    )
    make_default: Bool = Field(False, description="Make the new version the template's default version.")
    version_description: Str = Field("", description="The new version's description.")
    regions: StrList = Field(
        default_factory=list,
        description="Only these of the artifact's regions (default: every region of the artifact).",
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        problems = []
        if not self.launch_template_name:
            problems.append(ctx.problem("launch_template_name must be set", "launch_template_name"))
        elif not _NAME.match(self.launch_template_name):
            problems.append(ctx.problem(
                f"launch_template_name {self.launch_template_name!r}: 3 to 128 letters, digits or "
                "( ) . - / _",
                "launch_template_name"))
        src = self.source_version
        if src not in ("$Latest", "$Default") and not (src.isdigit() and int(src) > 0):
            problems.append(ctx.problem(
                f"source_version {src!r}: expected $Latest, $Default or a version number", "source_version"))
        if len(self.version_description) > 255:
            problems.append(ctx.problem("version_description: at most 255 characters", "version_description"))
        return problems
