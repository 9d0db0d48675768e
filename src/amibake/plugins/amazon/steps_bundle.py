"""amazon-instance's own steps (packer-plugin-amazon ``builder/instance``): upload the X509 credentials,
bundle the volume and upload the bundle over the communicator, register the instance-store AMI.

The shared steps (network, key pair, launch, connect, provision, region copy, attributes) are
amazon-ebs's: they read the build's options through :class:`InstanceLaunch`, the amazon-instance config
seen with the options amazon-ebs has and amazon-instance has not switched off.

The bundle's S3 objects are made by the instance (``bundle_upload_command``), not by amibake: their
names are read from the manifest the bundle command wrote, and journaled before the upload runs, so
that a failed or killed build leaves none of them behind (``amibake cleanup`` deletes them). Once the
AMI is delivered, the objects back it: they are handed over (no longer the run's to clean up).
"""

from __future__ import annotations

import dataclasses
import io
import secrets
import string
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amibake.aws.session import CLIENTS
from amibake.errors import BuildError
from amibake.journal import now_iso
from amibake.plugins.amazon import steps_ami
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.ec2 import AwsError
from amibake.plugins.amazon.ec2_base import GatewayBase
from amibake.plugins.amazon.ec2_import import s3_object_id
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.records import Tags, tag_list
from amibake.plugins.amazon.state import BuildState
from amibake.plugins.amazon.steps_instance import source_ami_info as _ebs_source_ami_info
from amibake.steps.context import StepContext

#: what Packer's Prepare sets bundle_upload_command to, with and without an instance profile
UPLOAD_WITH_PROFILE = ("sudo -i -n ec2-upload-bundle -b {{.BucketName}} -m {{.ManifestPath}} "
                       "-d {{.BundleDirectory}} --batch --region {{.Region}} --retry")
UPLOAD_WITH_KEYS = ("sudo -i -n ec2-upload-bundle -b {{.BucketName}} -m {{.ManifestPath}} -a {{.AccessKey}} "
                    "-s {{.SecretKey}} -d {{.BundleDirectory}} --batch --region {{.Region}} --retry")
#: Packer's default bundle_vol_command
BUNDLE_VOL = ("sudo -i -n ec2-bundle-vol -k {{.KeyPath}} -u {{.AccountId}} -c {{.CertPath}} "
              "-r {{.Architecture}} -e {{.PrivatePath}}/* -d {{.Destination}} -p {{.Prefix}} "
              "--batch --no-filter")

_NOT_YET_AMI = ("InvalidAMIID.NotFound",)


class InstanceLaunch:
    """An :class:`InstanceConfig` as amazon-ebs's steps read it: the amazon-ebs options amazon-instance
    has not (no run volume tags, no ephemeral switch, an AMI always made) are off."""

    skip_create_ami = False
    skip_ami_run_tags = False
    no_ephemeral = False
    all_run_volume_tags: Mapping[str, str] = {}

    def __init__(self, config: InstanceConfig) -> None:
        self._config = config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


@dataclass
class InstanceState(BuildState):
    """The build state of amazon-instance: amazon-ebs's, plus the bundle's whereabouts."""

    #: the amazon-instance options (``config`` is their :class:`InstanceLaunch` view)
    instance_config: InstanceConfig | None = None
    x509_cert: str = ""
    x509_key: str = ""
    #: Packer's ``manifest_name`` / ``manifest_path`` (on the instance) / ``remote_manifest_path``
    manifest_name: str = ""
    manifest_path: str = ""
    image_location: str = ""
    #: the journal ids (``bucket/key``) of the bundle's S3 objects
    bundle_objects: list[str] = field(default_factory=list)

    @property
    def ic(self) -> InstanceConfig:
        assert self.instance_config is not None
        return self.instance_config

    @property
    def gw(self) -> BundleCalls:
        return self.ec2  # type: ignore[return-value]


