"""amazon-ebs steps from a connected instance to the finished AMIs (connect, provision, stop, image)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from amibake import api
from amibake.errors import BuildError
from amibake.plugins.amazon.ec2 import AwsError, Image
from amibake.plugins.amazon.state import BuildState
from amibake.plugins.amazon.steps_instance import ssh_host
from amibake.steps.context import BuildCancelled, StepContext

#: (settings, cancel, ui) -> communicator; the default imports amibake.communicator.ssh lazily
Connector = Callable[[BuildState, StepContext], Any]


def ssh_connector(st: BuildState, ctx: StepContext) -> Any:
    from amibake.communicator import ssh

    settings = st.config.ssh_settings(st.host, port=st.ssm_port or None, private_key_pem=st.private_key_pem)
    return ssh.connect(settings, cancel=ctx.cancel, log=st.ui.message)


def make_connect_step(connector: Connector) -> Callable[[BuildState, StepContext], None]:
    def connect(st: BuildState, ctx: StepContext) -> None:
        """communicator.StepConnect: SSH to the instance (nothing for communicator "none")."""
        s = st.config
        if s.communicator == "none":
            from amibake.communicator.none import NoneCommunicator

            st.comm = NoneCommunicator()
            return
        if s.ssh_interface == "session_manager":
            # Packer's StepCreateSSMTunnel, then SSH to localhost on the session's port (ssh_host still wins)
            from amibake.plugins.amazon.ssm.step import open_tunnel

            st.ssm_port = open_tunnel(st, ctx)
            st.host = s.ssh_host or "localhost"
        else:
            st.host = ssh_host(st)
        if s.pause_before_connecting > 0:
            pause = _go_duration(s.pause_before_connecting)
            st.ui.say(f"Waiting {pause} before establishing the SSH connection...")
            if ctx.cancel.wait(s.pause_before_connecting):
                raise BuildCancelled("cancelled while pausing before connecting")
        if s.communicator != "ssh":
            connect_registered(st, ctx)
            return
        st.ui.say(f"Using SSH communicator to connect: {st.host}")
        st.ui.say("Waiting for SSH to become available...")
        comm = connector(st, ctx)
        st.comm = comm
        close = getattr(comm, "close", None)
        if callable(close):
            ctx.defer(f"SSH connection to {st.host}", close)
        st.ui.say("Connected to SSH!")

    return connect


def connect_registered(st: BuildState, ctx: StepContext) -> None:
    """A communicator other than SSH (``winrm``), chosen through the plugin registry: its
    implementation connects (and says Packer's messages) from the options, the instance's address
    (``winrm_host`` wins, as the SDK's ``Host()``) and the password StepGetPassword retrieved."""
    s = st.config
    st.host = getattr(s, f"{s.communicator}_host", "") or st.host
    comm = api.open_communicator(s, st.host, password=st.password, ui=st.ui, cancel=ctx.cancel)
    st.comm = comm
    ctx.defer(f"{s.communicator} connection to {st.host}", comm.close)


def provision(st: BuildState, ctx: StepContext) -> None:
    """StepProvision: the template's provisioners; the error-cleanup-provisioner when they fail."""
    api.provision(st.hooks, st.comm, st.build_data(), st.env, st.ui)


def stop_instance(st: BuildState, ctx: StepContext) -> None:
    """StepStopEBSBackedInstance (skipped for spot instances)."""
    s = st.config
    inst = st.instance
    assert inst is not None
    if s.is_spot_instance():
        return
    ui = st.ui
    state = ""
    if not s.disable_stop_instance:
        ui.say("Stopping the source instance...")
        ui.message("Stopping instance")
        try:
            state = st.ec2.stop_instance(inst.id)
        except AwsError as exc:
            raise BuildError(f"Error stopping instance: {exc}") from exc
    else:
        ui.say("Automatic instance stop disabled. Please stop instance manually.")
    ui.say("Waiting for the instance to stop...")
    if state == "stopped":
        return
    try:
        st.ec2.wait_instance(inst.id, ["stopped"], cancel=ctx.cancel, failed_states=["terminated"])
    except BuildError as exc:
        raise BuildError(f"Error waiting for instance to stop: {exc}") from exc


def _regions(st: BuildState) -> list[str]:
    out = [st.region]
    for r in st.config.ami_regions:
        if r not in out:
            out.append(r)
    return out


def deregister_ami(st: BuildState, ctx: StepContext) -> None:
    """StepDeregisterAMI: with force_deregister, remove AMIs of the same name in every region."""
    s = st.config
    if not s.force_deregister:
        return
    name = s.ami_name
    for region in _regions(st):
        for img in st.ec2.images_named(name, region=region):
            st.ec2.deregister_image(img.id, region=region)
            st.ui.say(f"Deregistered AMI {name}, id: {img.id}")
            if s.force_delete_snapshot:
                for snap in img.snapshot_ids:
                    st.ec2.delete_snapshot(snap, region=region)
                    st.ui.say(f"Deleted snapshot: {snap}")


def _rollback_image(st: BuildState, region: str, image_id: str) -> None:
    """Deregister the AMI and delete every snapshot of it: each removal is tried, whatever happened
    to the one before (a failed removal is reported once all were tried)."""
    ui = st.ui
    ui.say("Deregistering the AMI and deleting associated snapshots because of cancellation, or error...")
    failed: list[str] = []
    images = st.ec2.describe_images(image_ids=[image_id], region=region)
    for img in images:
        try:
            st.ec2.deregister_image(img.id, region=region)
            ui.say(f"Deregistered AMI id: {img.id}")
        except AwsError as exc:
            failed.append(f"AMI {img.id}: {exc}")
        for snap in img.snapshot_ids:
            try:
                st.ec2.delete_snapshot(snap, region=region)
                ui.say(f"Deleted snapshot: {snap}")
            except AwsError as exc:
                failed.append(f"snapshot {snap}: {exc}")
    if failed:
        raise BuildError("could not remove " + "; ".join(failed))


def register_features(s: Any) -> dict[str, Any]:
    """The RegisterImage fields of an AMI's features that ebssurrogate and chroot set alike:
    SR-IOV, ENA, boot mode, UEFI data and NitroTPM (each only when the template sets it)."""
    params: dict[str, Any] = {}
    if s.sriov_support:
        params["SriovNetSupport"] = "simple"
    if s.ena_support:
        params["EnaSupport"] = True
    if s.boot_mode:
        params["BootMode"] = s.boot_mode
    if s.uefi_data:
        params["UefiData"] = s.uefi_data
    if s.tpm_support:
        params["TpmSupport"] = s.tpm_support
    return params


def create_ami(st: BuildState, ctx: StepContext) -> None:
    """stepCreateAMI: CreateImage with its tags and description; wait; note its snapshots."""
    s = st.config
    ui = st.ui
    inst = st.instance
    assert inst is not None
    if s.skip_create_ami:
        ui.say("Skipping AMI creation...")
        return
    name = s.ami_name
    # an encrypted copy, or a copy elsewhere that replaces the build region's AMI, starts from an
    # intermediary AMI under a temporary name, deleted at the end
    intermediary = bool(s.encrypt_boot) or (s.skip_save_build_region and bool(s.copy_regions(st.region)))
    if intermediary:
        name = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(7))
    ui.say(f"Creating AMI {name} from instance {inst.id}")
    if s.skip_ami_run_tags:
        ui.say("Skipping attaching run tags to AMI...")
        run_tags: dict[str, str] = {}
    else:
        run_tags = st.render_tags(s.all_run_tags)
    # CreateImage carries the run tags and the AMI tags at once (Packer: run tags at creation, then
    # CreateTags with the AMI tags, which win on a clash)
    tags = {**st.own_tags(), **run_tags, **st.render_tags(s.all_tags), **st.fingerprint_tags()}
    description = st.render(s.ami_description)
    try:
        image_id = st.ec2.create_image(
            inst.id, name, description=description,
            block_devices=[b.to_api() for b in s.ami_block_device_mappings],
            tags=tags,
            # the snapshots carry the build's tags from their creation on (a build stopped before
            # the AMI is available leaves no untagged snapshot); tagged again once it is, as Packer
            snapshot_tags=tags if intermediary else _snapshot_tags(st, tags),
        )
    except AwsError as exc:
        raise BuildError(f"Error creating AMI: {exc}") from exc
    region = st.region
    if intermediary:
        st.intermediary_ami = image_id
        ctx.defer(f"intermediary AMI {image_id} and its snapshots (region {region})",
                  lambda: _delete_intermediary(st, region, image_id))
    else:
        ctx.on_failure(f"AMI {image_id} and its snapshots (region {region})",
                       lambda: _rollback_image(st, region, image_id))
        st.amis[region] = image_id
    ui.message(f"AMI: {image_id}")
    ui.say("Waiting for AMI to become ready...")
    try:
        image = st.ec2.wait_image_available(image_id, cancel=ctx.cancel, progress=ui.progress)
    except BuildError as exc:
        raise BuildError(f"Error waiting for AMI: {exc}") from exc
    st.snapshots[region] = list(image.snapshot_ids)
    st.ec2.note_snapshots(image_id, image.snapshot_ids, region)
    if not intermediary:
        ui.say(f"Adding tags to AMI ({image_id})...")
        # snapshots cannot be tagged in CreateImage on every EC2 implementation: tag them now, once
        _tag_snapshots(st, region, image, tags)


def _snapshot_tags(st: BuildState, ami_tags: dict[str, str]) -> dict[str, str]:
    """An artifact's snapshots: the AMI's tags, then snapshot_tags."""
    merged = dict(ami_tags)
    merged.update(st.render_tags(st.config.all_snapshot_tags))
    return merged


def _tag_snapshots(st: BuildState, region: str, image: Image, ami_tags: dict[str, str]) -> None:
    if not image.snapshot_ids:
        return
    merged = _snapshot_tags(st, ami_tags)
    for snap in image.snapshot_ids:
        st.ui.say(f"Tagging snapshot: {snap}")
    st.ec2.create_tags(list(image.snapshot_ids), merged, region=region)


def _delete_intermediary(st: BuildState, region: str, image_id: str) -> None:
    st.ui.say("Deregistering the AMI and deleting unencrypted temporary AMIs and snapshots")
    for img in st.ec2.describe_images(image_ids=[image_id], region=region):
        st.ec2.destroy_image(img, region=region)


def region_copy(st: BuildState, ctx: StepContext) -> None:
    """StepAMIRegionCopy: copy (and encrypt) the AMI to ami_regions, in parallel threads."""
    s = st.config
    if s.skip_create_ami:
        st.ui.say("Skipping AMI region copy...")
        return
    source_region = st.region
    source_ami = st.intermediary_ami or st.amis.get(source_region, "")
    targets = s.copy_regions(source_region)
    if st.intermediary_ami and not s.skip_save_build_region:
        targets = [source_region, *targets]
    if not targets:
        return
    keys = dict(s.region_kms_key_ids)
    if s.encrypt_boot and s.kms_key_id:
        keys.setdefault(source_region, s.kms_key_id)
    st.ui.say(f"Copying/Encrypting AMI ({source_ami}) to other regions...")
    for r in targets:
        st.ui.message(f"Copying to: {r}")
    st.ui.message("Waiting for all copies to complete...")
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        futures = {
            r: pool.submit(
                _copy_one, st, ctx, source_region, source_ami, r, keys.get(r, "") if s.encrypt_boot else ""
            )
            for r in targets
        }
        for r, fut in futures.items():
            try:
                fut.result()
            except Exception as exc:
                errors.append(f"Error Copying AMI ({source_ami}) to region ({r}): {exc}")
    if errors:
        raise BuildError("\n".join(errors))


def _copy_one(st: BuildState, ctx: StepContext, source_region: str, source_ami: str, region: str,
              kms_key: str) -> None:
    s = st.config
    tags = {**st.tags_for(s.all_tags), **st.fingerprint_tags()}
    image_id = st.ec2.copy_image(
        region, source_region=source_region, source_image_id=source_ami, name=s.ami_name,
        description=st.render(s.ami_description), encrypted=s.encrypt_boot, kms_key_id=kms_key,
        tags=tags, snapshot_tags=_snapshot_tags(st, tags),
        copy_duration_minutes=s.snapshot_copy_duration_minutes or 0,
    )
    ctx.on_failure(f"AMI {image_id} and its snapshots (region {region})",
                   lambda: _rollback_image(st, region, image_id))
    with ctx._lock:
        st.amis[region] = image_id
    image = st.ec2.wait_image_available(image_id, region, cancel=ctx.cancel, progress=st.ui.progress)
    st.ec2.note_snapshots(image_id, image.snapshot_ids, region)
    with ctx._lock:
        st.snapshots[region] = list(image.snapshot_ids)
    st.ui.say(f"Adding tags to AMI ({image_id})...")
    st.ec2.create_tags([image_id], tags, region=region)
    _tag_snapshots(st, region, image, tags)
    if st.attributes_per_copy:
        # shared as soon as this copy is available, not after the slowest copy
        modify_region_attributes(st, region, image_id)


def enable_deprecation(st: BuildState, ctx: StepContext) -> None:
    """StepEnableDeprecation."""
    s = st.config
    if s.skip_create_ami or not s.deprecate_at:
        return
    when = datetime.fromisoformat(s.deprecate_at.replace("Z", "+00:00"))
    for region, ami in st.amis.items():
        st.ui.say(f'Enabling deprecation on AMI ({ami}) in region "{region}" ...')
        try:
            st.ec2.enable_image_deprecation(ami, when, region=region)
        except AwsError as exc:
            raise BuildError(f"Error enable AMI deprecation: {exc}") from exc


def modify_attributes(st: BuildState, ctx: StepContext) -> None:
    """StepModifyAMIAttributes: launch permissions, product codes, IMDS, snapshot permissions.

    The description travels in CreateImage / CopyImage, so it needs no call here. A region whose
    copy already had them set as it became available (``_copy_one``) is not modified again.
    """
    if st.config.skip_create_ami:
        return
    for region, ami in list(st.amis.items()):
        if region not in st.attributes_set:
            modify_region_attributes(st, region, ami)


def modify_region_attributes(st: BuildState, region: str, ami: str) -> None:
    """Packer's StepModifyAMIAttributes for one region's AMI (and its snapshots)."""
    s = st.config
    options: dict[str, dict[str, Any]] = {}
    perms = (
        [{"UserId": u} for u in s.ami_users] + [{"Group": g} for g in s.ami_groups]
        + [{"OrganizationArn": a} for a in s.ami_org_arns]
        + [{"OrganizationalUnitArn": a} for a in s.ami_ou_arns]
    )
    if perms:
        options["launch permissions"] = {"LaunchPermission": {"Add": perms}}
    if s.ami_product_codes:
        options["product codes"] = {"ProductCodes": list(s.ami_product_codes)}
    if s.imds_support:
        options["imds_support"] = {"ImdsSupport": {"Value": s.imds_support}}
    snap_perms = [{"UserId": u} for u in s.snapshot_users] + [{"Group": g} for g in s.snapshot_groups]
    try:
        if options:
            st.ui.say(f"Modifying attributes on AMI ({ami})...")
        for name, params in options.items():
            st.ui.message(f"Modifying: {name}")
            st.ec2.modify_image_attribute(ami, region=region, **params)
        for snap in st.snapshots.get(region, []) if snap_perms else []:
            st.ui.say(f"Modifying attributes on snapshot ({snap})...")
            st.ec2.modify_snapshot_attribute(
                snap, region=region, Attribute="createVolumePermission", OperationType="add",
                CreateVolumePermission={"Add": snap_perms},
            )
    except AwsError as exc:
        raise BuildError(f"Error modify AMI attributes: {exc}") from exc
    st.attributes_set.add(region)


def cleanup_temp_keys(st: BuildState, ctx: StepContext) -> None:
    """commonsteps.StepCleanupTempKeys: with ssh_clear_authorized_keys, remove the temporary public
    key from the user's (and root's) authorized_keys before the image is taken."""
    s = st.config
    if not s.ssh_clear_authorized_keys or s.communicator != "ssh" or not st.public_key:
        return
    ui = st.ui
    ui.say("Trying to remove ephemeral keys from authorized_keys files")
    # the key's base64 body names the line to delete, whatever its comment
    body = st.public_key.split()[1] if len(st.public_key.split()) > 1 else st.public_key
    body = body.replace("/", "\\/")
    for command in (f"sed -i.bak '/{body}/d' ~/.ssh/authorized_keys; rm -f ~/.ssh/authorized_keys.bak",
                    f"sudo sed -i.bak '/{body}/d' /root/.ssh/authorized_keys; "
                    "sudo rm -f /root/.ssh/authorized_keys.bak"):
        try:
            code = st.comm.run(command)
        except Exception as exc:
            ui.say(f"Error cleaning up temporary keys: {exc}")
            continue
        if code != 0 and "/root/" not in command:
            ui.say(f"Error cleaning up ~/.ssh/authorized_keys; please clean up keys manually (exit {code})")


def modify_instance(st: BuildState, ctx: StepContext) -> None:
    """StepModifyEBSBackedInstance: ENA and SR-IOV support on the stopped instance, which the AMI
    then inherits."""
    s = st.config
    inst = st.instance
    assert inst is not None
    if s.sriov_support:
        st.ui.say("Enabling Enhanced Networking (SR-IOV)...")
        try:
            st.ec2.modify_instance_attribute(inst.id, SriovNetSupport={"Value": "simple"})
        except AwsError as exc:
            raise BuildError(f"Error enabling Enhanced Networking (SR-IOV) on {inst.id}: {exc}") from exc
    if s.ena_support is not None:
        prefix = "En" if s.ena_support else "Dis"
        st.ui.say(f"{prefix}abling Enhanced Networking (ENA)...")
        try:
            st.ec2.modify_instance_attribute(inst.id, EnaSupport={"Value": bool(s.ena_support)})
        except AwsError as exc:
            raise BuildError(
                f"Error {prefix.lower()}abling Enhanced Networking (ENA) on {inst.id}: {exc}") from exc


def enable_deregistration_protection(st: BuildState, ctx: StepContext) -> None:
    """StepEnableDeregistrationProtection."""
    s = st.config
    protection = s.deregistration_protection
    if s.skip_create_ami or not (protection.enabled or protection.with_cooldown):
        return
    for region, ami in st.amis.items():
        st.ui.say(f'Enabling deregistration protection on AMI ({ami}) in region "{region}" ...')
        try:
            st.ec2.enable_image_deregistration_protection(ami, protection.with_cooldown, region=region)
        except AwsError as exc:
            raise BuildError(f"Error enabling AMI deregistration protection: {exc}") from exc


def _go_duration(seconds: float) -> str:
    """Go's time.Duration String(): ``1m30s``, ``5s``, ``1.5s``, ``2h0m0s``."""
    from amibake.config.durations import format_duration

    return format_duration(seconds)
