"""The EC2 and IAM gateway of the amazon builders, on the AWS session layer (:mod:`amibake.aws`).

The steps call :class:`Ec2Gateway` through the narrow :class:`Ec2Api` protocol. Clients, retries and
the mapping of botocore errors into :class:`AwsError` (a :class:`~amibake.errors.BuildError`
carrying the AWS error code) come from :mod:`amibake.aws`; the API's dictionaries are turned into
the few small typed records the steps need (:mod:`~amibake.plugins.amazon.records`). The gateway's
foundation (journal records, ``_call``) is :mod:`~amibake.plugins.amazon.ec2_base`, its IAM calls
:mod:`~amibake.plugins.amazon.ec2_iam` and its discovery calls for ``amibake cleanup``
:mod:`~amibake.plugins.amazon.ec2_discovery`; this module holds the EC2 calls and the waits.

The EC2 state waits (an instance running, stopped or terminated, an AMI or a copy available) poll at
once, then as :mod:`~amibake.plugins.amazon.pollschedule` plans from the prior of their kind (AWS's
documented timings, refined by this machine's past waits, :mod:`.pollhistory`): no poll before the
likely completion but the first, the calls saved packed around it, never more calls than Packer's fixed
delay would have made by any moment, never giving up earlier than Packer. ``aws_polling`` /
AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS make them Packer's fixed schedule. Against an endpoint that is
not AWS's (moto, a proxy) AWS's timings say nothing, so those waits, and the waits that are not state
transitions (retries while a group is not yet visible), poll with a backoff that starts tight (0.5 s)
and doubles up to ``delay`` and last until ``delay * max_attempts`` seconds have passed. A wait that
gives up names what it waited for and the last state it saw. State waits of one kind that overlap on one
client identity (several builds of one process) share their Describe calls
(:mod:`~amibake.plugins.amazon.describe_batch`); each keeps its own schedule."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from amibake.aws.errors import AwsError
from amibake.aws.errors import translated as _translated
from amibake.aws.retry import (
    DEFAULT_RETRIES,
    TRANSIENT_CODES,
    RetryPolicy,
    ambiguous,
    retries,
)
from amibake.aws.session import CALL_TIMEOUTS, CLIENTS, ClientPool, known_regions, shared_loader
from amibake.errors import BuildError
from amibake.plugins.amazon import describe_batch, pollhistory, pollschedule
from amibake.plugins.amazon.access import Polling
from amibake.plugins.amazon.ec2_base import OWNER_TAGS, NotOurs
from amibake.plugins.amazon.ec2_discovery import DiscoveryCalls
from amibake.plugins.amazon.ec2_iam import IamCalls
from amibake.plugins.amazon.ec2_import import ImportCalls
from amibake.plugins.amazon.records import (
    BlockDevice,
    Image,
    Instance,
    Tagged,
    Tags,
    tag_dict,
    tag_list,
    tag_specs,
)
from amibake.steps.context import BuildCancelled

#: re-exported: the session layer's names, the records and the ownership check's, importable from here
#: as before
__all__ = [
    "CALL_TIMEOUTS", "CLIENTS", "DEFAULT_RETRIES", "OWNER_TAGS", "TRANSIENT_CODES", "AwsError", "BlockDevice",
    "ClientPool", "Ec2Gateway", "Image", "Instance", "NotOurs", "RetryPolicy", "Tagged", "WaitTimeout",
    "ambiguous", "known_regions", "retries", "shared_loader", "tag_dict", "tag_list", "tag_specs",
]

log = logging.getLogger("amibake.aws")

T = TypeVar("T")

#: a wait longer than this shows progress, refreshed at most this often (seconds)
PROGRESS_AFTER = 5.0
PROGRESS_EVERY = 10.0


class WaitTimeout(BuildError):
    """A wait gave up."""


#: errors right after a create, while the new resource is not yet visible everywhere (retried)
_NOT_YET_VISIBLE = (
    "InvalidInstanceID.NotFound", "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable",
    "InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound", "InvalidSnapshot.NotFound",
    "InvalidKeyPair.NotFound", "InvalidLaunchTemplateId.NotFound", "InvalidParameterValue.IamProfile",
)


def _profile_not_visible(exc: AwsError) -> bool:
    return exc.code == "InvalidParameterValue" and "iam instance profile" in exc.aws_message.lower()


#: the size an AMI or copy wait plans for: the wait does not know the image's size (``records.Image``
#: carries no volume sizes), so its prior and its history key assume the default 8 GiB root volume
IMAGE_GIB = 8.0

#: the lag a state wait accepts from another wait's batched Describe call (:mod:`.describe_batch`): an
#: observation made for it at most this fraction of its delay before its poll was due (1.5 s at
#: Packer's 15 s); a wait on the short backoff accepts half its first delay
BATCH_WINDOW = 0.1

#: the planned instance waits, by the states waited for
_INSTANCE_WAITS: dict[tuple[str, ...], str] = {
    ("running",): "instance_running",
    ("stopped",): "instance_stopped",
    ("terminated",): "instance_terminated",
}


def _aws_endpoint(endpoint_ec2: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether EC2 is AWS's own: no custom endpoint (``custom_endpoint_ec2``, AWS_ENDPOINT_URL_EC2,
    AWS_ENDPOINT_URL), or one of AWS's hosts (a VPC endpoint, a FIPS or China endpoint)."""
    env = os.environ if environ is None else environ
    url = endpoint_ec2 or env.get("AWS_ENDPOINT_URL_EC2", "") or env.get("AWS_ENDPOINT_URL", "")
    if not url.strip():
        return True
    host = (urlsplit(url if "//" in url else "//" + url).hostname or "").lower().rstrip(".")
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


