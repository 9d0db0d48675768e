"""The amazon-ebs artifact: the AMIs a build made, one per region."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amibake.errors import BuildError
from amibake.plugins.amazon.ec2 import AwsError, Ec2Gateway

BUILDER_ID = "mitchellh.amazonebs"


@dataclass
class AmiArtifact:
    #: region -> AMI id
    amis: dict[str, str]
    gateway: Ec2Gateway | None = None
    builder_id: str = BUILDER_ID
    state_data: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    #: an AMI found by its content fingerprint (``-skip-unchanged``) rather than built by this run
    reused: bool = False

    @property
    def id(self) -> str:
        return ",".join(sorted(f"{region}:{ami}" for region, ami in self.amis.items()))

    def string(self) -> str:
        lines = sorted(f"{region}: {ami}" for region, ami in self.amis.items())
        verb = "reused (unchanged content fingerprint)" if self.reused else "created"
        return f"AMIs were {verb}:\n" + "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.string()

    def state(self, name: str) -> Any:
        if name in self.state_data:
            return self.state_data[name]
        if name == "atlas.artifact.metadata":
            return {f"region.{region}": ami for region, ami in self.amis.items()}
        return None

    def destroy(self) -> None:
        """Deregister every AMI and delete its snapshots, in every region."""
        if self.gateway is None:
            raise BuildError("this artifact has no AWS connection to destroy its AMIs with")
        errors: list[str] = []
        for region, ami in sorted(self.amis.items()):
            try:
                images = self.gateway.describe_images(image_ids=[ami], region=region)
                if not images:
                    errors.append(f"Error retrieving details for AMI ({ami}), no images found")
                for img in images:
                    self.gateway.destroy_image(img, region=region)
            except AwsError as exc:
                errors.append(f"{region}: {exc}")
        if errors:
            raise BuildError("\n".join(errors))


def generated_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The build data kept on the artifact, without secrets."""
    return {k: v for k, v in data.items() if k not in ("SSHPrivateKey", "Password")}