class BundleCalls(GatewayBase):
    """The calls of amazon-instance's own steps: the bundle's objects in the journal, RegisterImage."""

    def expect_objects(self, object_ids: list[str], region: str | None = None) -> None:
        """Journal the S3 objects the instance is about to upload (their intent: ``amibake cleanup``
        deletes each, whether it was uploaded or not)."""
        for oid in object_ids:
            self._intent("s3-object", region, name=oid)

    def objects_uploaded(self, object_ids: list[str], region: str | None = None) -> None:
        for oid in object_ids:
            self._created("s3-object", region, oid, name=oid)

    def hand_over_objects(self, object_ids: list[str], region: str | None = None) -> None:
        """The objects back a delivered AMI: no longer this run's to clean up (journaled as removed
        from the run's resources; they stay in S3)."""
        for oid in object_ids:
            self._removed("s3-object", region, oid)

    def delete_bundle_object(self, object_id: str, region: str | None = None) -> None:
        bucket, _, key = object_id.partition("/")
        self._call("delete_object", region, service="s3", Bucket=bucket, Key=key)
        self._removed("s3-object", region, object_id)

    def instance_architecture(self, instance_id: str) -> str:
        """The instance's Architecture (DescribeInstances), which Packer's bundle command data names."""
        resp = self._call("describe_instances", None, InstanceIds=[instance_id])
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                return str(inst.get("Architecture", "") or "")
        return ""

    def register_bundle(self, params: Mapping[str, Any], *, tags: Tags | None = None) -> str:
        """RegisterImage of a bundle (no client token: the intent names the image, which ``amibake
        cleanup`` looks up by name), then the image tagged."""
        name = str(params.get("Name", ""))
        self._intent("image", None, name=name, location=str(params.get("ImageLocation", "")))
        image_id = str(self._call("register_image", None, **dict(params))["ImageId"])
        self._created("image", None, image_id, name=name)
        self._pause("after-register-image")
        if tags:
            self._call("create_tags", None, Resources=[image_id], Tags=tag_list(tags),
                       retry_codes=_NOT_YET_AMI)
        return image_id


def source_ami_info(st: BuildState, ctx: StepContext) -> None:
    """StepSourceAMIInfo, as amazon-ebs; Packer's amazon-instance launches a source AMI of any root
    device type (its StepRunSourceInstance expects none), so the type is not held against the launch."""
    _ebs_source_ami_info(st, ctx)
    if st.source_image is not None and st.source_image.root_device_type != "ebs":
        st.source_image = dataclasses.replace(st.source_image, root_device_type="")


def _run_remote(st: InstanceState, ctx: StepContext, command: str) -> int:
    """packersdk.RemoteCmd.RunWithUi: stdout as messages, stderr as errors."""
    from amibake.provisioners.shell.provisioner import clean_output_line

    ui = st.ui
    return int(st.comm.run(command, stdout=lambda line: ui.message(clean_output_line(line)),
                           stderr=lambda line: ui.error(clean_output_line(line))))


def upload_x509_cert(st: InstanceState, ctx: StepContext) -> None:
    """StepUploadX509Cert: the certificate and key to ``x509_upload_path``/cert.pem and key.pem."""
    c = st.ic
    cert, key = c.x509_upload_path + "/cert.pem", c.x509_upload_path + "/key.pem"
    st.ui.say("Uploading X509 Certificate...")
    for dst, src, mode in ((cert, c.x509_cert_path, 0o644), (key, c.x509_key_path, 0o600)):
        try:
            with open(src, "rb") as f:
                st.comm.upload(dst, f, mode=mode)
        except Exception as exc:
            raise BuildError(f"Error uploading X509 cert: {exc}") from exc
    st.x509_cert, st.x509_key = cert, key


