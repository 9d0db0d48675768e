"""amazon-ebs steps up to a provisioned, stopped source instance.

Each function is one of Packer's steps (the Go name in its docstring); messages are Packer's.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import string
import uuid
from pathlib import Path
from typing import Any

from amibake.errors import BuildError, UserInputError
from amibake.plugins.amazon.ec2 import AwsError, Image, tag_specs
from amibake.plugins.amazon.ec2api import Ec2Api
from amibake.plugins.amazon.state import DEFAULT_INSTANCE_NAME, BuildState
from amibake.steps.context import StepContext


def temp_name(prefix: str = "packer") -> str:
    return f"{prefix}_{uuid.uuid4()}"


def pre_validate(st: BuildState, ctx: StepContext) -> None:
    """StepPreValidate: the AMI name must be free (unless force_deregister)."""
    s = st.config
    ui = st.ui
    if not s.skip_region_validation:
        known = st.ec2.known_regions()
        for region in (s.region, *s.ami_regions):
            if known and region not in known:
                raise BuildError(f"Invalid region: {region} (set skip_region_validation for a region "
                                 "this AWS SDK does not know)")
    if s.force_deregister:
        ui.say("Force Deregister flag found, skipping prevalidating AMI Name")
        return
    if s.skip_create_ami:
        ui.say("skip_create_ami was set; not prevalidating AMI name")
        return
    if s.skip_save_build_region:
        ui.say("skip_build_region was set; not prevalidating AMI name")
        return
    if s.vpc_id and not s.subnet_id and s.subnet_filter.empty():
        ui.say("Prevalidating any provided VPC information")
        vpcs = st.ec2.vpcs(ids=[s.vpc_id])
        if vpcs and not vpcs[0].get("IsDefault", False):
            raise BuildError(
                f"Error: subnet_id or subnet_filter must be provided for non-default VPCs ({s.vpc_id})"
            )
    ui.say(f"Prevalidating AMI Name: {s.ami_name}")
    found = st.ec2.images_named(s.ami_name)
    if found:
        raise BuildError(f"Error: AMI Name: '{found[0].name}' is used by an existing AMI: {found[0].id}")


def _most_recent(images: list[Image]) -> Image:
    return sorted(images, key=lambda i: i.creation_date)[-1]


def query_source_images(ec2: Ec2Api, source_ami: str, flt: Any) -> tuple[list[Image], dict[str, Any]]:
    """The images ``source_ami`` and ``source_ami_filter`` name (DescribeImages), with the query."""
    params: dict[str, Any] = {}
    if source_ami:
        params["image_ids"] = [source_ami]
    if not flt.empty():
        params["filters"] = _filters(flt.filters)
        params["owners"] = list(flt.owners)
        if flt.include_deprecated:
            params["include_deprecated"] = True
    try:
        return ec2.describe_images(**params), params
    except AwsError as exc:
        raise BuildError(f"Error querying AMI: {exc}") from exc


def find_source_image(ec2: Ec2Api, source_ami: str, flt: Any, ui: Any) -> Image:
    """StepSourceAMIInfo's query (Packer's common step, which amazon-chroot runs too): the one image
    ``source_ami`` and ``source_ami_filter`` name, or the newest with ``most_recent``."""
    images, params = query_source_images(ec2, source_ami, flt)
    if not images:
        raise BuildError("No AMI was found matching filters: " + json.dumps(params, sort_keys=True))
    if len(images) > 1 and not flt.most_recent:
        raise BuildError(
            "Your query returned more than one result. Please try a more specific search, "
            "or set most_recent to true."
        )
    image = _most_recent(images)
    ui.message(f"Found Image ID: {image.id}")
    return image


def source_ami_info(st: BuildState, ctx: StepContext) -> None:
    """StepSourceAMIInfo: find the source AMI by id or by source_ami_filter."""
    s = st.config
    image = find_source_image(st.ec2, s.source_ami, s.source_ami_filter, st.ui)
    virt = s.ami_virtualization_type or image.virtualization_type
    if (s.ena_support or s.sriov_support) and virt != "hvm":
        # Packer's canEnableEnhancedNetworking
        if s.ami_virtualization_type:
            raise BuildError("Cannot enable enhanced networking, AMIVirtType "
                             f"'{s.ami_virtualization_type}' is not HVM")
        raise BuildError(f"Cannot enable enhanced networking, source AMI '{image.id}' is not HVM")
    if s.ami_virtualization_type and s.ami_virtualization_type != image.virtualization_type:
        # Packer's amazon-ebs reads the option only for the check above: CreateImage has no
        # virtualization type, the image gets the source's. Building an image of another type than
        # the template says, without a word, is refused here, before anything is created.
        raise BuildError(
            f"ami_virtualization_type is '{s.ami_virtualization_type}' but the source AMI {image.id} "
            f"is '{image.virtualization_type or 'unknown'}': an amazon-ebs image has its source AMI's "
            "virtualization type (CreateImage cannot change it); choose a source AMI of that type or "
            "remove ami_virtualization_type"
        )
    st.source_image = image


def network_info(st: BuildState, ctx: StepContext) -> None:
    """StepNetworkInfo: vpc / subnet / availability zone, by id or by vpc_filter / subnet_filter."""
    s = st.config
    ui = st.ui
    st.vpc_id, st.subnet_id, st.availability_zone = s.vpc_id, s.subnet_id, s.availability_zone
    if not st.vpc_id and not s.vpc_filter.empty():
        filters = {**_filters(s.vpc_filter.all_filters()), "state": ["available"]}
        vpcs = st.ec2.vpcs(filters=filters)
        if len(vpcs) != 1:
            raise BuildError(
                f"Exactly one VPC should match the filter, but {len(vpcs)} VPC's was found matching "
                f"filters: {json.dumps(filters, sort_keys=True)}"
            )
        st.vpc_id = str(vpcs[0]["VpcId"])
        ui.message(f"Found VPC ID: {st.vpc_id}")
    if not st.subnet_id and not s.subnet_filter.empty():
        flt = s.subnet_filter
        filters = {**_filters(flt.all_filters()), "state": ["available"]}
        if st.vpc_id:
            filters["vpc-id"] = [st.vpc_id]
        if st.availability_zone:
            filters["availabilityZone"] = [st.availability_zone]
        subnets = st.ec2.subnets(filters=filters)
        if not subnets:
            raise BuildError(f"No Subnets was found matching filters: {json.dumps(filters, sort_keys=True)}")
        if len(subnets) > 1 and not (flt.most_free or flt.random):
            raise BuildError(
                f"Your filter matched {len(subnets)} Subnets. Please try a more specific search, "
                "or set random or most_free to true."
            )
        if flt.most_free:
            subnet = max(subnets, key=lambda sn: int(sn.get("AvailableIpAddressCount", 0)))
        elif flt.random:
            subnet = random.choice(subnets)
        else:
            subnet = subnets[0]
        st.subnet_id = str(subnet["SubnetId"])
        ui.message(f"Found Subnet ID: {st.subnet_id}")
        st.vpc_id = st.vpc_id or str(subnet.get("VpcId", ""))
        st.availability_zone = st.availability_zone or str(subnet.get("AvailabilityZone", ""))
    if st.subnet_id and not st.vpc_id and not s.all_security_group_ids:
        # a temporary security group (or a security_group_filter) lives in the subnet's VPC
        subnets = st.ec2.subnets(ids=[st.subnet_id])
        if subnets:
            st.vpc_id = st.vpc_id or str(subnets[0].get("VpcId", ""))
            st.availability_zone = st.availability_zone or str(subnets[0].get("AvailabilityZone", ""))


def key_pair(st: BuildState, ctx: StepContext) -> None:
    """StepKeyPair: use the given key, or create a temporary key pair (tagged at creation)."""
    s = st.config
    ui = st.ui
    if s.communicator == "none":
        return
    if s.ssh_private_key_file:
        ui.say("Using existing SSH private key")
        try:
            st.private_key_pem = Path(s.ssh_private_key_file).expanduser().read_text()
        except OSError as exc:
            problem = f"ssh_private_key_file: cannot read {s.ssh_private_key_file}: {exc}"
            raise UserInputError([problem]) from exc
        st.key_pair_name = s.ssh_keypair_name
        return
    if s.ssh_agent_auth:
        if s.ssh_keypair_name:
            ui.say(f"Using SSH Agent for existing key pair {s.ssh_keypair_name}")
        else:
            ui.say("Using SSH Agent with key pair in Source AMI")
        st.key_pair_name = s.ssh_keypair_name
        return
    if s.ssh_password and not s.temporary_key_pair_name:
        ui.say("Not using temporary keypair")
        return
    name = s.temporary_key_pair_name or temp_name()
    ui.say(f"Creating temporary keypair: {name}")
    tags = st.tags_for(s.all_run_tags)
    if s.temporary_key_pair_bits and s.temporary_key_pair_type == "rsa":
        # EC2's CreateKeyPair makes 2048-bit RSA keys only: a key of the asked size is made here and
        # imported (Packer's amazon plugin ignores temporary_key_pair_bits)
        material, public = _generate_key(s.temporary_key_pair_bits)
        st.ec2.import_key_pair(name, public, tags)
    else:
        material = st.ec2.create_key_pair(name, s.temporary_key_pair_type, tags)
        public = _public_key(material)
    ctx.defer(f"key pair {name} (region {st.region})", lambda: _delete_key_pair(st, name))
    st.key_pair_name = name
    st.private_key_pem = material
    st.env.secrets.append(material)
    st.public_key = public


def _filters(flt: dict[str, str]) -> dict[str, list[str]]:
    """A filter map of the template (``name -> value``) as EC2 Describe* filters."""
    return {k: [v] for k, v in flt.items()}


def _generate_key(bits: int) -> tuple[str, str]:
    """A new RSA key of ``bits`` bits: (private key PEM, OpenSSH public key line)."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-rsa", key_size=bits)
    pem = key.export_private_key("pkcs1-pem").decode()
    return pem, key.export_public_key("openssh").decode().strip()