class _Planned:
    """A state wait planned by :func:`pollschedule.plan`: the poll times come from the prior of its
    kind (the documented range, refined by this machine's past waits of that kind in that region,
    :mod:`~amibake.plugins.amazon.pollhistory`), within Packer's budget of calls and never giving up
    before Packer; with ``aws_polling`` / AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS it is Packer's
    fixed schedule with those values. The benchmark's clock scale multiplies the delay and the
    prior; what is learnt is kept at scale 1."""

    def __init__(
        self, kind: str, region: str, polling: Polling, scale: float,
        history: pollhistory.PollHistory | None, size_gib: float | None = None,
    ) -> None:
        if size_gib is None:
            size_gib = IMAGE_GIB if kind in ("image_available", "image_copy") else 0.0
        self.kind, self.region, self.polling, self.scale = kind, region, polling, scale
        self.history, self.size_gib = history, size_gib
        #: the plan (made after the first poll), the polls made, the other calls made (progress)
        self.plan: list[float] | None = None
        self.polls = 0
        self.extra = 0
        self.started = time.monotonic()
        #: what a gave-up message names (the scaled clock when the benchmark scales it)
        self.shown = polling if polling.overridden else dataclasses.replace(polling,
                                                                            delay=polling.delay * scale)

    @property
    def key(self) -> str:
        return pollhistory.key(self.region, self.kind, self.size_gib)

    def times(self) -> list[float]:
        if self.plan is None:
            if self.polling.overridden:
                self.plan = pollschedule.fixed(self.polling.delay, self.polling.max_attempts)
            else:
                prior = pollschedule.prior_for(self.kind, self.size_gib)
                if self.history is not None:
                    prior = self.history.prior(self.key, prior)
                self.plan = pollschedule.plan(prior.scaled(self.scale), self.polling.delay * self.scale,
                                              self.polling.max_attempts)
        return self.plan

    def spend_extra(self) -> bool:
        """May the wait make a call that is not a poll now (a progress report)? With an explicit
        ``aws_polling`` always (as before the plan); else only while it keeps the wait within
        Packer's calls over every window from its start (:func:`pollschedule.calls_fit`)."""
        if self.polling.overridden:
            return True
        ok = pollschedule.calls_fit(self.times(), self.polling.delay * self.scale, self.polls, self.extra,
                                    time.monotonic() - self.started)
        self.extra += ok
        return ok

    def observed(self, lower: float, upper: float) -> None:
        """The transition completed between ``lower`` and ``upper`` seconds after the wait began."""
        if self.history is not None:
            self.history.record(self.key, lower / self.scale, upper / self.scale)


# ---------------------------------------------------------------------------------------------
# the gateway


