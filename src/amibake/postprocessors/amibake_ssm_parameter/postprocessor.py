"""The ``amibake-ssm-parameter`` post-processor: in each region of the artifact (or of ``regions``),
``PutParameter`` with the region's AMI id, data type ``aws:ec2:image``, type ``String`` and
``Overwrite``: the parameter keeps its history (``GetParameterHistory`` lists every AMI published).
All regions or none: see :mod:`amibake.postprocessors.aws_publish` (an undo puts the previous value
back as a new version, or deletes a parameter this post-processor created). The input artifact is
passed on and always kept.
"""

from __future__ import annotations

from typing import Any

from amibake.api import Artifact, BuildEnv
from amibake.aws.errors import AwsError
from amibake.postprocessors.aws_publish import Aws, amis_of, chosen_regions, publish

WHO = "amibake-ssm-parameter"


class SsmParameterPostProcessor:
    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        amis = amis_of(artifact, WHO)
        regions = chosen_regions(amis, self.config.regions, WHO)
        name = self.config.parameter_name
        aws = Aws()

        def do(region: str) -> dict[str, Any] | None:
            previous: dict[str, Any] | None
            try:
                previous = dict(aws.call("ssm", "get_parameter", region, Name=name)["Parameter"])
            except AwsError as exc:
                if exc.code != "ParameterNotFound":
                    raise
                previous = None
            params: dict[str, Any] = {"Name": name, "Value": amis[region], "Type": "String",
                                      "DataType": "aws:ec2:image", "Overwrite": True}
            if self.config.description:
                params["Description"] = self.config.description
            version = aws.call("ssm", "put_parameter", region, **params).get("Version", "?")
            self.env.ui.message(f"{region}: {name} = {amis[region]} (version {version})")
            return previous

        def undo(region: str, previous: dict[str, Any] | None) -> None:
            if previous is None:
                aws.call("ssm", "delete_parameter", region, Name=name)
            else:
                aws.call("ssm", "put_parameter", region, Name=name, Value=previous["Value"],
                         Type=previous.get("Type", "String"), DataType=previous.get("DataType", "text"),
                         Overwrite=True)

        self.env.ui.say(f"Publishing the AMI ids to SSM parameter {name} in {', '.join(regions)}...")
        publish(self.env, WHO, regions, do, undo)
        return artifact, True, True