def _public_key(pem: str) -> str:
    try:
        import asyncssh

        # the key comes from EC2's CreateKeyPair (or the user's file, already used for SSH):
        # skip asyncssh's slow full RSA validation
        key = asyncssh.import_private_key(pem, unsafe_skip_rsa_key_validation=True)
        return str(key.export_public_key("openssh").decode().strip())
    except Exception:
        return ""


def _delete_key_pair(st: BuildState, name: str) -> None:
    st.ui.say("Deleting temporary keypair...")
    try:
        st.ec2.delete_key_pair(name)
    except AwsError as exc:
        st.ui.error(f"Error cleaning up keypair. Please delete the key manually: {name}")
        raise BuildError(str(exc)) from exc


def security_group(st: BuildState, ctx: StepContext) -> None:
    """StepSecurityGroup: use the given groups or create a temporary one open on the SSH port."""
    s = st.config
    ui = st.ui
    if s.all_security_group_ids:
        try:
            st.ec2.security_groups(ids=s.all_security_group_ids)
        except AwsError as exc:
            raise BuildError(f"Couldn't find specified security group: {exc}") from exc
        st.security_group_ids = list(s.all_security_group_ids)
        return
    if not s.security_group_filter.empty():
        filters = _filters(s.security_group_filter.all_filters())
        if st.vpc_id:
            filters["vpc-id"] = [st.vpc_id]
        found = st.ec2.security_groups(filters=filters)
        if not found:
            raise BuildError(
                f"No security groups matching the filter: {json.dumps(filters, sort_keys=True)}"
            )
        ui.message(f"Found Security Group(s): {', '.join(found)}")
        st.security_group_ids = found
        return
    name = temp_name()
    ui.say(f"Creating temporary security group for this instance: {name}")
    group_id = st.ec2.create_security_group(
        name, "Temporary group for Packer", st.vpc_id, st.tags_for(s.all_run_tags)
    )
    ctx.defer(f"security group {group_id} ({name}, region {st.region})", lambda: _delete_sg(st, group_id))
    st.security_group_ids = [group_id]
    if s.communicator == "none" or s.ssh_interface == "session_manager":
        # Packer's SkipSSHRuleCreation: through Session Manager nothing comes in on the SSH port
        return
    cidrs = list(s.source_cidrs)
    ui.say(
        f"Authorizing access to port {_comm_port(s)} from [{' '.join(cidrs)}] "
        "in the temporary security groups..."
    )
    # no DescribeSecurityGroups wait: the ingress call itself is retried while the group is not visible
    st.ec2.wait(
        f"security group {group_id} to accept rules",
        lambda: (_authorize(st, group_id, cidrs), "authorized"),
        cancel=ctx.cancel,
        retry_codes=("InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound"),
    )


