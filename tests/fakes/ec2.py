"""``CountingEc2``: an in-memory fake of :class:`~amibake.plugins.amazon.ec2api.Ec2Api`.

It talks to no AWS and no moto: the resources are dictionaries, ids are counters. Every call is
recorded in ``calls`` (method name, positional and keyword arguments), so a test asserts what a step
asked for, in which order and how many times. Behaviour is scripted:

* ``fail_next(method, *errors)``: the next calls of ``method`` raise these, in order;
* ``instance_states[iid]`` / ``image_states[ami]``: the states successive polls see (the last one
  sticks), so a wait's number of Describe calls is known; unscripted, an instance is running (or
  stopped, or terminated) and an AMI available at the first look;
* a wait polls without sleeping, at most ``max_polls`` times, like the gateway's (``retry_codes``
  are "not there yet", ``failed_states`` end it with :class:`WaitTimeout`, a set ``cancel`` with
  :class:`BuildCancelled`); an AMI wait reports progress (``None``) at each poll that sees the AMI
  not yet available, where the gateway does so on a long wait.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from amibake.plugins.amazon.access import Polling
from amibake.plugins.amazon.ec2 import AwsError, BlockDevice, Image, Instance, WaitTimeout
from amibake.plugins.amazon.ec2api import Ec2Api
from amibake.steps.context import BuildCancelled

Tags = Mapping[str, str]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@functools.cache
def private_key() -> str:
    """The key material every fake CreateKeyPair answers with (an Ed25519 key, made once)."""
    import asyncssh

    return str(asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode())


def aws_error(code: str, message: str = "", operation: str = "fake") -> AwsError:
    return AwsError(operation, code, message or code)


class CountingEc2:
    """A fake EC2 and IAM for steps: records and counts every call; nothing leaves the process."""

    def __init__(self, region: str = "us-east-1", *, max_polls: int = 50) -> None:
        self.region = region
        self.max_polls = max_polls
        self.calls: list[Call] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # the world
        self.images: dict[str, Image] = {}
        self.instances: dict[str, Instance] = {}
        self.instance_states: dict[str, list[str]] = {}
        self.image_states: dict[str, list[str]] = {}
        self.key_pairs: dict[str, dict[str, str]] = {}
        self.security_groups_: dict[str, dict[str, str]] = {}
        self.ingress: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.iam_profiles: dict[str, list[str]] = {}
        self.iam_roles: dict[str, dict[str, str]] = {}
        self.launch_templates: dict[str, str] = {}
        self.volumes_: dict[str, str] = {}
        self.vpcs_: list[dict[str, Any]] = [{"VpcId": "vpc-default", "IsDefault": True}]
        self.subnets_: list[dict[str, Any]] = [
            {"SubnetId": "subnet-1", "VpcId": "vpc-default", "AvailabilityZone": f"{region}a",
             "AvailableIpAddressCount": 250},
        ]
        #: what a new instance looks like once running (addresses, block devices)
        self.instance_template = Instance(id="", state="pending", public_ip="203.0.113.10",
                                          private_ip="10.0.0.10")

    # -- bookkeeping ----------------------------------------------------------------------

    def fail_next(self, method: str, *errors: BaseException) -> None:
        """The next ``len(errors)`` calls of ``method`` raise ``errors``, in order."""
        self._failures.setdefault(method, []).extend(errors)

    def _record(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append(Call(method, args, kwargs))
            pending = self._failures.get(method)
            error = pending.pop(0) if pending else None
        if error is not None:
            raise error

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):08x}"

    def count(self, name: str) -> int:
        return sum(1 for c in self.calls if c.name == name)

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def last(self, name: str) -> Call:
        return [c for c in self.calls if c.name == name][-1]

    # -- images ---------------------------------------------------------------------------

    def describe_images(
        self,
        *,
        image_ids: Sequence[str] = (),
        owners: Sequence[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        include_deprecated: bool | None = None,
        region: str | None = None,
    ) -> list[Image]:
        self._record("describe_images", image_ids=list(image_ids), owners=list(owners),
                     filters=dict(filters or {}), region=region)
        return self._images(image_ids, filters)

    def _images(self, image_ids: Sequence[str], filters: Mapping[str, Sequence[str]] | None) -> list[Image]:
        out = []
        for image in self.images.values():
            if image_ids and image.id not in image_ids:
                continue
            names = (filters or {}).get("name")
            if names and image.name not in names:
                continue
            states = self.image_states.get(image.id)
            out.append(replace(image, state=states[0]) if states else image)
        return out

    def images_named(self, name: str, region: str | None = None) -> list[Image]:
        self._record("images_named", name, region=region)
        return [i for i in self.images.values() if i.name == name]

    def add_image(self, name: str, *, snapshots: Sequence[str] = (), **fields: Any) -> Image:
        """An existing image (a source AMI, or one a name clashes with)."""
        image = Image(id=self._new_id("ami"), name=name, state="available", root_device_type="ebs",
                      snapshot_ids=tuple(snapshots), **fields)
        self.images[image.id] = image
        return image

    def create_image(
        self,
        instance_id: str,
        name: str,
        *,
        description: str = "",
        block_devices: Sequence[Mapping[str, Any]] = (),
        tags: Tags | None = None,
        snapshot_tags: Tags | None = None,
    ) -> str:
        self._record("create_image", instance_id, name, description=description,
                     block_devices=list(block_devices), tags=dict(tags or {}),
                     snapshot_tags=dict(snapshot_tags or {}))
        image = Image(id=self._new_id("ami"), name=name, state="pending", description=description,
                      tags=dict(tags or {}), snapshot_ids=(self._new_id("snap"),), root_device_type="ebs")
        self.images[image.id] = image
        return image.id

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
    ) -> str:
        self._record("copy_image", region, source_region=source_region, source_image_id=source_image_id,
                     name=name, tags=dict(tags or {}), snapshot_tags=dict(snapshot_tags or {}))
        image = Image(id=self._new_id("ami"), name=name, state="pending", tags=dict(tags or {}),
                      snapshot_ids=(self._new_id("snap"),))
        self.images[image.id] = image
        return image.id

    def deregister_image(self, image_id: str, region: str | None = None) -> None:
        self._record("deregister_image", image_id, region=region)
        self.images.pop(image_id, None)

    def delete_snapshot(self, snapshot_id: str, region: str | None = None) -> None:
        self._record("delete_snapshot", snapshot_id, region=region)

    def note_snapshots(self, image_id: str, snapshot_ids: Sequence[str], region: str | None = None) -> None:
        self._record("note_snapshots", image_id, list(snapshot_ids), region=region)

    def destroy_image(self, image: Image, region: str | None = None) -> None:
        self._record("destroy_image", image.id, region=region)
        self.deregister_image(image.id, region)
        for snap in image.snapshot_ids:
            self.delete_snapshot(snap, region)

    def modify_image_attribute(self, image_id: str, region: str | None = None, **params: Any) -> None:
        self._record("modify_image_attribute", image_id, region=region, **params)

    def modify_snapshot_attribute(self, snapshot_id: str, region: str | None = None, **params: Any) -> None:
        self._record("modify_snapshot_attribute", snapshot_id, region=region, **params)

    def enable_image_deprecation(self, image_id: str, deprecate_at: Any, region: str | None = None) -> None:
        self._record("enable_image_deprecation", image_id, deprecate_at, region=region)

    def enable_image_deregistration_protection(
        self, image_id: str, with_cooldown: bool, region: str | None = None
    ) -> None:
        self._record("enable_image_deregistration_protection", image_id, with_cooldown, region=region)

    def known_regions(self) -> frozenset[str]:
        self._record("known_regions")
        return frozenset({"us-east-1", "us-west-2", "eu-west-1", self.region})

    def create_tags(self, resource_ids: Sequence[str], tags: Tags, region: str | None = None) -> None:
        self._record("create_tags", list(resource_ids), dict(tags), region=region)
        for rid in resource_ids:
            self.tags.setdefault(rid, {}).update(tags)

    # -- key pairs and security groups ----------------------------------------------------

    def create_key_pair(self, name: str, key_type: str, tags: Tags) -> str:
        self._record("create_key_pair", name, key_type, dict(tags))
        self.key_pairs[name] = dict(tags)
        return private_key()

    def import_key_pair(self, name: str, public_key: str, tags: Tags) -> None:
        self._record("import_key_pair", name, public_key, dict(tags))
        self.key_pairs[name] = dict(tags)

    def delete_key_pair(self, name: str, region: str | None = None) -> None:
        self._record("delete_key_pair", name, region=region)
        self.key_pairs.pop(name, None)

    def security_groups(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[str]:
        self._record("security_groups", ids=list(ids), filters=dict(filters or {}))
        missing = [i for i in ids if i not in self.security_groups_]
        if missing:
            raise aws_error("InvalidGroup.NotFound", f"The security group '{missing[0]}' does not exist")
        return list(ids) if ids else list(self.security_groups_)

    def create_security_group(self, name: str, description: str, vpc_id: str, tags: Tags) -> str:
        self._record("create_security_group", name, description, vpc_id, dict(tags))
        gid = self._new_id("sg")
        self.security_groups_[gid] = dict(tags)
        return gid

    def authorize_ingress(self, group_id: str, port: int, cidrs: Sequence[str]) -> None:
        self._record("authorize_ingress", group_id, port, list(cidrs))
        self.ingress.setdefault(group_id, []).append((port, tuple(cidrs)))

    def delete_security_group(self, group_id: str, region: str | None = None) -> None:
        self._record("delete_security_group", group_id, region=region)
        self.security_groups_.pop(group_id, None)

    # -- network --------------------------------------------------------------------------

    def vpcs(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[dict[str, Any]]:
        self._record("vpcs", ids=list(ids), filters=dict(filters or {}))
        return [v for v in self.vpcs_ if not ids or v["VpcId"] in ids]

    def subnets(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[dict[str, Any]]:
        self._record("subnets", ids=list(ids), filters=dict(filters or {}))
        return [s for s in self.subnets_ if not ids or s["SubnetId"] in ids]

    # -- instances ------------------------------------------------------------------------

    def run_instance(self, params: Mapping[str, Any]) -> Instance:
        self._record("run_instance", dict(params))
        inst = replace(self.instance_template, id=self._new_id("i"), state="pending")
        self.instances[inst.id] = inst
        return inst

    def _describe_instance(self, instance_id: str, region: str | None) -> Instance | None:
        self._record("describe_instances", instance_id, region=region)
        inst = self.instances.get(instance_id)
        if inst is None:
            return None
        states = self.instance_states.get(instance_id)
        if states:
            state = states.pop(0) if len(states) > 1 else states[0]
        else:  # unscripted: a new instance is running at the first look
            state = {"pending": "running", "stopping": "stopped", "shutting-down": "terminated"}.get(
                inst.state, inst.state)
        inst = self.instances[instance_id] = replace(inst, state=state)
        return inst

    def modify_instance_attribute(self, instance_id: str, **params: Any) -> None:
        self._record("modify_instance_attribute", instance_id, **params)

    def stop_instance(self, instance_id: str) -> str:
        self._record("stop_instance", instance_id)
        self.instances[instance_id] = replace(self.instances[instance_id], state="stopping")
        return "stopping"

    def terminate_instance(self, instance_id: str, region: str | None = None) -> str:
        self._record("terminate_instance", instance_id, region=region)
        self.instance_states[instance_id] = ["terminated"]
        return "shutting-down"

    def volumes(self, volume_ids: Sequence[str]) -> list[tuple[str, str]]:
        self._record("volumes", list(volume_ids))
        return [(v, self.volumes_[v]) for v in volume_ids if v in self.volumes_]

    def delete_volume(self, volume_id: str, region: str | None = None) -> None:
        self._record("delete_volume", volume_id, region=region)
        self.volumes_.pop(volume_id, None)

    # -- spot -----------------------------------------------------------------------------

    def create_launch_template(self, name: str, data: Mapping[str, Any], tags: Tags) -> str:
        self._record("create_launch_template", name, dict(data), dict(tags))
        lt = self._new_id("lt")
        self.launch_templates[lt] = name
        return lt

    def delete_launch_template(self, template_id: str, region: str | None = None) -> None:
        self._record("delete_launch_template", template_id, region=region)
        self.launch_templates.pop(template_id, None)

    def create_fleet(self, params: Mapping[str, Any]) -> list[str]:
        self._record("create_fleet", dict(params))
        inst = replace(self.instance_template, id=self._new_id("i"), state="pending")
        self.instances[inst.id] = inst
        return [inst.id]

    # -- IAM ------------------------------------------------------------------------------

    def instance_profile_exists(self, name: str) -> bool:
        self._record("instance_profile_exists", name)
        return name in self.iam_profiles

    def create_instance_profile(self, name: str, tags: Tags) -> None:
        self._record("create_instance_profile", name, dict(tags))
        self.iam_profiles[name] = []

    def delete_instance_profile(self, name: str) -> None:
        self._record("delete_instance_profile", name)
        self.iam_profiles.pop(name, None)

    def create_role(self, name: str, trust_policy: str, tags: Tags) -> None:
        self._record("create_role", name, trust_policy, dict(tags))
        self.iam_roles[name] = {}

    def delete_role(self, name: str) -> None:
        self._record("delete_role", name)
        self.iam_roles.pop(name, None)

    def put_role_policy(self, role: str, policy_name: str, document: str) -> None:
        self._record("put_role_policy", role, policy_name, document)
        self.iam_roles[role][policy_name] = document

    def delete_role_policy(self, role: str, policy_name: str) -> None:
        self._record("delete_role_policy", role, policy_name)
        self.iam_roles.get(role, {}).pop(policy_name, None)

    def add_role_to_instance_profile(self, profile: str, role: str) -> None:
        self._record("add_role_to_instance_profile", profile, role)
        self.iam_profiles[profile].append(role)

    def remove_role_from_instance_profile(self, profile: str, role: str) -> None:
        self._record("remove_role_from_instance_profile", profile, role)
        self.iam_profiles.get(profile, []).remove(role)

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
    ) -> str:
        self._record("wait", what, retry_codes=tuple(retry_codes), failed_states=tuple(failed_states))
        last = "(no answer yet)"
        for _ in range(self.max_polls):
            if cancel is not None and cancel.is_set():
                raise BuildCancelled()
            try:
                done, last = probe()
            except AwsError as exc:
                if exc.code not in retry_codes:
                    raise
                done, last = False, exc.code
            if done:
                return last
            if last in failed_states:
                raise WaitTimeout(f"{what}: reached the failure state {last!r}")
        raise WaitTimeout(f"gave up waiting for {what}; last state seen: {last}")

    def wait_instance(
        self, instance_id: str, states: Sequence[str], *, cancel: threading.Event | None = None,
        failed_states: Sequence[str] = (), region: str | None = None,
    ) -> Instance:
        seen: list[Instance] = []

        def probe() -> tuple[bool, str]:
            inst = self._describe_instance(instance_id, region)
            if inst is None:
                return False, "(not found)"
            seen.append(inst)
            return inst.state in states, inst.state

        self.wait(f"instance {instance_id} to be {' or '.join(states)}", probe, cancel=cancel,
                  retry_codes=("InvalidInstanceID.NotFound",), failed_states=failed_states)
        return seen[-1]

    def wait_image_available(
        self,
        image_id: str,
        region: str | None = None,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, float | None], None] | None = None,
        registered: bool = False,
    ) -> Image:
        seen: list[Image] = []

        def probe() -> tuple[bool, str]:
            self._record("describe_images", image_ids=[image_id], region=region)
            image = self.images.get(image_id)
            if image is None:
                return False, "(not found)"
            states = self.image_states.get(image_id)
            if states:
                image = replace(image, state=states.pop(0) if len(states) > 1 else states[0])
            else:
                image = replace(image, state="available")
            self.images[image_id] = image
            seen.append(image)
            if image.state == "failed":
                raise WaitTimeout(f"AMI {image_id} failed")
            if image.state != "available" and progress is not None:
                # the gateway reports its snapshots' progress on a long wait; here at each such poll
                progress(f"AMI {image_id}" + (f" ({region})" if region else "") + ": snapshot progress", None)
            return image.state == "available", image.state

        self.wait(f"AMI {image_id} to become available", probe, cancel=cancel,
                  retry_codes=("InvalidAMIID.NotFound",))
        return seen[-1]


def as_ec2api(fake: CountingEc2) -> Ec2Api:
    """The fake where an :class:`Ec2Api` is wanted (mypy checks here that it is one)."""
    return fake


__all__ = ["BlockDevice", "Call", "CountingEc2", "as_ec2api", "aws_error"]
