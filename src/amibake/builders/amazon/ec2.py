"""The one module that talks to AWS (EC2 and IAM) through boto3.

Everything else in the amazon builders calls :class:`Ec2Gateway`. botocore errors are translated
here into :class:`AwsError` (a :class:`~amibake.errors.BuildError` carrying the AWS error code), and
the API's dictionaries are turned into the few small typed records the steps need.

Waits poll with a backoff that starts tight (50 ms: a fake or fast API answers on the first polls)
and widens to ``delay`` seconds, until ``delay * max_attempts`` seconds have passed (the same budget as
AWS SDK waiters). A wait that gives up names what it waited for and the last state it saw.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from amibake.errors import BuildError
from amibake.steps.context import BuildCancelled

T = TypeVar("T")

Tags = Mapping[str, str]


class AwsError(BuildError):
    """An AWS API call failed. ``code`` is AWS's error code (``InvalidAMIID.NotFound``...)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.aws_message = message
        super().__init__(f"{code}: {message}" if code else message)


class WaitTimeout(BuildError):
    """A wait gave up."""


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        raise AwsError(operation, str(err.get("Code", "")), str(err.get("Message", exc))) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(operation, "", str(exc)) from exc


# ---------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Polling:
    """How long waits last: ``aws_polling`` in the template, else AWS_POLL_DELAY_SECONDS etc."""

    delay: float = 15.0
    max_attempts: int = 40
    first_delay: float = 0.05

    @classmethod
    def resolve(
        cls,
        delay_seconds: float | None,
        max_attempts: int | None,
        environ: Mapping[str, str] | None = None,
    ) -> Polling:
        env = os.environ if environ is None else environ
        delay = delay_seconds
        attempts = max_attempts
        if delay is None and env.get("AWS_POLL_DELAY_SECONDS", "").strip():
            delay = float(env["AWS_POLL_DELAY_SECONDS"])
        if attempts is None and env.get("AWS_MAX_ATTEMPTS", "").strip():
            attempts = int(env["AWS_MAX_ATTEMPTS"])
        if attempts is None and env.get("AWS_TIMEOUT_SECONDS", "").strip():
            # deprecated knob: turned into attempts, as Packer does
            d = delay if delay is not None else cls.delay
            attempts = max(1, int(float(env["AWS_TIMEOUT_SECONDS"]) / max(d, 1.0)))
        return cls(
            delay=cls.delay if delay is None else max(0.0, float(delay)),
            max_attempts=cls.max_attempts if attempts is None or attempts <= 0 else int(attempts),
        )

    def delays(self) -> Iterator[float]:
        """The sleeps between polls: 50 ms doubling to ``delay``."""
        d = min(self.first_delay, self.delay)
        while True:
            yield d
            d = min(d * 2, self.delay)

    @property
    def budget(self) -> float:
        return max(self.delay * self.max_attempts, self.first_delay * self.max_attempts)


@dataclass(frozen=True)
class AwsAccess:
    region: str
    profile: str = ""
    access_key: str = ""
    secret_key: str = ""
    token: str = ""
    endpoint_ec2: str = ""
    endpoint_iam: str = ""
    insecure_skip_tls_verify: bool = False
    max_retries: int = 0
    max_pool_connections: int = 20


# ---------------------------------------------------------------------------------------------
# records


def tag_dict(raw: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t.get("Key", "")): str(t.get("Value", "")) for t in raw or ()}


def tag_list(tags: Tags) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    state: str
    owner_id: str = ""
    owner_alias: str = ""
    creation_date: str = ""
    root_device_type: str = ""
    virtualization_type: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    snapshot_ids: tuple[str, ...] = ()
    state_reason: str = ""

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Image:
        snaps = tuple(
            str(b["Ebs"]["SnapshotId"])
            for b in d.get("BlockDeviceMappings", [])
            if b.get("Ebs") and b["Ebs"].get("SnapshotId")
        )
        return cls(
            id=str(d.get("ImageId", "")),
            name=str(d.get("Name", "")),
            state=str(d.get("State", "")),
            owner_id=str(d.get("OwnerId", "")),
            owner_alias=str(d.get("ImageOwnerAlias", "")),
            creation_date=str(d.get("CreationDate", "")),
            root_device_type=str(d.get("RootDeviceType", "")),
            virtualization_type=str(d.get("VirtualizationType", "")),
            description=str(d.get("Description", "") or ""),
            tags=tag_dict(d.get("Tags")),
            snapshot_ids=snaps,
            state_reason=str((d.get("StateReason") or {}).get("Message", "")),
        )