def _comm_port(s: Any) -> int:
    """The SDK's ``Config.Port()``: the port the communicator connects to (WinRM's or SSH's)."""
    return int(s.winrm_port) if s.communicator == "winrm" else int(s.ssh_port)


def _authorize(st: BuildState, group_id: str, cidrs: list[str]) -> bool:
    st.ec2.authorize_ingress(group_id, _comm_port(st.config), cidrs)
    return True


def _delete_sg(st: BuildState, group_id: str) -> None:
    st.ui.say("Deleting temporary security group...")
    try:
        st.ec2.wait(
            f"security group {group_id} to be deleted",
            lambda: (_delete_sg_once(st, group_id), "deleted"),
            retry_codes=("DependencyViolation",),
        )
    except BuildError as exc:
        st.ui.error(
            "Error cleaning up security group. Please delete the group manually:"
            f" err: {exc}; security group ID: {group_id}"
        )
        raise


def _delete_sg_once(st: BuildState, group_id: str) -> bool:
    st.ec2.delete_security_group(group_id)
    return True


TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def iam_instance_profile(st: BuildState, ctx: StepContext) -> None:
    """StepIamInstanceProfile: the given profile, or a temporary profile + role + inline policy."""
    s = st.config
    ui = st.ui
    if s.iam_instance_profile:
        if not s.skip_profile_validation:
            # Packer's StepIamInstanceProfile: the named profile must exist (GetInstanceProfile)
            try:
                exists = st.ec2.instance_profile_exists(s.iam_instance_profile)
            except AwsError as exc:
                raise BuildError(f"Couldn't find specified instance profile: {exc}") from exc
            if not exists:
                raise BuildError("Couldn't find specified instance profile: "
                                 f"{s.iam_instance_profile} does not exist")
        st.instance_profile = s.iam_instance_profile
        return
    doc = s.temporary_iam_instance_profile_policy_document
    if doc is None:
        return
    name = f"packer-{uuid.uuid4()}"
    tags = st.tags_for(s.all_run_tags)
    ui.say(f"Creating temporary instance profile for this instance: {name}")
    st.ec2.create_instance_profile(name, tags)
    ctx.defer(f"IAM instance profile {name}", lambda: _iam_undo(st, "Deleting temporary instance profile...",
                                                                  st.ec2.delete_instance_profile, name))
    ui.say(f"Creating temporary role for this instance: {name}")
    st.ec2.create_role(name, TRUST_POLICY, tags)
    ctx.defer(f"IAM role {name}",
              lambda: _iam_undo(st, "Deleting temporary role...", st.ec2.delete_role, name))
    ui.say(f"Attaching policy to the temporary role: {name}")
    st.ec2.put_role_policy(name, name, json.dumps(_policy_document(doc.model_dump())))
    ctx.defer(f"IAM role policy {name}", lambda: _iam_undo(
        st, "Removing policy from temporary role...", lambda n: st.ec2.delete_role_policy(n, n), name))
    st.ec2.add_role_to_instance_profile(name, name)
    ctx.defer(f"IAM role {name} in instance profile {name}", lambda: _iam_undo(
        st, "Detaching temporary role from instance profile...",
        lambda n: st.ec2.remove_role_from_instance_profile(n, n), name))
    st.instance_profile = name