def bundle_volume(st: InstanceState, ctx: StepContext) -> None:
    """StepBundleVolume: ``bundle_vol_command`` with Packer's bundleCmdData, over the communicator."""
    c = st.ic
    inst = st.instance
    assert inst is not None
    # the default, ``image-{{timestamp}}``, is rendered as Packer's Prepare renders it (the run's clock)
    prefix = _render(st, c.bundle_prefix, {}, "bundle prefix") if "{{" in c.bundle_prefix else c.bundle_prefix
    data = {
        "AccountId": c.account_id.replace("-", ""),
        "Architecture": st.gw.instance_architecture(inst.id),
        "CertPath": st.x509_cert,
        "Destination": c.bundle_destination or "/tmp",
        "KeyPath": st.x509_key,
        "Prefix": prefix,
        "PrivatePath": c.x509_upload_path or "/tmp",
    }
    command = _render(st, c.bundle_vol_command or BUNDLE_VOL, data, "bundle volume")
    st.ui.say("Bundling the volume...")
    if st.env.debug:
        st.ui.say(f"Running: {command}")
    try:
        code = _run_remote(st, ctx, command)
    except Exception as exc:
        raise BuildError(f"Error bundling volume: {exc}") from exc
    if code != 0:
        raise BuildError("Volume bundling failed. Please see the output above for more\n"
                         "details on what went wrong.\n\n"
                         "One common cause for this error is ec2-bundle-vol not being\n"
                         "available on the target instance.")
    st.manifest_name = prefix + ".manifest.xml"
    st.manifest_path = f"{data['Destination']}/{st.manifest_name}"


def _render(st: InstanceState, text: str, data: Mapping[str, Any], what: str) -> str:
    try:
        return st.env.render(text, data)
    except Exception as exc:
        raise BuildError(f"Error processing {what} command: {exc}") from exc


def bundle_keys(manifest_xml: bytes, manifest_name: str) -> list[str]:
    """The file names a bundle's upload puts into the bucket: the manifest, then each part it lists
    (``<image><parts><part><filename>``, the AMI tools' manifest format)."""
    try:
        root = ET.fromstring(manifest_xml)
    except ET.ParseError as exc:
        raise BuildError(f"the bundle manifest {manifest_name} is not XML: {exc}") from exc
    parts = [str(p.text).strip() for p in root.iterfind("./image/parts/part/filename") if p.text]
    return [manifest_name, *parts]


def _access_keys(st: InstanceState) -> tuple[str, str, str]:
    """Packer's uploadCmdData keys: the template's, else (both unset) the session's, with its token."""
    c = st.ic
    if c.access_key or c.secret_key:
        return c.access_key, c.secret_key, ""
    try:
        creds = CLIENTS.credentials(c.aws_access(), st.region).get_frozen_credentials()
    except Exception:  # Packer leaves them empty when the session has none
        return "", "", ""
    return creds.access_key or "", creds.secret_key or "", creds.token or ""


def upload_bundle(st: InstanceState, ctx: StepContext) -> None:
    """StepUploadBundle: ``bundle_upload_command`` with Packer's uploadCmdData. The objects it puts
    into ``s3_bucket`` (named by the manifest) are journaled first and removed if the build fails."""
    c = st.ic
    access_key, secret_key, token = _access_keys(st)
    for secret in (secret_key, token):
        if secret and secret not in st.env.secrets:
            st.env.secrets.append(secret)
    default = UPLOAD_WITH_PROFILE if c.iam_instance_profile else UPLOAD_WITH_KEYS
    data = {
        "AccessKey": access_key,
        "BucketName": c.s3_bucket,
        "BundleDirectory": c.bundle_destination or "/tmp",
        "ManifestPath": st.manifest_path,
        "Region": st.region,
        "SecretKey": secret_key,
        "Token": token,
    }
    command = _render(st, c.bundle_upload_command or default, data, "bundle upload")
    buf = io.BytesIO()
    try:
        st.comm.download(st.manifest_path, buf)
    except Exception as exc:
        raise BuildError(f"Error reading the bundle manifest {st.manifest_path}: {exc}") from exc
    bucket, _, folder = c.s3_bucket.partition("/")
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    keys = bundle_keys(buf.getvalue(), st.manifest_name)
    st.bundle_objects = [s3_object_id(bucket, prefix + k) for k in keys]
    region = st.region
    st.gw.expect_objects(st.bundle_objects, region)
    ctx.on_failure(f"the bundle's {len(st.bundle_objects)} S3 object(s) in {bucket}",
                   lambda: _delete_objects(st, region))
    st.ui.say("Uploading the bundle...")
    if st.env.debug:
        st.ui.say(f"Running: {command}")
    try:
        code = _run_remote(st, ctx, command)
    except Exception as exc:
        raise BuildError(f"Error uploading volume: {exc}") from exc
    if code != 0:
        if code == 3:
            st.ui.error(f"Please check that the bucket `{c.s3_bucket}` does not exist, or exists and is "
                        "writable. This error indicates that the bucket may be owned by somebody else.")
        raise BuildError("Bundle upload failed. Please see the output above for more\n"
                         "details on what went wrong.")
    st.gw.objects_uploaded(st.bundle_objects, region)
    st.image_location = f"{c.s3_bucket}/{st.manifest_name}"


