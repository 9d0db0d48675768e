"""amazon-ebs steps from a connected instance to the finished AMIs (connect, provision, stop, image)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from amibake.builders.amazon.ec2 import AwsError, Image
from amibake.builders.amazon.state import BuildState
from amibake.builders.amazon.steps_instance import ssh_host
from amibake.errors import BuildError
from amibake.steps.context import StepContext

#: (settings, cancel, ui) -> communicator; the default imports amibake.communicator.ssh lazily
Connector = Callable[[BuildState, StepContext], Any]


def ssh_connector(st: BuildState, ctx: StepContext) -> Any:
    from amibake.communicator import ssh

    s = st.settings
    b = s.bastion
    bastion = None
    if b.get("host"):
        bastion = ssh.SSHSettings(
            host=str(b["host"]), port=int(b.get("port") or 22), username=str(b.get("username") or ""),
            password=b.get("password") or None, private_key_file=b.get("private_key_file") or None,
            timeout=s.ssh_timeout,
        )
    settings = ssh.SSHSettings(
        host=st.host,
        port=s.ssh_port,
        username=s.ssh_username,
        password=s.ssh_password or None,
        private_key_pem=st.private_key_pem or None,
        private_key_file=None,
        certificate_file=s.ssh_certificate_file or None,
        agent_auth=s.ssh_agent_auth,
        timeout=s.ssh_timeout,
        handshake_attempts=s.ssh_handshake_attempts,
        keepalive_interval=s.ssh_keep_alive_interval,
        file_transfer_method=s.ssh_file_transfer_method,
        pty=s.ssh_pty,
        ciphers=tuple(s.ssh_ciphers),
        kex_algorithms=tuple(s.ssh_key_exchange_algorithms),
        bastion=bastion,
    )
    return ssh.connect(settings, cancel=ctx.cancel, log=st.ui.message)


def make_connect_step(connector: Connector) -> Callable[[BuildState, StepContext], None]:
    def connect(st: BuildState, ctx: StepContext) -> None:
        """communicator.StepConnect: SSH to the instance (nothing for communicator "none")."""
        s = st.settings
        if s.communicator == "none":
            from amibake.communicator.none import NoneCommunicator

            st.comm = NoneCommunicator()
            return
        st.host = ssh_host(st)
        st.ui.say(f"Using SSH communicator to connect: {st.host}")
        st.ui.say("Waiting for SSH to become available...")
        comm = connector(st, ctx)
        st.comm = comm
        close = getattr(comm, "close", None)
        if callable(close):
            ctx.defer(f"SSH connection to {st.host}", close)
        st.ui.say("Connected to SSH!")

    return connect


def provision(st: BuildState, ctx: StepContext) -> None:
    """StepProvision: the template's provisioners; the error-cleanup-provisioner when they fail."""
    data = st.build_data()
    try:
        st.hooks.provision(st.comm, data)
    except Exception:
        if st.env.on_error != "abort":
            try:
                st.hooks.cleanup_provision(st.comm, data)
            except Exception as exc:
                st.ui.error(f"error-cleanup-provisioner failed: {exc}")
        raise


def stop_instance(st: BuildState, ctx: StepContext) -> None:
    """StepStopEBSBackedInstance (skipped for spot instances)."""
    s = st.settings
    inst = st.instance
    assert inst is not None
    if s.is_spot:
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
    for r in st.settings.ami_regions:
        if r not in out:
            out.append(r)
    return out


def deregister_ami(st: BuildState, ctx: StepContext) -> None:
    """StepDeregisterAMI: with force_deregister, remove AMIs of the same name in every region."""
    s = st.settings
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
    ui = st.ui
    ui.say("Deregistering the AMI and deleting associated snapshots because of cancellation, or error...")
    images = st.ec2.describe_images(image_ids=[image_id], region=region)
    for img in images:
        st.ec2.deregister_image(img.id, region=region)
        ui.say(f"Deregistered AMI id: {img.id}")
        for snap in img.snapshot_ids:
            st.ec2.delete_snapshot(snap, region=region)
            ui.say(f"Deleted snapshot: {snap}")


def create_ami(st: BuildState, ctx: StepContext) -> None:
    """stepCreateAMI: CreateImage with its tags and description; wait; note its snapshots."""
    s = st.settings
    ui = st.ui
    inst = st.instance
    assert inst is not None
    if s.skip_create_ami:
        ui.say("Skipping AMI creation...")
        return
    name = s.ami_name
    intermediary = bool(s.encrypt_boot)
    if intermediary:
        name = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(7))
    ui.say(f"Creating AMI {name} from instance {inst.id}")
    tags = st.tags_for(s.tags)
    description = st.render(s.ami_description)
    try:
        image_id = st.ec2.create_image(
            inst.id, name, description=description,
            block_devices=[b.to_api() for b in s.ami_block_device_mappings],
            tags=tags,
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


def _tag_snapshots(st: BuildState, region: str, image: Image, ami_tags: dict[str, str]) -> None:
    if not image.snapshot_ids:
        return
    merged = dict(ami_tags)
    merged.update(st.render_tags(st.settings.snapshot_tags))
    for snap in image.snapshot_ids:
        st.ui.say(f"Tagging snapshot: {snap}")
    st.ec2.create_tags(list(image.snapshot_ids), merged, region=region)


def _delete_intermediary(st: BuildState, region: str, image_id: str) -> None:
    st.ui.say("Deregistering the AMI and deleting unencrypted temporary AMIs and snapshots")
    for img in st.ec2.describe_images(image_ids=[image_id], region=region):
        st.ec2.destroy_image(img, region=region)


def region_copy(st: BuildState, ctx: StepContext) -> None:
    """StepAMIRegionCopy: copy (and encrypt) the AMI to ami_regions, in parallel threads."""
    s = st.settings
    if s.skip_create_ami:
        st.ui.say("Skipping AMI region copy...")
        return
    source_region = st.region
    source_ami = st.intermediary_ami or st.amis.get(source_region, "")
    targets = [r for r in s.ami_regions if r != source_region]
    if st.intermediary_ami:
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
    s = st.settings
    tags = st.tags_for(s.tags)
    image_id = st.ec2.copy_image(
        region, source_region=source_region, source_image_id=source_ami, name=s.ami_name,
        description=st.render(s.ami_description), encrypted=s.encrypt_boot, kms_key_id=kms_key,
        tags=tags,
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


def enable_deprecation(st: BuildState, ctx: StepContext) -> None:
    """StepEnableDeprecation."""
    s = st.settings
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

    The description travels in CreateImage / CopyImage, so it needs no call here.
    """
    s = st.settings
    if s.skip_create_ami:
        return
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
        for region, ami in st.amis.items():
            if options:
                st.ui.say(f"Modifying attributes on AMI ({ami})...")
            for name, params in options.items():
                st.ui.message(f"Modifying: {name}")
                st.ec2.modify_image_attribute(ami, region=region, **params)
        if snap_perms:
            for region, snaps in st.snapshots.items():
                if region not in st.amis:
                    continue
                for snap in snaps:
                    st.ui.say(f"Modifying attributes on snapshot ({snap})...")
                    st.ec2.modify_snapshot_attribute(
                        snap, region=region, Attribute="createVolumePermission", OperationType="add",
                        CreateVolumePermission={"Add": snap_perms},
                    )
    except AwsError as exc:
        raise BuildError(f"Error modify AMI attributes: {exc}") from exc