def _policy_document(doc: Any) -> dict[str, Any]:
    """Packer's PolicyDocument (Version, Statement[Effect, Action, Resource]) as IAM JSON."""
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            key = k[:1].upper() + k[1:]
            if isinstance(v, list):
                v = [_policy_document(x) if isinstance(x, dict) else x for x in v]
            out[key] = v
        return out
    return {}


def _iam_undo(st: BuildState, message: str, fn: Any, name: str) -> None:
    st.ui.say(message)
    fn(name)


def cleanup_volumes(st: BuildState, ctx: StepContext) -> None:
    """StepCleanupVolumes: after the instance is gone, delete the volumes it left behind."""
    ctx.defer("volumes the source instance leaves behind", lambda: _cleanup_volumes(st))


def _cleanup_volumes(st: BuildState) -> None:
    ui = st.ui
    inst = st.instance
    if inst is None:
        ui.say("No volumes to clean up, skipping")
        return
    ui.say("Cleaning up any extra volumes...")
    keep = {b.device_name for b in st.config.launch_block_device_mappings}
    # volumes deleted on termination need no look-up (one DescribeVolumes fewer in the common case)
    candidates = {
        b.volume_id: b.device_name for b in inst.block_devices
        if not b.delete_on_termination and b.device_name not in keep
    }
    if not candidates:
        ui.say("No volumes to clean up, skipping")
        return
    existing = st.ec2.volumes(list(candidates))
    left = [vid for vid, state in existing if state == "available"]
    if not left:
        ui.say("No volumes to clean up, skipping")
        return
    for vid in left:
        ui.say(f"Destroying volume ({vid})...")
        try:
            st.ec2.delete_volume(vid)
        except AwsError as exc:
            ui.say(f"Error deleting volume: {exc}")


