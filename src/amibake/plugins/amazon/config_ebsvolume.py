"""amazon-ebsvolume configuration."""

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.custom_types import KeyValues, merged_tags
from amibake.config.weak import Bool, Str, StrList, StrMap, StructList, Trilean
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig
from amibake.plugins.amazon.config_ami import SnapshotConfig
from amibake.plugins.amazon.config_blockdev import BlockDevice, check_devices
from amibake.plugins.amazon.config_common import (
    SPOT_NO_MODIFY,
    ena_support_field,
    snapshot_description_field,
    sriov_support_field,
)
from amibake.plugins.amazon.config_refused import SHARED_UNSUPPORTED
from amibake.plugins.amazon.config_run import RunConfig


def _snapshot_doc(key: str) -> str:
    return str(SnapshotConfig.model_fields[key].description)


class VolumeBlockDevice(BlockDevice):
    """One of ``ebs_volumes`` of amazon-ebsvolume."""

    tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags to apply to the volume. These are retained after the builder "
            "completes. This is a template engine, see Build template data for more information."
        ),
    )
    tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `tags` but defined as a singular repeatable block containing a `key` and a `value` "
            "field. In HCL2 mode the `dynamic_block` will allow you to create those programatically."
        ),
    )
    snapshot_volume: Bool = Field(False, description="Create a Snapshot of this Volume.")
    snapshot_description: Str = snapshot_description_field()
    # the plugin's SnapshotConfig, squashed into each volume (Packer's ebsvolume.BlockDevice)
    snapshot_tags: StrMap = Field(default_factory=dict, description=_snapshot_doc("snapshot_tags"))
    snapshot_tag: KeyValues = Field(default_factory=list, description=_snapshot_doc("snapshot_tag"))
    snapshot_users: StrList = Field(default_factory=list, description=_snapshot_doc("snapshot_users"))
    snapshot_groups: StrList = Field(default_factory=list, description=_snapshot_doc("snapshot_groups"))

    @property
    def all_tags(self) -> dict[str, str]:
        return merged_tags(self.tags, self.tag)

    @property
    def all_snapshot_tags(self) -> dict[str, str]:
        return merged_tags(self.snapshot_tags, self.snapshot_tag)


class EbsVolumeConfig(AccessConfig, RunConfig):
    """amazon-ebsvolume: launch an instance, provision its EBS volumes, keep the volumes."""

    #: what amazon-ebs refuses of the options this builder shares with it, for the same reasons
    unsupported: ClassVar[Mapping[str, str]] = SHARED_UNSUPPORTED

    ena_support: Trilean = ena_support_field()
    sriov_support: Bool = sriov_support_field()
    ebs_volumes: StructList[VolumeBlockDevice] = Field(
        default_factory=list,
        description=(
            "Add the block device mappings to the AMI. If you add instance store volumes or EBS volumes "
            "in addition to the root device volume, the created AMI will contain block device mapping "
            "information for those volumes. Amazon creates snapshots of the source instance's root "
            "volume and any other EBS volumes described here. When you launch an instance from this new "
            "AMI, the instance automatically launches with these additional volumes, and will restore "
            "them from snapshots taken from the source instance. See the BlockDevices documentation for "
            "fields."
        ),
    )
    run_volume_tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags to apply to the volumes of the instance that is *launched* to create "
            "EBS Volumes. These tags will *not* appear in the tags of the resulting EBS volumes unless "
            "they're duplicated under `tags` in the `ebs_volumes` setting. This is a template engine, "
            "see Build template data for more information."
        ),
    )
    run_volume_tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `run_volume_tags` but defined as a singular repeatable block containing a `key` "
            "and a `value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )

    @property
    def all_run_volume_tags(self) -> dict[str, str]:
        return merged_tags(self.run_volume_tags, self.run_volume_tag)

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_access(ctx)
        errs += self.check_run(ctx)
        errs += check_devices(list(self.ebs_volumes), ctx, "ebs_volumes")
        if self.is_spot_instance() and (self.ena_support is True or self.sriov_support):
            errs.append(ctx.problem(SPOT_NO_MODIFY, "spot_price"))
        for i, volume in enumerate(self.ebs_volumes):
            if volume.snapshot_description and not volume.snapshot_volume:
                errs.append(
                    ctx.problem(
                        "All `ebs_volumes` blocks setting `snapshot_description` must also set "
                        "`snapshot_volume`.",
                        f"ebs_volumes[{i}]",
                    )
                )
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        return self.access_warnings() + self.run_warnings()
