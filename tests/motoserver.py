"""The stack's moto server, with an emulation of AMI tagging on creation, which moto 5.2 lacks, and of
VM Import (``tests/vmimport_emulation.py``)
(test code only; run as a script with ``python -m moto.server``'s arguments).

AWS documents ``TagSpecifications`` of CreateImage and CopyImage (EC2 API reference) as: "The tags
to apply to the AMI and snapshots on creation. You can tag the AMI, the snapshots, or both. To tag
the AMI, the value for ``ResourceType`` must be ``image``. To tag the snapshots [...] the value for
``ResourceType`` must be ``snapshot``. The same tag is applied to all of the snapshots that are
created. If you specify other values for ``ResourceType``, the request fails."

moto answers a ``snapshot`` specification of CreateImage with ``NotImplementedError`` (HTTP 500) and
ignores CopyImage's specifications altogether. This emulation applies both as documented: the image
tags to the AMI, the snapshot tags to every snapshot the call made, before the call answers; any
other resource type fails the request with ``InvalidParameterValue``, as AWS does.

moto also gives every AMI it creates ``RootDeviceType`` ``standard`` (its model's default). AWS
documents CreateImage as "Creates an Amazon EBS-backed AMI from an Amazon EBS-backed instance", and
a copy keeps its source's root device type: the emulation answers ``ebs`` for both, as AWS does, so
that an instance can be launched from a new AMI (amazon-ebs refuses a source AMI that is not EBS).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any


def _split(specs: Iterable[Mapping[str, Any]] | None) -> tuple[dict[str, str], dict[str, str]]:
    from moto.ec2.exceptions import InvalidTaggableResourceType

    image: dict[str, str] = {}
    snapshot: dict[str, str] = {}
    for spec in specs or ():
        rtype = str(spec.get("ResourceType", ""))
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in spec.get("Tags", spec.get("Tag", [])) or []}
        if rtype == "image":
            image.update(tags)
        elif rtype == "snapshot":
            snapshot.update(tags)
        else:
            raise InvalidTaggableResourceType(rtype)
    return image, snapshot


def _tag_new_image(backend: Any, ami: Any, image: Mapping[str, str], snapshot: Mapping[str, str]) -> None:
    if image:
        backend.create_tags([ami.id], dict(image))
    snap = getattr(ami, "ebs_snapshot", None)
    if snapshot and snap is not None:
        backend.create_tags([snap.id], dict(snapshot))


def install() -> None:
    """Patch moto's AMI backend and CopyImage handler (in this process only)."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    original_create = AmiBackend.create_image

    def create_image(self: Any, instance_id: str, name: str, description: str,
                     tag_specifications: list[dict[str, Any]]) -> Any:
        image, snapshot = _split(tag_specifications)
        ami = original_create(self, instance_id, name, description, tag_specifications=[])
        ami.root_device_type = "ebs"
        _tag_new_image(self, ami, image, snapshot)
        return ami

    def copy_image(self: Any) -> ActionResult:
        image_tags, snapshot_tags = _split(self._get_param("TagSpecifications", []))
        self.error_on_dryrun()
        ami = self.ec2_backend.copy_image(
            self._get_param("SourceImageId"), self._get_param("SourceRegion"),
            self._get_param("Name"), self._get_param("Description"),
        )
        from moto.ec2.models import ec2_backends

        source_backend = ec2_backends[self.ec2_backend.account_id][self._get_param("SourceRegion")]
        source = source_backend.describe_images(ami_ids=[self._get_param("SourceImageId")])
        ami.root_device_type = source[0].root_device_type if source else ami.root_device_type
        _tag_new_image(self.ec2_backend, ami, image_tags, snapshot_tags)
        return ActionResult({"ImageId": ami.id})

    AmiBackend.create_image = create_image  # type: ignore[method-assign]
    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]

    # VM Import, which moto lacks (tests/vmimport_emulation.py)
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location(
        "vmimport_emulation", pathlib.Path(__file__).with_name("vmimport_emulation.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    module.install()


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