def _user_data(st: BuildState) -> str:
    s = st.config
    data = s.user_data
    if s.user_data_file:
        try:
            data = Path(s.user_data_file).read_text()
        except OSError as exc:
            raise BuildError(f"Problem reading user data file: {exc}") from exc
    if not data:
        return ""
    try:
        base64.b64decode(data, validate=True)
        return data
    except (binascii.Error, ValueError):
        return base64.b64encode(data.encode()).decode()


def _launch_common(st: BuildState) -> dict[str, Any]:
    """RunInstances / launch-template data both launch paths share (Packer's StepRunSourceInstance
    and StepRunSpotInstance build the same fields)."""
    s = st.config
    img = st.source_image
    assert img is not None
    params: dict[str, Any] = {"ImageId": img.id, "InstanceType": s.instance_type}
    ud = _user_data(st)
    if ud:
        # base64 (Packer encodes text that is not base64 already); RunInstances callers pass the
        # decoded bytes, because botocore encodes RunInstances' UserData itself
        params["UserData"] = ud
    mappings = [b.to_api() for b in s.launch_block_device_mappings]
    if s.no_ephemeral:
        # Windows: hide the ephemeral drives xvdca-xvdcz, as the console does
        mappings += [{"DeviceName": f"xvdc{letter}", "NoDevice": ""} for letter in string.ascii_lowercase]
    if mappings:
        params["BlockDeviceMappings"] = mappings
    if st.instance_profile:
        params["IamInstanceProfile"] = {"Name": st.instance_profile}
    if st.key_pair_name:
        params["KeyName"] = st.key_pair_name
    md = s.metadata_options
    if md.http_endpoint == "enabled":
        opts: dict[str, Any] = {"HttpEndpoint": "enabled"}
        if md.http_tokens:
            opts["HttpTokens"] = md.http_tokens
        if md.http_put_response_hop_limit:
            opts["HttpPutResponseHopLimit"] = int(md.http_put_response_hop_limit)
        if md.instance_metadata_tags == "enabled":
            opts["InstanceMetadataTags"] = "enabled"
        params["MetadataOptions"] = opts
    elif md.http_endpoint == "disabled":
        params["MetadataOptions"] = {"HttpEndpoint": "disabled"}
    if s.enable_unlimited:
        params["CreditSpecification"] = {"CpuCredits": "unlimited"}
    elif BURSTABLE.match(s.instance_type):
        params["CreditSpecification"] = {"CpuCredits": "standard"}
    return params


#: Packer's IsBurstableInstanceType
BURSTABLE = re.compile(r"^t(:?2|3a?|4g)\.")


def _run_tags(st: BuildState) -> dict[str, str]:
    """run_tags (and run_tag blocks), rendered, with Packer's default ``Name: Packer Builder``."""
    tags = st.render_tags(st.config.all_run_tags)
    tags.setdefault("Name", DEFAULT_INSTANCE_NAME)
    return tags


