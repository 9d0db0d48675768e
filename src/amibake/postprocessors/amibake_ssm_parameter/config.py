"""The ``amibake-ssm-parameter`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

import re

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Str, StrList
from amibake.errors import Problem

#: SSM's parameter name rules (PutParameter): these characters, at most 15 levels, no aws/ssm prefix
_NAME = re.compile(r"^[a-zA-Z0-9_.\-/]{1,2048}$")
_RESERVED = re.compile(r"^/?(aws|ssm)", re.IGNORECASE)


class SsmParameterConfig(PluginConfig):
    """amibake-ssm-parameter: write each region's AMI id to an SSM parameter (data type
    ``aws:ec2:image``), keeping the parameter's history."""

    parameter_name: Str = Field(
        "",
        description=("The parameter's name, the same in each region, e.g. `/images/web/latest` (a "
                     "template: user variables, functions). Required."),
    )
    description: Str = Field("", description="The parameter's description, set with each new version.")
    regions: StrList = Field(
        default_factory=list,
        description="Only these of the artifact's regions (default: every region of the artifact).",
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        name = self.parameter_name
        if not name:
            return [ctx.problem("parameter_name must be set", "parameter_name")]
        problems = []
        if not _NAME.match(name):
            problems.append(ctx.problem(
                f"parameter_name {name!r}: only letters, digits and _ . - / are allowed", "parameter_name"))
        elif "/" in name and not name.startswith("/"):
            problems.append(ctx.problem(
                f"parameter_name {name!r}: a hierarchical name must start with /", "parameter_name"))
        elif _RESERVED.match(name):
            problems.append(ctx.problem(
                f"parameter_name {name!r}: names beginning with aws or ssm are reserved", "parameter_name"))
        elif name.strip("/").count("/") >= 15:
            problems.append(ctx.problem(f"parameter_name {name!r}: more than 15 levels", "parameter_name"))
        if len(self.description) > 1024:
            problems.append(ctx.problem("description: at most 1024 characters", "description"))
        return problems
