"""The narrow interface the amazon-ebs steps see of EC2 and IAM: :class:`Ec2Api`.

:class:`~amibake.plugins.amazon.ec2.Ec2Gateway` implements it against AWS; a step can be unit-tested
against a small in-memory fake (``tests/fakes/ec2.py``) implementing the same methods. Exactly the
calls the steps (``steps_*.py``, ``ebs.py``, ``reuse.py``) make are listed; the gateway's journal,
retries and discovery calls (``amibake cleanup``) are not part of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from amibake.plugins.amazon.access import Polling
    from amibake.plugins.amazon.records import Image, Instance

Tags = Mapping[str, str]


class Ec2Api(Protocol):
    """What the steps call on EC2 and IAM (``st.ec2``). ``region`` is the build region; a
    ``region`` argument of None means it."""

    region: str

    # -- images ---------------------------------------------------------------------------

    def describe_images(
        self,
        *,
        image_ids: Sequence[str] = (),
        owners: Sequence[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        include_deprecated: bool | None = None,
        region: str | None = None,
    ) -> list[Image]: ...

    def images_named(self, name: str, region: str | None = None) -> list[Image]: ...

    def create_image(
        self,
        instance_id: str,
        name: str,
        *,
        description: str = "",
        block_devices: Sequence[Mapping[str, Any]] = (),
        tags: Tags | None = None,
        snapshot_tags: Tags | None = None,
    ) -> str: ...

    def copy_image(
        self,
        region: str,
        *,
        source_region: str,
        source_image_id: str,
        name: str,
        description: str = "",
        encrypted: bool | None = None,
        kms_key_id: str = "",
        tags: Tags | None = None,
        snapshot_tags: Tags | None = None,
        copy_duration_minutes: int = 0,
    ) -> str: ...

    def deregister_image(self, image_id: str, region: str | None = None) -> None: ...

    def delete_snapshot(self, snapshot_id: str, region: str | None = None) -> None: ...

    def note_snapshots(
        self, image_id: str, snapshot_ids: Sequence[str], region: str | None = None
    ) -> None: ...

    def destroy_image(self, image: Image, region: str | None = None) -> None: ...

    def modify_image_attribute(self, image_id: str, region: str | None = None, **params: Any) -> None: ...

    def modify_snapshot_attribute(
        self, snapshot_id: str, region: str | None = None, **params: Any
    ) -> None: ...

    def enable_image_deprecation(
        self, image_id: str, deprecate_at: Any, region: str | None = None
    ) -> None: ...

    def enable_image_deregistration_protection(
        self, image_id: str, with_cooldown: bool, region: str | None = None
    ) -> None: ...

    def known_regions(self) -> frozenset[str]: ...

    def create_tags(self, resource_ids: Sequence[str], tags: Tags, region: str | None = None) -> None: ...

    # -- key pairs and security groups ----------------------------------------------------

    def create_key_pair(self, name: str, key_type: str, tags: Tags) -> str: ...

    def import_key_pair(self, name: str, public_key: str, tags: Tags) -> None: ...

    def delete_key_pair(self, name: str, region: str | None = None) -> None: ...

    def security_groups(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[str]: ...

    def create_security_group(self, name: str, description: str, vpc_id: str, tags: Tags) -> str: ...

    def authorize_ingress(self, group_id: str, port: int, cidrs: Sequence[str]) -> None: ...

    def delete_security_group(self, group_id: str, region: str | None = None) -> None: ...

    # -- network --------------------------------------------------------------------------

    def vpcs(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[dict[str, Any]]: ...

    def subnets(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[dict[str, Any]]: ...

    # -- instances ------------------------------------------------------------------------

    def run_instance(self, params: Mapping[str, Any]) -> Instance: ...

    def modify_instance_attribute(self, instance_id: str, **params: Any) -> None: ...

    def stop_instance(self, instance_id: str) -> str: ...

    def terminate_instance(self, instance_id: str, region: str | None = None) -> str: ...

    def volumes(self, volume_ids: Sequence[str]) -> list[tuple[str, str]]: ...

    def delete_volume(self, volume_id: str, region: str | None = None) -> None: ...

    # -- spot -----------------------------------------------------------------------------

    def create_launch_template(self, name: str, data: Mapping[str, Any], tags: Tags) -> str: ...

    def delete_launch_template(self, template_id: str, region: str | None = None) -> None: ...

    def create_fleet(self, params: Mapping[str, Any]) -> list[str]: ...

    # -- IAM ------------------------------------------------------------------------------

    def instance_profile_exists(self, name: str) -> bool: ...

    def create_instance_profile(self, name: str, tags: Tags) -> None: ...

    def delete_instance_profile(self, name: str) -> None: ...

    def create_role(self, name: str, trust_policy: str, tags: Tags) -> None: ...

    def delete_role(self, name: str) -> None: ...

    def put_role_policy(self, role: str, policy_name: str, document: str) -> None: ...

    def delete_role_policy(self, role: str, policy_name: str) -> None: ...

    def add_role_to_instance_profile(self, profile: str, role: str) -> None: ...

    def remove_role_from_instance_profile(self, profile: str, role: str) -> None: ...

    # -- waits ----------------------------------------------------------------------------

    def wait(
        self,
        what: str,
        probe: Callable[[], tuple[bool, str]],
        *,
        cancel: threading.Event | None = None,
        retry_codes: Sequence[str] = (),
        failed_states: Sequence[str] = (),
        point: str = "",
        polling: Polling | None = None,
    ) -> str: ...

    def wait_instance(
        self, instance_id: str, states: Sequence[str], *, cancel: threading.Event | None = None,
        failed_states: Sequence[str] = (), region: str | None = None,
    ) -> Instance: ...

    def wait_image_available(
        self,
        image_id: str,
        region: str | None = None,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, float | None], None] | None = None,
        registered: bool = False,
    ) -> Image: ...