def _launch_tags(st: BuildState) -> list[dict[str, Any]]:
    s = st.config
    user_tags = _run_tags(st)
    run = {**st.own_tags(), **user_tags}
    vol = st.tags_for(s.all_run_volume_tags)
    for k, v in user_tags.items():
        st.ui.message(f'Adding tag: "{k}": "{v}"')
    return tag_specs(run, "instance", "network-interface") + tag_specs(vol, "volume")


def run_source_instance(st: BuildState, ctx: StepContext) -> None:
    """StepRunSourceInstance: launch (tagged in RunInstances), keep its id, wait until running."""
    s = st.config
    ui = st.ui
    img = st.source_image
    assert img is not None
    ui.say("Launching a source AWS instance...")
    if img.root_device_type and img.root_device_type != "ebs":
        raise BuildError(
            "The provided source AMI has an invalid root device type.\n"
            f"Expected 'ebs', got '{img.root_device_type}'."
        )
    params = _launch_common(st)
    params.update(
        MinCount=1, MaxCount=1, EbsOptimized=s.ebs_optimized,
        InstanceInitiatedShutdownBehavior=s.shutdown_behavior or "stop",
        ClientToken=str(uuid.uuid4()),
    )
    if s.enable_nitro_enclave:
        params["EnclaveOptions"] = {"Enabled": True}
    specs = _launch_tags(st)
    if specs:
        params["TagSpecifications"] = specs
    placement: dict[str, Any] = {}
    if st.availability_zone:
        placement["AvailabilityZone"] = st.availability_zone
    if s.placement.host_resource_group_arn:
        placement["HostResourceGroupArn"] = s.placement.host_resource_group_arn
    if s.placement.host_id:
        placement["HostId"] = s.placement.host_id
    if s.effective_tenancy:
        placement["Tenancy"] = s.effective_tenancy
    if placement:
        params["Placement"] = placement
    if s.license_specifications:
        params["LicenseSpecifications"] = [
            {"LicenseConfigurationArn": spec.license_configuration_request.license_configuration_arn}
            for spec in s.license_specifications
        ]
    if s.capacity_reservation_preference or s.capacity_reservation_id or s.capacity_reservation_group_arn:
        reservation: dict[str, Any] = {}
        if s.capacity_reservation_preference:
            reservation["CapacityReservationPreference"] = s.capacity_reservation_preference
        target: dict[str, str] = {}
        if s.capacity_reservation_id:
            target["CapacityReservationId"] = s.capacity_reservation_id
        if s.capacity_reservation_group_arn:
            target["CapacityReservationResourceGroupArn"] = s.capacity_reservation_group_arn
        if target:
            reservation["CapacityReservationTarget"] = target
        params["CapacityReservationSpecification"] = reservation
    if st.subnet_id and s.associate_public_ip_address is not None:
        ui.say(
            f"changing public IP address config to {str(s.associate_public_ip_address).lower()} "
            f"for instance on subnet {st.subnet_id!r}"
        )
        params["NetworkInterfaces"] = [{
            "DeviceIndex": 0, "AssociatePublicIpAddress": s.associate_public_ip_address,
            "SubnetId": st.subnet_id, "Groups": st.security_group_ids, "DeleteOnTermination": True,
        }]
    else:
        if st.subnet_id:
            params["SubnetId"] = st.subnet_id
        if st.security_group_ids:
            params["SecurityGroupIds"] = st.security_group_ids
    if "UserData" in params:
        params["UserData"] = base64.b64decode(params["UserData"])
    try:
        launched = st.ec2.run_instance(params)
    except AwsError as exc:
        if exc.code == "VPCIdNotSpecified" and not st.subnet_id:
            raise BuildError("Error launching source instance: a valid Subnet Id was not specified") from exc
        raise BuildError(f"Error launching source instance: {exc}") from exc
    iid = launched.id
    ctx.defer(f"instance {iid} (region {st.region})", lambda: _terminate(st, iid))
    st.instance = launched
    _wait_running(st, ctx, iid)