def _delete_objects(st: InstanceState, region: str) -> None:
    failed = []
    for oid in st.bundle_objects:
        try:
            st.gw.delete_bundle_object(oid, region)
        except AwsError as exc:
            failed.append(f"{oid}: {exc}")
    if failed:
        raise BuildError("could not delete " + "; ".join(failed))


def register_ami(st: InstanceState, ctx: StepContext) -> None:
    """StepRegisterAMI: RegisterImage from the uploaded manifest, with the AMI options; wait."""
    c = st.ic
    ui = st.ui
    ui.say("Registering the AMI...")
    intermediary = bool(c.encrypt_boot) or bool(c.skip_save_build_region)
    name = c.ami_name
    if intermediary:
        name = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(7))
    params: dict[str, Any] = {"ImageLocation": st.image_location, "Name": name}
    devices = [b.to_api() for b in c.ami_block_device_mappings]
    if devices:
        params["BlockDeviceMappings"] = devices
    if c.ami_virtualization_type:
        params["VirtualizationType"] = c.ami_virtualization_type
    if c.sriov_support:
        params["SriovNetSupport"] = "simple"
    if c.ena_support is True:
        params["EnaSupport"] = True
    if c.tpm_support:
        params["TpmSupport"] = c.tpm_support
    # the description travels in RegisterImage (Packer sets it in StepModifyAMIAttributes)
    description = st.render(c.ami_description)
    if description and not intermediary:
        params["Description"] = description
    tags = {**st.own_tags(), **st.render_tags(c.all_tags), **st.fingerprint_tags()}
    try:
        image_id = st.gw.register_bundle(params, tags=tags)
    except AwsError as exc:
        raise BuildError(f"Error registering AMI: {exc}") from exc
    region = st.region
    if intermediary:
        st.intermediary_ami = image_id
        ctx.defer(f"intermediary AMI {image_id} (region {region})",
                  lambda: steps_ami._delete_intermediary(st, region, image_id))
    else:
        ctx.on_failure(f"AMI {image_id} (region {region})",
                       lambda: steps_ami._rollback_image(st, region, image_id))
        st.amis[region] = image_id
    ui.say(f"AMI: {image_id}")
    ui.say("Waiting for AMI to become ready...")
    try:
        image = st.ec2.wait_image_available(image_id, cancel=ctx.cancel, progress=ui.progress)
    except BuildError as exc:
        raise BuildError(f"Error waiting for AMI: {exc}") from exc
    st.ec2.note_snapshots(image_id, image.snapshot_ids, region)
    st.snapshots[region] = list(image.snapshot_ids)
    if image.snapshot_ids and not intermediary:
        st.ec2.create_tags(list(image.snapshot_ids), {**tags, **st.render_tags(c.all_snapshot_tags)},
                           region=region)


def mark_finished(st: InstanceState, ctx: StepContext) -> None:
    """The AMIs marked delivered in AWS (``amibake:finished``), then the bundle handed over to them."""
    stamp = {FINISHED_TAG: now_iso()}
    for region, ami in sorted(st.amis.items()):
        st.ec2.create_tags([ami, *st.snapshots.get(region, [])], stamp, region)
    st.gw.hand_over_objects(st.bundle_objects, st.region)
