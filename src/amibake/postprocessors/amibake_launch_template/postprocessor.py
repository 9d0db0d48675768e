"""The ``amibake-launch-template`` post-processor: in each region of the artifact (or of ``regions``),
``CreateLaunchTemplateVersion`` on the named template, based on ``source_version`` (resolved to its
number first) with the region's AMI as ``ImageId``; with ``make_default``, ``ModifyLaunchTemplate``
makes it the default. Every region's template is looked up before any version is made (a missing one
fails the build with nothing changed). All regions or none: see
:mod:`amibake.postprocessors.aws_publish` (an undo puts the previous default back and deletes the new
version). The input artifact is passed on and always kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amibake.api import Artifact, BuildEnv
from amibake.aws.errors import AwsError
from amibake.errors import BuildError
from amibake.postprocessors.aws_publish import Aws, amis_of, chosen_regions, publish

WHO = "amibake-launch-template"


@dataclass
class Made:
    template_id: str
    version: int
    #: the default version before (str), when this post-processor changed it
    old_default: str = ""


class LaunchTemplatePostProcessor:
    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        amis = amis_of(artifact, WHO)
        regions = chosen_regions(amis, self.config.regions, WHO)
        name = self.config.launch_template_name
        aws = Aws()
        found: dict[str, dict[str, Any]] = {}
        for region in regions:
            try:
                lts = aws.call("ec2", "describe_launch_templates", region,
                               LaunchTemplateNames=[name])["LaunchTemplates"]
            except AwsError as exc:
                if exc.code not in ("InvalidLaunchTemplateName.NotFoundException",
                                    "InvalidLaunchTemplateName.NotFound"):
                    raise
                lts = []
            if not lts:
                raise BuildError(f"{WHO}: {region}: no launch template named {name!r}; nothing was changed")
            found[region] = lts[0]

        def do(region: str) -> Made:
            lt = found[region]
            src = self.config.source_version
            number = (lt["LatestVersionNumber"] if src == "$Latest" else lt["DefaultVersionNumber"]
                      if src == "$Default" else int(src))
            params: dict[str, Any] = {"LaunchTemplateId": lt["LaunchTemplateId"],
                                      "SourceVersion": str(number),
                                      "LaunchTemplateData": {"ImageId": amis[region]}}
            if self.config.version_description:
                params["VersionDescription"] = self.config.version_description
            got = aws.call("ec2", "create_launch_template_version", region, **params)
            made = Made(lt["LaunchTemplateId"], int(got["LaunchTemplateVersion"]["VersionNumber"]))
            if self.config.make_default:
                made.old_default = str(lt["DefaultVersionNumber"])
                aws.call("ec2", "modify_launch_template", region, LaunchTemplateId=made.template_id,
                         DefaultVersion=str(made.version))
            default = " (default)" if self.config.make_default else ""
            self.env.ui.message(f"{region}: {name} ({made.template_id}) version {made.version}{default}: "
                                f"{amis[region]}, based on version {number}")
            return made

        def undo(region: str, made: Made) -> None:
            if made.old_default:
                aws.call("ec2", "modify_launch_template", region, LaunchTemplateId=made.template_id,
                         DefaultVersion=made.old_default)
            aws.call("ec2", "delete_launch_template_versions", region, LaunchTemplateId=made.template_id,
                     Versions=[str(made.version)])

        self.env.ui.say(f"Adding a version to launch template {name} in {', '.join(regions)}...")
        publish(self.env, WHO, regions, do, undo)
        return artifact, True, True