def _wait_running(st: BuildState, ctx: StepContext, iid: str) -> None:
    ui = st.ui
    ui.message(f"Instance ID: {iid}")
    ui.say(f"Waiting for instance ({iid}) to become ready...")
    try:
        # the poll that sees "running" also brings the addresses: no second DescribeInstances
        st.instance = st.ec2.wait_instance(
            iid, ["running"], cancel=ctx.cancel, failed_states=["terminated", "shutting-down", "stopped"]
        )
    except BuildError as exc:
        raise BuildError(f"Error waiting for instance ({iid}) to become ready: {exc}") from exc
    if st.env.debug:
        inst = st.instance
        for label, value in (("Public DNS", inst.public_dns), ("Public IP", inst.public_ip),
                             ("Private IP", inst.private_ip)):
            if value:
                ui.message(f"{label}: {value}")


def _terminate(st: BuildState, iid: str) -> None:
    st.ui.say("Terminating the source AWS instance...")
    try:
        state = st.ec2.terminate_instance(iid)
    except AwsError as exc:
        st.ui.error(f"Error terminating instance, may still be around: {exc}")
        raise
    if state != "terminated":
        st.ec2.wait_instance(iid, ["terminated"])


def run_spot_instance(st: BuildState, ctx: StepContext) -> None:
    """StepRunSpotInstance: a launch template + an instant CreateFleet, as the plugin does."""
    s = st.config
    ui = st.ui
    ui.say("Launching a spot AWS instance...")
    data = _launch_common(st)
    data.pop("InstanceType", None)
    if st.security_group_ids and not st.subnet_id:
        data["SecurityGroupIds"] = st.security_group_ids
    if st.subnet_id:
        data["NetworkInterfaces"] = [{
            "DeviceIndex": 0, "SubnetId": st.subnet_id, "Groups": st.security_group_ids,
            "DeleteOnTermination": True,
            **({"AssociatePublicIpAddress": s.associate_public_ip_address}
               if s.associate_public_ip_address is not None else {}),
        }]
    market: dict[str, Any] = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
    if s.spot_price != "auto":
        market["MaxPrice"] = s.spot_price
    data["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": market}
    data["TagSpecifications"] = _launch_tags(st)
    if not data["TagSpecifications"]:
        del data["TagSpecifications"]
    name = temp_name()
    tags = st.tags_for(s.all_spot_tags)
    lt_id = st.ec2.create_launch_template(name, data, tags)
    ctx.defer(f"launch template {lt_id} ({name})", lambda: st.ec2.delete_launch_template(lt_id))
    types = list(s.spot_instance_types) or [s.instance_type]
    overrides = [{"InstanceType": t, **({"SubnetId": st.subnet_id} if st.subnet_id else {}),
                  **({"AvailabilityZone": st.availability_zone} if st.availability_zone else {})}
                 for t in types]
    fleet: dict[str, Any] = {
        "Type": "instant",
        "TargetCapacitySpecification": {"DefaultTargetCapacityType": "spot", "TotalTargetCapacity": 1},
        "LaunchTemplateConfigs": [{
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt_id, "Version": "1"},
            "Overrides": overrides,
        }],
        "ReplaceUnhealthyInstances": False,
        "TagSpecifications": tag_specs(st.tags_for(s.all_fleet_tags), "fleet"),
    }
    if s.spot_allocation_strategy:
        fleet["SpotOptions"] = {"AllocationStrategy": s.spot_allocation_strategy}
    try:
        ids = st.ec2.create_fleet(fleet)
    except AwsError as exc:
        raise BuildError(f"Error waiting for fleet request: {exc}") from exc
    iid = ids[0]
    ctx.defer(f"instance {iid} (region {st.region})", lambda: _terminate(st, iid))
    _wait_running(st, ctx, iid)


def ssh_host(st: BuildState) -> str:
    """Packer's SSHHost: ssh_host, else by ssh_interface, else public IP in a VPC / public DNS."""
    s = st.config
    if s.ssh_host:
        return s.ssh_host
    inst = st.instance
    assert inst is not None
    by_interface = {
        "public_ip": inst.public_ip, "private_ip": inst.private_ip, "public_dns": inst.public_dns,
        "private_dns": inst.private_dns, "ipv6": inst.ipv6,
    }
    if s.ssh_interface:
        host = by_interface.get(s.ssh_interface, "")
    elif inst.vpc_id:
        host = inst.public_ip or inst.private_ip
    else:
        host = inst.public_dns or inst.public_ip or inst.private_ip
    if not host:
        raise BuildError("couldn't determine address for instance")
    return host