class Ec2Gateway(IamCalls, DiscoveryCalls, ImportCalls):
    """EC2 and IAM calls for one build, through the process's shared clients (``CLIENTS``)."""

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
        params: dict[str, Any] = {}
        if image_ids:
            params["ImageIds"] = list(image_ids)
        if owners:
            params["Owners"] = list(owners)
        if filters:
            params["Filters"] = [{"Name": k, "Values": list(v)} for k, v in filters.items()]
        if include_deprecated is not None:
            params["IncludeDeprecated"] = include_deprecated
        resp = self._call("describe_images", region, **params)
        return [Image.from_api(i) for i in resp.get("Images", [])]

    def images_named(self, name: str, region: str | None = None) -> list[Image]:
        return self.describe_images(owners=["self"], filters={"name": [name]}, region=region)

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
        """CreateImage, the image and its snapshots tagged in the call (so tag-based discovery finds
        every snapshot from its creation on). CreateImage takes no client token: an attempt whose
        answer was lost is found by its name (unique per region) and adopted if it is this build's."""
        params: dict[str, Any] = {"InstanceId": instance_id, "Name": name}
        if description:
            params["Description"] = description
        if block_devices:
            params["BlockDeviceMappings"] = list(block_devices)
        specs = tag_specs(tags or {}, "image") + tag_specs(snapshot_tags or {}, "snapshot")
        if specs:
            params["TagSpecifications"] = specs
        self._intent("image", None, name=name, instance=instance_id)
        image_id = str(self._call(
            "create_image", adopt=lambda: self._adopt_image(name, tags, None),
            duplicate_codes=("InvalidAMIName.Duplicate",), **params,
        )["ImageId"])
        self._created("image", None, image_id, name=name)
        self._pause("after-create-image")
        return image_id

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
        """CopyImage with a client token (its retries are idempotent: AWS answers a repeated token
        with the first copy), the copy and its snapshots tagged in the call."""
        token = str(uuid.uuid4())
        params: dict[str, Any] = {
            "SourceRegion": source_region,
            "SourceImageId": source_image_id,
            "Name": name,
            "CopyImageTags": True,
            "ClientToken": token,
        }
        if description:
            params["Description"] = description
        if encrypted is not None:
            params["Encrypted"] = encrypted
        if kms_key_id:
            params["KmsKeyId"] = kms_key_id
        if copy_duration_minutes:
            # time-based copy (snapshot_copy_duration_minutes)
            params["SnapshotCopyCompletionDurationMinutes"] = copy_duration_minutes
        # tagged in the call itself; CopyImageTags would also bring the source's user tags
        specs = tag_specs(tags or {}, "image") + tag_specs(snapshot_tags or {}, "snapshot")
        if specs:
            params["TagSpecifications"] = specs
        self._intent("image", region, name=name, source=source_image_id, token=token)
        image_id = str(self._call(
            "copy_image", region, adopt=lambda: self._adopt_image(name, tags, region),
            duplicate_codes=("InvalidAMIName.Duplicate",), **params,
        )["ImageId"])
        self._created("image", region, image_id, name=name, source=source_image_id, token=token)
        self._pause("after-copy-image")
        return image_id

    def _adopt_image(self, name: str, tags: Tags | None, region: str | None) -> dict[str, Any] | None:
        """The AMI named ``name`` if this build made it (a CreateImage/CopyImage answer), else None."""
        for image in self.images_named(name, region=region):
            if image.state in ("deregistered", "failed"):
                continue
            self._owned(f"AMI {image.id} named {name!r}", image.tags, tags)
            return {"ImageId": image.id}
        return None

    def deregister_image(self, image_id: str, region: str | None = None) -> None:
        self._call("deregister_image", region, ImageId=image_id)
        self._removed("image", region, image_id)

    def delete_snapshot(self, snapshot_id: str, region: str | None = None) -> None:
        self._call("delete_snapshot", region, SnapshotId=snapshot_id)
        self._removed("snapshot", region, snapshot_id)

    def note_snapshots(self, image_id: str, snapshot_ids: Sequence[str], region: str | None = None) -> None:
        """Journal the snapshots an AMI turned out to have (they exist from its creation on)."""
        for snap in snapshot_ids:
            self._created("snapshot", region, snap, image=image_id)

    def destroy_image(self, image: Image, region: str | None = None) -> None:
        """Deregister an image and delete its snapshots."""
        self.deregister_image(image.id, region)
        for snap in image.snapshot_ids:
            self.delete_snapshot(snap, region)

    def modify_image_attribute(self, image_id: str, region: str | None = None, **params: Any) -> None:
        self._call("modify_image_attribute", region, ImageId=image_id, **params)

    def modify_snapshot_attribute(self, snapshot_id: str, region: str | None = None, **params: Any) -> None:
        self._call("modify_snapshot_attribute", region, SnapshotId=snapshot_id, **params)

    def enable_image_deprecation(self, image_id: str, deprecate_at: Any, region: str | None = None) -> None:
        self._call("enable_image_deprecation", region, ImageId=image_id, DeprecateAt=deprecate_at)

    def enable_image_deregistration_protection(
        self, image_id: str, with_cooldown: bool, region: str | None = None
    ) -> None:
        self._call("enable_image_deregistration_protection", region, ImageId=image_id,
                   WithCooldown=with_cooldown)

    def modify_instance_attribute(self, instance_id: str, **params: Any) -> None:
        self._call("modify_instance_attribute", InstanceId=instance_id, **params)

    def known_regions(self) -> frozenset[str]:
        return known_regions()

    def validate_credentials(self) -> None:
        """Resolve the build's credentials before anything is created (the credential chain, and
        STS AssumeRole for ``assume_role``), as Packer's access config does; a build without valid
        credential sources stops here. ``skip_credential_validation`` leaves it to the first call."""
        if self.access.skip_credential_validation:
            return
        with _translated("credentials"):
            CLIENTS.credentials(self.access, self.region)

    def create_tags(self, resource_ids: Sequence[str], tags: Tags, region: str | None = None) -> None:
        if resource_ids and tags:
            self._call("create_tags", region, Resources=list(resource_ids), Tags=tag_list(tags),
                       retry_codes=_NOT_YET_VISIBLE)

    # -- key pairs and security groups ----------------------------------------------------

    def create_key_pair(self, name: str, key_type: str, tags: Tags) -> str:
        params: dict[str, Any] = {"KeyName": name}
        if key_type:
            params["KeyType"] = key_type
        if tags:
            params["TagSpecifications"] = tag_specs(tags, "key-pair")
        self._intent("key-pair", None, name=name)
        # the private key exists only in CreateKeyPair's answer: a key pair of this build whose
        # answer was lost is useless, so it is deleted and made again
        material = str(self._call(
            "create_key_pair", adopt=lambda: self._adopt_key_pair(name, tags, keep=False),
            duplicate_codes=("InvalidKeyPair.Duplicate",), **params,
        )["KeyMaterial"])
        self._created("key-pair", None, name, name=name)
        self._pause("after-create-key-pair")
        return material

    def import_key_pair(self, name: str, public_key: str, tags: Tags) -> None:
        params: dict[str, Any] = {"KeyName": name, "PublicKeyMaterial": public_key.encode()}
        if tags:
            params["TagSpecifications"] = tag_specs(tags, "key-pair")
        self._intent("key-pair", None, name=name)
        self._call("import_key_pair", adopt=lambda: self._adopt_key_pair(name, tags, keep=True),
                   duplicate_codes=("InvalidKeyPair.Duplicate",), **params)
        self._created("key-pair", None, name, name=name)
        self._pause("after-create-key-pair")

    def _adopt_key_pair(self, name: str, tags: Tags, *, keep: bool) -> dict[str, Any] | None:
        """This build's key pair ``name``: adopted (``keep``, an imported key) or deleted so that it
        is made again; None when there is none."""
        try:
            resp = self._call("describe_key_pairs", KeyNames=[name])
        except AwsError as exc:
            if exc.code == "InvalidKeyPair.NotFound":
                return None
            raise
        for pair in resp.get("KeyPairs", []):
            self._owned(f"key pair {name!r}", tag_dict(pair.get("Tags")), tags)
            if keep:
                return {"KeyName": name}
            self._call("delete_key_pair", KeyName=name)
        return None

    def delete_key_pair(self, name: str, region: str | None = None) -> None:
        self._call("delete_key_pair", region, KeyName=name)
        self._removed("key-pair", region, name)

    def security_groups(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[str]:
        params: dict[str, Any] = {}
        if ids:
            params["GroupIds"] = list(ids)
        if filters:
            params["Filters"] = [{"Name": k, "Values": list(v)} for k, v in filters.items()]
        resp = self._call("describe_security_groups", **params)
        return [str(g["GroupId"]) for g in resp.get("SecurityGroups", [])]

    def create_security_group(self, name: str, description: str, vpc_id: str, tags: Tags) -> str:
        params: dict[str, Any] = {"GroupName": name, "Description": description}
        if vpc_id:
            params["VpcId"] = vpc_id
        if tags:
            params["TagSpecifications"] = tag_specs(tags, "security-group")
        self._intent("security-group", None, name=name)
        group_id = str(self._call(
            "create_security_group", adopt=lambda: self._adopt_security_group(name, vpc_id, tags),
            duplicate_codes=("InvalidGroup.Duplicate",), **params,
        )["GroupId"])
        self._created("security-group", None, group_id, name=name)
        self._pause("after-create-security-group")
        return group_id

    def _adopt_security_group(self, name: str, vpc_id: str, tags: Tags) -> dict[str, Any] | None:
        flt = [{"Name": "group-name", "Values": [name]}]
        if vpc_id:
            flt.append({"Name": "vpc-id", "Values": [vpc_id]})
        for group in self._call("describe_security_groups", Filters=flt).get("SecurityGroups", []):
            self._owned(f"security group {group.get('GroupId', '')} named {name!r}",
                        tag_dict(group.get("Tags")), tags)
            return {"GroupId": str(group["GroupId"])}
        return None

    def authorize_ingress(self, group_id: str, port: int, cidrs: Sequence[str]) -> None:
        v4 = [{"CidrIp": c} for c in cidrs if ":" not in c]
        v6 = [{"CidrIpv6": c} for c in cidrs if ":" in c]
        perm: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
        if v4:
            perm["IpRanges"] = v4
        if v6:
            perm["Ipv6Ranges"] = v6
        self._call("authorize_security_group_ingress", GroupId=group_id, IpPermissions=[perm])

    def delete_security_group(self, group_id: str, region: str | None = None) -> None:
        self._call("delete_security_group", region, GroupId=group_id)
        self._removed("security-group", region, group_id)

    # -- network --------------------------------------------------------------------------

    def vpcs(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if ids:
            params["VpcIds"] = list(ids)
        if filters:
            params["Filters"] = [{"Name": k, "Values": list(v)} for k, v in filters.items()]
        return list(self._call("describe_vpcs", **params).get("Vpcs", []))

    def subnets(
        self, *, ids: Sequence[str] = (), filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if ids:
            params["SubnetIds"] = list(ids)
        if filters:
            params["Filters"] = [{"Name": k, "Values": list(v)} for k, v in filters.items()]
        return list(self._call("describe_subnets", **params).get("Subnets", []))

    # -- instances ------------------------------------------------------------------------

    def run_instance(self, params: Mapping[str, Any]) -> Instance:
        token = str(params.get("ClientToken", ""))
        self._intent("instance", None, token=token)
        attempt = 0
        while True:
            try:
                resp = self._call("run_instances", retry_codes=_NOT_YET_VISIBLE, **dict(params))
                break
            except AwsError as exc:
                # a new temporary instance profile is not visible to EC2 for a few seconds
                attempt += 1
                if not _profile_not_visible(exc) or attempt >= self.retry.max_attempts:
                    raise
                time.sleep(min(2.0, 0.2 * attempt))
        inst = Instance.from_api(resp["Instances"][0])
        self._created("instance", None, inst.id, token=token)
        self._pause("after-run-instances")
        return inst

    def describe_instance(self, instance_id: str, region: str | None = None) -> Instance | None:
        resp = self._call("describe_instances", region, InstanceIds=[instance_id])
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                return Instance.from_api(inst)
        return None

    def stop_instance(self, instance_id: str) -> str:
        resp = self._call("stop_instances", InstanceIds=[instance_id], retry_codes=_NOT_YET_VISIBLE)
        self._pause("after-stop-instances")
        for s in resp.get("StoppingInstances", []):
            return str(s.get("CurrentState", {}).get("Name", ""))
        return ""

    def terminate_instance(self, instance_id: str, region: str | None = None) -> str:
        resp = self._call("terminate_instances", region, InstanceIds=[instance_id])
        self._removed("instance", region, instance_id)
        for s in resp.get("TerminatingInstances", []):
            return str(s.get("CurrentState", {}).get("Name", ""))
        return ""

    def volumes(self, volume_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(volume id, state) of the given volumes that still exist."""
        resp = self._call("describe_volumes", Filters=[{"Name": "volume-id", "Values": list(volume_ids)}])
        return [(str(v["VolumeId"]), str(v.get("State", ""))) for v in resp.get("Volumes", [])]

    def delete_volume(self, volume_id: str, region: str | None = None) -> None:
        self._call("delete_volume", region, VolumeId=volume_id)
        self._removed("volume", region, volume_id)

    # -- spot (launch template + instant fleet) -------------------------------------------

    def create_launch_template(self, name: str, data: Mapping[str, Any], tags: Tags) -> str:
        # one client token for every attempt: a retry after a lost answer gets the same template
        params: dict[str, Any] = {"LaunchTemplateName": name, "LaunchTemplateData": dict(data),
                                  "ClientToken": str(uuid.uuid4())}
        if tags:
            params["TagSpecifications"] = tag_specs(tags, "launch-template")
        self._intent("launch-template", None, name=name, token=params["ClientToken"])
        resp = self._call("create_launch_template", **params)
        lt_id = str(resp["LaunchTemplate"]["LaunchTemplateId"])
        self._created("launch-template", None, lt_id, name=name)
        self._pause("after-create-launch-template")
        return lt_id

    def delete_launch_template(self, template_id: str, region: str | None = None) -> None:
        self._call("delete_launch_template", region, LaunchTemplateId=template_id)
        self._removed("launch-template", region, template_id)

    def delete_fleet(self, fleet_id: str, region: str | None = None) -> None:
        self._call("delete_fleets", region, FleetIds=[fleet_id], TerminateInstances=True)
        self._removed("fleet", region, fleet_id)

    def create_fleet(self, params: Mapping[str, Any]) -> list[str]:
        params = {"ClientToken": str(uuid.uuid4()), **params}  # the same for every attempt
        self._intent("fleet", None, token=params["ClientToken"])
        resp = self._call("create_fleet", retry_codes=_NOT_YET_VISIBLE, **params)
        if resp.get("FleetId"):
            self._created("fleet", None, str(resp["FleetId"]))
        ids = [str(i) for inst in resp.get("Instances", []) for i in inst.get("InstanceIds", [])]
        for iid in ids:
            self._created("instance", None, iid, fleet=str(resp.get("FleetId", "")))
        self._pause("after-create-fleet")
        if not ids:
            errors = "; ".join(
                f"{e.get('ErrorCode', '')}: {e.get('ErrorMessage', '')}" for e in resp.get("Errors", [])
            )
            raise BuildError(f"Error waiting for fleet request: {errors or 'no instance was launched'}")
        return ids

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
        """Poll ``probe`` (-> (done, state)) until done; return the last state.

        The first poll happens at once. ``retry_codes`` are AWS error codes that mean "not there yet".
        A state in ``failed_states`` ends the wait with an error. ``polling`` overrides the
        gateway's (the longer AMI waits). This is the wait of things that are not EC2 state
        transitions (a security group accepting rules, one becoming deletable): it polls with a
        short backoff; the state waits (:meth:`wait_instance`, :meth:`wait_image_available`) are
        planned (:class:`_Planned`).
        """
        return self._wait(what, probe, cancel=cancel, retry_codes=retry_codes, failed_states=failed_states,
                          point=point, polling=polling or self.polling, planned=None)

    def _wait(
        self,
        what: str,
        probe: Callable[[], tuple[bool, str]],
        *,
        cancel: threading.Event | None,
        retry_codes: Sequence[str],
        failed_states: Sequence[str],
        point: str,
        polling: Polling,
        planned: _Planned | None,
        ticket: describe_batch.Ticket | None = None,
    ) -> str:
        if point:
            self._pause(f"wait-{point}")
        started = time.monotonic()
        if planned is not None:
            planned.started = started
        deadline = started + polling.budget
        delays = polling.delays()
        last = "(no answer yet)"
        polls = 0
        not_ready_at = 0.0  # the last poll that did not see the state (seconds after the start)
        while True:
            polls += 1
            if cancel is not None and cancel.is_set():
                raise BuildCancelled()
            asked = time.monotonic() - started
            if planned is not None:
                planned.polls = polls
            if ticket is not None:
                ticket.observed = None
            try:
                done, last = probe()
            except AwsError as exc:
                if exc.code not in retry_codes:
                    raise
                last = exc.code
                done = False
            if ticket is not None and ticket.observed is not None:
                asked = ticket.observed - started  # another wait's batched call may have asked earlier
            if done:
                if planned is not None:
                    planned.observed(not_ready_at if polls > 1 else 0.0, asked if polls > 1 else 0.0)
                return last
            not_ready_at = asked
            if last in failed_states:
                raise WaitTimeout(f"{what}: reached the failure state {last!r}")
            if planned is not None:
                times = planned.times()
                pause = started + times[polls] - time.monotonic() if polls < len(times) else None
            else:
                pause = next(delays)
                if time.monotonic() + pause > deadline:
                    pause = None
            if pause is None:
                shown = planned.shown if planned is not None else polling
                raise WaitTimeout(
                    f"gave up waiting for {what} after {shown.budget:g}s "
                    f"({shown.max_attempts} attempts, {shown.delay:g}s apart; raise "
                    "aws_polling or AWS_MAX_ATTEMPTS / AWS_POLL_DELAY_SECONDS to wait longer); "
                    f"last state seen: {last}. If this build is killed now, remove what it left with: "
                    f"{self.cleanup_hint()}"
                )
            pause = max(0.0, pause)
            if ticket is not None:
                ticket.next_due(time.monotonic() + pause)
            if cancel is not None:
                if cancel.wait(pause):
                    raise BuildCancelled()
            else:
                time.sleep(pause)

    def _planned(self, kind: str, region: str | None, polling: Polling) -> _Planned | None:
        """The plan of a state wait of ``kind``, or None for the short backoff of :meth:`wait`: an
        endpoint that is not AWS's (moto, LocalStack, a proxy) has none of AWS's documented timings
        unless it declares them with the benchmark's clock scale (``AMIBAKE_POLL_SCALE``)."""
        scale = pollschedule.clock_scale()
        if not polling.overridden and scale is None and not _aws_endpoint(self.access.endpoint_ec2):
            return None
        history = None if polling.overridden else pollhistory.PollHistory.default()
        return _Planned(kind, region or self.region, polling, scale or 1.0, history)

    def _batch_key(self, kind: str, region: str | None) -> tuple[object, ...]:
        """The waits batched together: one kind, one client identity (region, endpoint, credentials)."""
        a = self.access
        return (kind, region or self.region, a.credentials_key(), a.endpoint("ec2"),
                a.insecure_skip_tls_verify)

    @staticmethod
    def _batch_window(polling: Polling, planned: _Planned | None) -> float:
        if planned is not None:
            return BATCH_WINDOW * planned.shown.delay
        return min(BATCH_WINDOW * polling.delay, polling.first_delay / 2)

    def _instances_by_id(self, ids: Sequence[str], region: str | None) -> dict[str, Instance]:
        """One DescribeInstances for several waits: the ``instance-id`` filter (an id EC2 does not show
        yet is missing from the answer; a list of InstanceIds would fail the whole call)."""
        resp = self._call("describe_instances", region,
                          Filters=[{"Name": "instance-id", "Values": list(ids)}])
        return {inst.id: inst for res in resp.get("Reservations", [])
                for inst in map(Instance.from_api, res.get("Instances", []))}

    def _images_by_id(self, ids: Sequence[str], region: str | None) -> dict[str, Image]:
        """One DescribeImages for several waits: the ``image-id`` filter on the caller's own images
        (every AMI a build waits for is one it made: CreateImage, CopyImage, RegisterImage, ImportImage)."""
        resp = self._call("describe_images", region, Owners=["self"],
                          Filters=[{"Name": "image-id", "Values": list(ids)}])
        return {img.id: img for img in (Image.from_api(i) for i in resp.get("Images", []))}

    def _batched(
        self, kind: str, rid: str, region: str | None, window: float,
    ) -> contextlib.AbstractContextManager[tuple[describe_batch.Batch[Any], describe_batch.Ticket] | None]:
        """The wait's place among the waits of ``kind`` on this client identity (None: batching off)."""
        if not describe_batch.enabled():
            return contextlib.nullcontext(None)
        return describe_batch.BATCHES.ticket(self._batch_key(kind, region), rid, window)

    def wait_instance(
        self, instance_id: str, states: Sequence[str], *, cancel: threading.Event | None = None,
        failed_states: Sequence[str] = (), region: str | None = None,
    ) -> Instance:
        seen: list[Instance] = []
        kind = _INSTANCE_WAITS.get(tuple(states), "")
        planned = self._planned(kind, region, self.polling) if kind else None
        window = self._batch_window(self.polling, planned)
        with self._batched("instance", instance_id, region, window) as batch:

            def probe() -> tuple[bool, str]:
                if batch is None:
                    inst = self.describe_instance(instance_id, region)
                else:
                    inst = batch[0].poll(batch[1], lambda: self.describe_instance(instance_id, region),
                                         lambda ids: self._instances_by_id(ids, region)).value
                if inst is None:
                    return False, "(not found)"
                seen.append(inst)
                return inst.state in states, inst.state

            self._wait(
                f"instance {instance_id} to be {' or '.join(states)}", probe, cancel=cancel,
                retry_codes=("InvalidInstanceID.NotFound",), failed_states=failed_states,
                point="instance-" + "-or-".join(states), polling=self.polling, planned=planned,
                ticket=batch[1] if batch is not None else None,
            )
        return seen[-1]

    def snapshot_progress(self, snapshot_ids: Sequence[str], region: str | None = None) -> float | None:
        """The least progress (0..1) of ``snapshot_ids``, None when EC2 does not say."""
        if not snapshot_ids:
            return None
        resp = self._call("describe_snapshots", region, SnapshotIds=list(snapshot_ids))
        values = []
        for snap in resp.get("Snapshots", []):
            text = str(snap.get("Progress") or "").rstrip("%")
            if text.replace(".", "", 1).isdigit():
                values.append(float(text) / 100)
        return min(values) if values else None

    def wait_image_available(
        self,
        image_id: str,
        region: str | None = None,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, float | None], None] | None = None,
        registered: bool = False,
    ) -> Image:
        """Wait for an AMI (``registered``: one RegisterImage made of completed snapshots, which is
        planned with its own, shorter prior than CreateImage's).

        On a long wait (over ``PROGRESS_AFTER`` seconds) report its snapshots'
        progress at most every ``PROGRESS_EVERY`` seconds, so a fast endpoint pays no extra call. On
        a planned wait the DescribeSnapshots call is made only when it keeps the wait within Packer's
        calls (``_Planned.spend_extra``); otherwise the report says the AMI is pending, without a
        fraction."""
        seen: list[Image] = []
        started = time.monotonic()
        scale = pollschedule.clock_scale() or 1.0
        every, after = PROGRESS_EVERY * scale, PROGRESS_AFTER * scale
        polling = self.polling.long()
        copy = region not in (None, self.region)
        kind = "image_copy" if copy else "image_registered" if registered else "image_available"
        planned = self._planned(kind, region, polling)
        last_report = [started - every]  # the first eligible poll reports
        label = f"AMI {image_id}" + (f" ({region})" if region else "") + ": snapshot progress"

        def report(image: Image) -> None:
            now = time.monotonic()
            if progress is None or now - started < after or now - last_report[0] < every:
                return
            if planned is not None and not planned.spend_extra():
                progress(label, None)  # still pending: said without the DescribeSnapshots call
                return
            last_report[0] = now
            try:
                fraction = self.snapshot_progress(image.snapshot_ids, region)
            except AwsError:
                fraction = None
            progress(label, fraction)

        def single() -> Image | None:
            images = self.describe_images(image_ids=[image_id], region=region)
            return images[0] if images else None

        with self._batched("image", image_id, region, self._batch_window(polling, planned)) as batch:

            def probe() -> tuple[bool, str]:
                if batch is None:
                    image = single()
                else:
                    image = batch[0].poll(batch[1], single, lambda ids: self._images_by_id(ids, region)).value
                if image is None:
                    return False, "(not found)"
                seen.append(image)
                state = image.state
                if state == "failed":
                    reason = image.state_reason
                    raise WaitTimeout(f"AMI {image_id} failed" + (f": {reason}" if reason else ""))
                if state != "available":
                    report(image)
                return state == "available", state

            self._wait(
                f"AMI {image_id} to become available" + (f" in {region}" if region else ""), probe,
                cancel=cancel, retry_codes=("InvalidAMIID.NotFound",), failed_states=(),
                point="copy-available" if copy else "image-available", polling=polling, planned=planned,
                ticket=batch[1] if batch is not None else None,
            )
        return seen[-1]