@dataclass(frozen=True)
class BlockDevice:
    device_name: str
    volume_id: str
    delete_on_termination: bool


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    public_ip: str = ""
    private_ip: str = ""
    public_dns: str = ""
    private_dns: str = ""
    ipv6: str = ""
    vpc_id: str = ""
    block_devices: tuple[BlockDevice, ...] = ()
    state_reason: str = ""

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Instance:
        bdm = tuple(
            BlockDevice(
                str(b.get("DeviceName", "")),
                str(b["Ebs"].get("VolumeId", "")),
                bool(b["Ebs"].get("DeleteOnTermination", False)),
            )
            for b in d.get("BlockDeviceMappings", [])
            if b.get("Ebs")
        )
        ipv6 = ""
        for nic in d.get("NetworkInterfaces", []):
            for addr in nic.get("Ipv6Addresses", []):
                ipv6 = ipv6 or str(addr.get("Ipv6Address", ""))
        return cls(
            id=str(d.get("InstanceId", "")),
            state=str((d.get("State") or {}).get("Name", "")),
            public_ip=str(d.get("PublicIpAddress", "") or ""),
            private_ip=str(d.get("PrivateIpAddress", "") or ""),
            public_dns=str(d.get("PublicDnsName", "") or ""),
            private_dns=str(d.get("PrivateDnsName", "") or ""),
            ipv6=ipv6,
            vpc_id=str(d.get("VpcId", "") or ""),
            block_devices=bdm,
            state_reason=str((d.get("StateReason") or {}).get("Message", "")),
        )


def tag_specs(tags: Tags, *resource_types: str) -> list[dict[str, Any]]:
    if not tags:
        return []
    return [{"ResourceType": rt, "Tags": tag_list(tags)} for rt in resource_types]


# ---------------------------------------------------------------------------------------------
# the gateway


