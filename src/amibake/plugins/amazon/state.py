"""The typed state of one amazon-ebs build, shared by its steps (no string-keyed bag)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from amibake.api import HTTP_NOT_IMPLEMENTED, BuildEnv, Hooks
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ec2 import Image, Instance
from amibake.plugins.amazon.ec2api import Ec2Api
from amibake.steps.context import StepContext

#: the Name tag Packer gives the temporary instance when run_tags names none
DEFAULT_INSTANCE_NAME = "Packer Builder"


@dataclass
class BuildState:
    #: the template's frozen, typed options: the steps read them directly
    config: EbsConfig
    #: EC2 and IAM as the steps see them (the gateway, or a fake in unit tests)
    ec2: Ec2Api
    env: BuildEnv
    hooks: Hooks
    run_uuid: str
    created_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    # filled in by the steps, in order
    source_image: Image | None = None
    vpc_id: str = ""
    subnet_id: str = ""
    availability_zone: str = ""
    key_pair_name: str = ""
    private_key_pem: str = ""
    public_key: str = ""
    security_group_ids: list[str] = field(default_factory=list)
    instance_profile: str = ""
    instance: Instance | None = None
    host: str = ""
    #: the Windows password StepGetPassword retrieved (GetPasswordData); "" when none was needed
    password: str = ""
    #: with ssh_interface "session_manager": the local port of the SSM tunnel SSH goes through, and the tunnel
    ssm_port: int = 0
    ssm_tunnel: Any = None
    comm: Any = None
    #: region -> AMI id; the build region first
    amis: dict[str, str] = field(default_factory=dict)
    #: region -> snapshot ids of that region's AMI
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    #: set the attributes of each copy (StepModifyAMIAttributes) as it becomes available
    attributes_per_copy: bool = False
    #: regions whose AMI already has its attributes set (StepModifyAMIAttributes skips them)
    attributes_set: set[str] = field(default_factory=set)
    #: the AMI created in the build region under a temporary name (encrypt_boot), deleted at the end
    intermediary_ami: str = ""
    #: the Ui the steps write to (the build's, with its own secrets redacted); env.ui when unset
    ui_: Any = None

    @property
    def region(self) -> str:
        return self.ec2.region

    @property
    def ui(self) -> Any:
        return self.ui_ if self.ui_ is not None else self.env.ui

    # -- build data ---------------------------------------------------------------------------

    def build_info(self) -> dict[str, Any]:
        """Packer's BuildInfoTemplate: what ``{{ .BuildRegion }}``, ``{{ .SourceAMI }}``... render to."""
        data: dict[str, Any] = {"BuildRegion": self.region}
        img = self.source_image
        if img is not None:
            data.update(
                SourceAMI=img.id,
                SourceAMICreationDate=img.creation_date,
                SourceAMIName=img.name,
                SourceAMIOwner=img.owner_id,
                SourceAMIOwnerName=img.owner_alias,
                SourceAMITags=dict(img.tags),
            )
        return data

    def build_data(self) -> dict[str, Any]:
        """Packer's generated data, handed to the provisioners."""
        data = self.build_info()
        data.update(
            ID=self.instance.id if self.instance else "",
            Host=self.host,
            **self.config.connection_data(),
            SSHPublicKey=self.public_key,
            SSHPrivateKey=self.private_key_pem,
            PackerRunUUID=self.run_uuid,
            **HTTP_NOT_IMPLEMENTED,
        )
        if self.password:
            # the SDK's Password() and WinRMPassword once StepGetPassword set it on the config
            data.update(Password=self.password, WinRMPassword=self.password)
        return data

    def render(self, text: str) -> str:
        if "{{" not in text:
            return text
        return self.env.render(text, self.build_info())

    def render_tags(self, tags: Mapping[str, str]) -> dict[str, str]:
        return {self.render(k): self.render(v) for k, v in tags.items()}

    def own_tags(self) -> dict[str, str]:
        """The tags amibake puts on everything it creates, to find and clean up by run."""
        return {
            "amibake:run-id": self.env.run_id or self.run_uuid,
            "amibake:build": self.env.build_name,
            "amibake:created": self.created_at,
        }

    def fingerprint_tags(self) -> dict[str, str]:
        """``amibake:fingerprint`` for the build's AMIs (and their snapshots), once the source AMI is
        resolved; the breakdown is kept for ``amibake plan``. Empty without a fingerprint."""
        from amibake import fingerprint

        partial = self.env.fingerprint
        if partial is None or self.source_image is None:
            return {}
        fp = partial.resolved({fingerprint.SOURCE_IMAGE: self.source_image.id})
        found = self.env.image_fingerprint
        if found.get("remembered") != fp.digest:
            found.update(fingerprint=fp.digest, breakdown=fp.breakdown(), reused=False, remembered=fp.digest)
            fingerprint.remember(fp, self.env.build_name)
        return {fingerprint.TAG: fp.digest}

    def tags_for(self, user_tags: Mapping[str, str]) -> dict[str, str]:
        """User tags (rendered) plus amibake's own; the user's win on a clash."""
        out = self.own_tags()
        out.update(self.render_tags(user_tags))
        return out


@dataclass
class BoundStep:
    """A step function bound to its build's state, with the name the runner shows."""

    name: str
    fn: Callable[[BuildState, StepContext], None]
    state: BuildState

    def run(self, ctx: StepContext) -> None:
        self.fn(self.state, ctx)