class Ec2Gateway:
    """EC2 and IAM calls for one build. One boto3 Session per build; one client per region."""

    def __init__(self, access: AwsAccess, polling: Polling | None = None) -> None:
        self.access = access
        self.region = access.region
        self.polling = polling or Polling()
        kwargs: dict[str, str] = {}
        if access.profile:
            kwargs["profile_name"] = access.profile
        if access.access_key:
            kwargs["aws_access_key_id"] = access.access_key
            kwargs["aws_secret_access_key"] = access.secret_key
            if access.token:
                kwargs["aws_session_token"] = access.token
        with _translated("session"):
            self._session = boto3.session.Session(region_name=access.region or None, **kwargs)
        retries: dict[str, Any] = {"mode": "standard"}
        if access.max_retries > 0:
            retries["max_attempts"] = access.max_retries
        self._botocfg = botocore.config.Config(
            retries=retries,  # type: ignore[arg-type]
            max_pool_connections=max(10, access.max_pool_connections),
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    # -- clients --------------------------------------------------------------------------

    def _client(self, service: str, region: str | None = None) -> Any:
        region = region or self.region
        key = (service, region)
        with self._lock:  # boto3 sessions are not thread-safe; clients are
            client = self._clients.get(key)
            if client is None:
                endpoint = self.access.endpoint_ec2 if service == "ec2" else self.access.endpoint_iam
                kw: dict[str, Any] = {"region_name": region, "config": self._botocfg}
                if endpoint:
                    kw["endpoint_url"] = endpoint
                if self.access.insecure_skip_tls_verify:
                    kw["verify"] = False
                with _translated("client"):
                    client = self._session.client(service, **kw)
                self._clients[key] = client
            return client

    def _call(self, op: str, region: str | None = None, service: str = "ec2", **params: Any) -> Any:
        client = self._client(service, region)
        with _translated(op):
            return getattr(client, op)(**params)

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
    ) -> str:
        params: dict[str, Any] = {"InstanceId": instance_id, "Name": name}
        if description:
            params["Description"] = description
        if block_devices:
            params["BlockDeviceMappings"] = list(block_devices)
        if tags:
            params["TagSpecifications"] = tag_specs(tags, "image")
        return str(self._call("create_image", **params)["ImageId"])

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
    ) -> str:
        params: dict[str, Any] = {
            "SourceRegion": source_region,
            "SourceImageId": source_image_id,
            "Name": name,
            "CopyImageTags": True,
        }
        if description:
            params["Description"] = description
        if encrypted is not None:
            params["Encrypted"] = encrypted
        if kms_key_id:
            params["KmsKeyId"] = kms_key_id
        return str(self._call("copy_image", region, **params)["ImageId"])

    def deregister_image(self, image_id: str, region: str | None = None) -> None:
        self._call("deregister_image", region, ImageId=image_id)

    def delete_snapshot(self, snapshot_id: str, region: str | None = None) -> None:
        self._call("delete_snapshot", region, SnapshotId=snapshot_id)

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

    def create_tags(self, resource_ids: Sequence[str], tags: Tags, region: str | None = None) -> None:
        if resource_ids and tags:
            self._call("create_tags", region, Resources=list(resource_ids), Tags=tag_list(tags))

    # -- key pairs and security groups ----------------------------------------------------

    def create_key_pair(self, name: str, key_type: str, tags: Tags) -> str:
        params: dict[str, Any] = {"KeyName": name}
        if key_type:
            params["KeyType"] = key_type
        if tags:
            params["TagSpecifications"] = tag_specs(tags, "key-pair")
        return str(self._call("create_key_pair", **params)["KeyMaterial"])

    def delete_key_pair(self, name: str) -> None:
        self._call("delete_key_pair", KeyName=name)

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
        return str(self._call("create_security_group", **params)["GroupId"])

    def authorize_ingress(self, group_id: str, port: int, cidrs: Sequence[str]) -> None:
        v4 = [{"CidrIp": c} for c in cidrs if ":" not in c]
        v6 = [{"CidrIpv6": c} for c in cidrs if ":" in c]
        perm: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
        if v4:
            perm["IpRanges"] = v4
        if v6:
            perm["Ipv6Ranges"] = v6
        self._call("authorize_security_group_ingress", GroupId=group_id, IpPermissions=[perm])

    def delete_security_group(self, group_id: str) -> None:
        self._call("delete_security_group", GroupId=group_id)

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
        resp = self._call("run_instances", **dict(params))
        return Instance.from_api(resp["Instances"][0])

    def describe_instance(self, instance_id: str) -> Instance | None:
        resp = self._call("describe_instances", InstanceIds=[instance_id])
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                return Instance.from_api(inst)
        return None

    def stop_instance(self, instance_id: str) -> str:
        resp = self._call("stop_instances", InstanceIds=[instance_id])
        for s in resp.get("StoppingInstances", []):
            return str(s.get("CurrentState", {}).get("Name", ""))
        return ""

    def terminate_instance(self, instance_id: str) -> str:
        resp = self._call("terminate_instances", InstanceIds=[instance_id])
        for s in resp.get("TerminatingInstances", []):
            return str(s.get("CurrentState", {}).get("Name", ""))
        return ""

    def volumes(self, volume_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(volume id, state) of the given volumes that still exist."""
        resp = self._call("describe_volumes", Filters=[{"Name": "volume-id", "Values": list(volume_ids)}])
        return [(str(v["VolumeId"]), str(v.get("State", ""))) for v in resp.get("Volumes", [])]

    def delete_volume(self, volume_id: str) -> None:
        self._call("delete_volume", VolumeId=volume_id)

    # -- spot (launch template + instant fleet) -------------------------------------------

    def create_launch_template(self, name: str, data: Mapping[str, Any], tags: Tags) -> str:
        params: dict[str, Any] = {"LaunchTemplateName": name, "LaunchTemplateData": dict(data)}
        if tags:
            params["TagSpecifications"] = tag_specs(tags, "launch-template")
        resp = self._call("create_launch_template", **params)
        return str(resp["LaunchTemplate"]["LaunchTemplateId"])

    def delete_launch_template(self, template_id: str) -> None:
        self._call("delete_launch_template", LaunchTemplateId=template_id)

    def create_fleet(self, params: Mapping[str, Any]) -> list[str]:
        resp = self._call("create_fleet", **dict(params))
        ids = [str(i) for inst in resp.get("Instances", []) for i in inst.get("InstanceIds", [])]
        if not ids:
            errors = "; ".join(
                f"{e.get('ErrorCode', '')}: {e.get('ErrorMessage', '')}" for e in resp.get("Errors", [])
            )
            raise BuildError(f"Error waiting for fleet request: {errors or 'no instance was launched'}")
        return ids

    # -- IAM ------------------------------------------------------------------------------

    def instance_profile_exists(self, name: str) -> bool:
        try:
            self._call("get_instance_profile", service="iam", InstanceProfileName=name)
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        return True

    def create_instance_profile(self, name: str, tags: Tags) -> None:
        self._call("create_instance_profile", service="iam", InstanceProfileName=name, Tags=tag_list(tags))

    def delete_instance_profile(self, name: str) -> None:
        self._call("delete_instance_profile", service="iam", InstanceProfileName=name)

    def create_role(self, name: str, trust_policy: str, tags: Tags) -> None:
        self._call(
            "create_role", service="iam", RoleName=name, AssumeRolePolicyDocument=trust_policy,
            Tags=tag_list(tags),
        )

    def delete_role(self, name: str) -> None:
        self._call("delete_role", service="iam", RoleName=name)

    def put_role_policy(self, role: str, policy_name: str, document: str) -> None:
        self._call(
            "put_role_policy", service="iam", RoleName=role, PolicyName=policy_name, PolicyDocument=document
        )

    def delete_role_policy(self, role: str, policy_name: str) -> None:
        self._call("delete_role_policy", service="iam", RoleName=role, PolicyName=policy_name)

    def add_role_to_instance_profile(self, profile: str, role: str) -> None:
        self._call("add_role_to_instance_profile", service="iam", InstanceProfileName=profile, RoleName=role)

    def remove_role_from_instance_profile(self, profile: str, role: str) -> None:
        self._call(
            "remove_role_from_instance_profile", service="iam", InstanceProfileName=profile, RoleName=role
        )

    # -- waits ----------------------------------------------------------------------------

    def wait(
        self,
        what: str,
        probe: Callable[[], tuple[bool, str]],
        *,
        cancel: threading.Event | None = None,
        retry_codes: Sequence[str] = (),
        failed_states: Sequence[str] = (),
    ) -> str:
        """Poll ``probe`` (-> (done, state)) until done; return the last state.

        The first poll happens at once. ``retry_codes`` are AWS error codes that mean "not there yet".
        A state in ``failed_states`` ends the wait with an error.
        """
        deadline = time.monotonic() + self.polling.budget
        delays = self.polling.delays()
        last = "(no answer yet)"
        while True:
            if cancel is not None and cancel.is_set():
                raise BuildCancelled()
            try:
                done, last = probe()
            except AwsError as exc:
                if exc.code not in retry_codes:
                    raise
                last = exc.code
                done = False
            if done:
                return last
            if last in failed_states:
                raise WaitTimeout(f"{what}: reached the failure state {last!r}")
            pause = next(delays)
            if time.monotonic() + pause > deadline:
                raise WaitTimeout(
                    f"gave up waiting for {what} after {self.polling.budget:g}s; last state seen: {last}"
                )
            if cancel is not None:
                if cancel.wait(pause):
                    raise BuildCancelled()
            else:
                time.sleep(pause)

    def wait_instance(
        self, instance_id: str, states: Sequence[str], *, cancel: threading.Event | None = None,
        failed_states: Sequence[str] = (),
    ) -> Instance:
        seen: list[Instance] = []

        def probe() -> tuple[bool, str]:
            inst = self.describe_instance(instance_id)
            if inst is None:
                return False, "(not found)"
            seen.append(inst)
            return inst.state in states, inst.state

        self.wait(
            f"instance {instance_id} to be {' or '.join(states)}", probe, cancel=cancel,
            retry_codes=("InvalidInstanceID.NotFound",), failed_states=failed_states,
        )
        return seen[-1]

    def wait_image_available(
        self, image_id: str, region: str | None = None, *, cancel: threading.Event | None = None
    ) -> Image:
        seen: list[Image] = []

        def probe() -> tuple[bool, str]:
            images = self.describe_images(image_ids=[image_id], region=region)
            if not images:
                return False, "(not found)"
            seen.append(images[0])
            state = images[0].state
            if state == "failed":
                reason = images[0].state_reason
                raise WaitTimeout(f"AMI {image_id} failed" + (f": {reason}" if reason else ""))
            return state == "available", state

        self.wait(
            f"AMI {image_id} to become available" + (f" in {region}" if region else ""), probe,
            cancel=cancel, retry_codes=("InvalidAMIID.NotFound",),
        )
        return seen[-1]
