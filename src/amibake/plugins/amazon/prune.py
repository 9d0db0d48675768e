"""``amibake prune``: find the account's AMIs a selection chooses, keep what is in use, protected,
shared or recent, deregister the rest and delete their snapshots no other image uses.

The AWS side of it: reading each region (images, instances, every launch template version, launch
configurations, SSM parameters, launch and volume permissions), acting, and journaling. What to
remove is decided by :mod:`amibake.plugins.amazon.prune_plan` from the data read here.

Every call goes through the session layer (:data:`~amibake.aws.session.CLIENTS`, retried by
:class:`~amibake.aws.retry.RetryPolicy`, errors as :class:`~amibake.aws.errors.AwsError`). A region
whose use cannot be read completely is not pruned (its images might be in use).

Journal: ``<state dir>/prune/runs/<id>.jsonl`` (the format of :mod:`amibake.journal`, apart from the
build journals that ``amibake cleanup`` reads). Before each deregistration an ``intent`` names the
image and the snapshots that are to follow it; each removal appends ``removed``; a run that ends with
nothing failed appends ``finished``. A later prune reads the unfinished journals: the snapshots of an
image that is gone and whose deletion was not recorded are deleted then (when still no image uses
them and they are not shared), so an interrupted prune loses nothing by being rerun.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amibake.aws.access import AwsAccess
from amibake.aws.errors import AwsError
from amibake.errors import BuildError
from amibake.journal import Journal, state_dir
from amibake.plugins.amazon.ec2_base import GatewayBase
from amibake.plugins.amazon.prune_plan import (
    Image,
    ImageDecision,
    Plan,
    Rules,
    SnapshotDecision,
    Usage,
    plan,
    selects,
)

#: what deregister/delete answer when the image or snapshot is already gone
IMAGE_GONE = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})
SNAPSHOT_GONE = frozenset({"InvalidSnapshot.NotFound"})
#: instance states whose image is in use
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
#: regions read at once
WORKERS = 8


@dataclass(frozen=True)
class Request:
    """The command line of one prune."""

    names: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    #: the build names of ``--template`` (None: not given)
    builds: tuple[str, ...] | None = None
    regions: tuple[str, ...] = ()
    keep: int | None = None
    older_than: float | None = None
    include_shared: bool = False
    ssm_paths: tuple[str, ...] = ()
    yes: bool = False


@dataclass
class Outcome:
    removed_images: list[str] = field(default_factory=list)
    deleted_snapshots: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class PruneGateway(GatewayBase):
    """The session layer's clients for prune, counting its API calls."""

    def __init__(self, access: AwsAccess) -> None:
        super().__init__(access)
        self.calls = 0
        self._count = threading.Lock()

    def call(self, op: str, region: str, service: str = "ec2", **params: Any) -> Any:
        with self._count:
            self.calls += 1
        return self._call(op, region, service, **params)

    def pages(self, op: str, region: str, service: str = "ec2", **params: Any) -> Iterator[dict[str, Any]]:
        while True:
            page = self.call(op, region, service, **params)
            yield page
            token = page.get("NextToken")
            if not token:
                return
            params["NextToken"] = token


def _image(raw: dict[str, Any], region: str) -> Image:
    created = datetime(1970, 1, 1)
    text = str(raw.get("CreationDate") or "")
    if text:
        try:
            created = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
        except ValueError:
            pass
    return Image(
        id=raw["ImageId"], region=region, name=str(raw.get("Name") or ""), created=created,
        tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags") or []},
        snapshots=tuple(m["Ebs"]["SnapshotId"] for m in raw.get("BlockDeviceMappings") or []
                        if m.get("Ebs", {}).get("SnapshotId")),
        state=str(raw.get("State") or "available"), public=bool(raw.get("Public")),
        protected=str(raw.get("DeregistrationProtection") or "disabled").startswith("enabled"),
    )


@dataclass
class RegionScan:
    region: str
    images: list[Image] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    #: why the region is not pruned ("" when it was read completely)
    error: str = ""


class Pruner:
    def __init__(self, gateway: PruneGateway, request: Request, say: Callable[[str], None],
                 directory: Path | None = None) -> None:
        self.gw = gateway
        self.req = request
        self.say = say
        self.directory = (directory or state_dir()) / "prune"
        self.now = datetime.now(UTC).replace(tzinfo=None)

    # -- reading -----------------------------------------------------------------------

    def regions(self) -> list[str]:
        if self.req.regions:
            return list(dict.fromkeys(self.req.regions))
        page = self.gw.call("describe_regions", self.gw.region)
        return sorted(r["RegionName"] for r in page.get("Regions", []))

    def scan(self, region: str) -> RegionScan:
        """The account's images of ``region``; when the selection chooses any, what uses them."""
        out = RegionScan(region)
        try:
            for page in self.gw.pages("describe_images", region, Owners=["self"]):
                out.images.extend(_image(raw, region) for raw in page.get("Images", []))
            out.selected = [i.id for i in out.images
                            if selects(i, self.req.names, dict(self.req.tags), self.req.builds)]
            if out.selected:
                self._usage(region, out.usage)
        except AwsError as exc:
            out.error = str(exc)
        return out

    def _usage(self, region: str, usage: Usage) -> None:
        for page in self.gw.pages("describe_instances", region,
                                  Filters=[{"Name": "instance-state-name", "Values": LIVE_STATES}]):
            for res in page.get("Reservations", []):
                for inst in res.get("Instances", []):
                    if inst.get("ImageId"):
                        usage.use(inst["ImageId"],
                                  f"instance {inst['InstanceId']} ({inst.get('State', {}).get('Name', '?')})")
        for page in self.gw.pages("describe_launch_templates", region):
            for lt in page.get("LaunchTemplates", []):
                name = lt.get("LaunchTemplateName", "")
                for vpage in self.gw.pages("describe_launch_template_versions", region,
                                           LaunchTemplateId=lt["LaunchTemplateId"]):
                    for v in vpage.get("LaunchTemplateVersions", []):
                        image = str(v.get("LaunchTemplateData", {}).get("ImageId") or "")
                        if image.startswith("resolve:ssm:"):
                            image = self._ssm_value(region, image[len("resolve:ssm:"):])
                        if image:
                            default = ", default" if v.get("DefaultVersion") else ""
                            usage.use(image, f"launch template {name} ({lt['LaunchTemplateId']}) "
                                             f"version {v.get('VersionNumber')}{default}")
        for page in self.gw.pages("describe_launch_configurations", region, "autoscaling"):
            for lc in page.get("LaunchConfigurations", []):
                if lc.get("ImageId"):
                    usage.use(lc["ImageId"], f"launch configuration {lc.get('LaunchConfigurationName', '')}")
        for path in self.req.ssm_paths:
            for page in self.gw.pages("get_parameters_by_path", region, "ssm", Path=path, Recursive=True):
                for p in page.get("Parameters", []):
                    for value in str(p.get("Value", "")).split(","):
                        if value.strip().startswith("ami-"):
                            usage.use(value.strip(), f"SSM parameter {p['Name']} ({region})")

    def _ssm_value(self, region: str, name: str) -> str:
        """The AMI a launch template's ``resolve:ssm:NAME`` names ("" when the parameter is gone; any
        other failure makes the region unreadable: an AMI in use must not look unused)."""
        try:
            return str(self.gw.call("get_parameter", region, "ssm", Name=name)["Parameter"]["Value"])
        except AwsError as exc:
            if exc.code == "ParameterNotFound":
                return ""
            raise

    def _shares(self, image: Image) -> Image:
        got = self.gw.call("describe_image_attribute", image.region, ImageId=image.id,
                           Attribute="launchPermission")
        who = _permissions(got.get("LaunchPermissions", []))
        return replace(image, public=image.public or "all" in who,
                       shared_with=tuple(w for w in who if w != "all"))

    def _snapshot_shares(self, where: tuple[str, str]) -> list[str]:
        """Why the snapshot (region, id) is shared: "public", "shared with ..." (none: [])."""
        region, snapshot = where
        try:
            got = self.gw.call("describe_snapshot_attribute", region, SnapshotId=snapshot,
                               Attribute="createVolumePermission")
        except AwsError as exc:
            if exc.code in SNAPSHOT_GONE:
                return []
            raise
        who = _permissions(got.get("CreateVolumePermissions", []))
        accounts = [w for w in who if w != "all"]
        shared = [f"shared with {', '.join(accounts)}"] if accounts else []
        return (["public"] if "all" in who else []) + shared

    def decide(self, scans: Sequence[RegionScan], pending: dict[str, dict[str, str]]) -> Plan:
        """The plan over the regions read completely; launch and volume permissions are read only for
        what would otherwise be removed (never with --include-shared)."""
        images = [i for s in scans if not s.error for i in s.images]
        selected = [i for s in scans if not s.error for i in s.selected]
        usage = Usage()
        for s in scans:
            if not s.error:
                for k, v in s.usage.images.items():
                    for r in v:
                        usage.use(k, r)
        rules = Rules(keep=self.req.keep, older_than=self.req.older_than,
                      include_shared=self.req.include_shared, now=self.now)
        result = plan(images, selected, usage, rules)
        if not self.req.include_shared:
            # read (in parallel) only for what would otherwise be removed: sharing only keeps more
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                checked = {i.id: i for i in pool.map(self._shares, [d.image for d in result.removed_images])}
                images = [checked.get(i.id, i) for i in images]
                result = plan(images, selected, usage, rules)
                places = list(dict.fromkeys([(d.region, d.id) for d in result.snapshots]
                                            + [(r, snap) for r, snaps in pending.items() for snap in snaps]))
                for (_, snap), reasons in zip(places, pool.map(self._snapshot_shares, places), strict=True):
                    for reason in reasons:
                        usage.share(snap, reason)
            result = plan(images, selected, usage, rules)
        # snapshots an interrupted prune left: delete those no image uses
        users: dict[tuple[str, str], list[str]] = {}
        removing = {d.image.id for d in result.removed_images}
        for img in images:
            if img.id not in removing:
                for snap in img.snapshots:
                    users.setdefault((img.region, snap), []).append(img.id)
        done = {(s.region, s.id) for s in result.snapshots}
        for region, snaps in pending.items():
            for snap, image_id in snaps.items():
                if (region, snap) in done:
                    continue
                using = users.get((region, snap), [])
                reasons = [f"used by {', '.join(sorted(using))}"] if using else []
                if not self.req.include_shared:
                    reasons += [f"{r} (--include-shared to delete)" for r in usage.snapshots.get(snap, ())]
                result.snapshots.append(SnapshotDecision(
                    snap, region, image_id, not reasons,
                    tuple(reasons) or ("left by an interrupted prune; no image uses it",)))
        return result

    # -- the journals of earlier prunes -----------------------------------------------

    def unfinished(self) -> list[Path]:
        runs = self.directory / "runs"
        out = []
        for path in sorted(runs.glob("*.jsonl")) if runs.is_dir() else []:
            if not any(e.get("ev") == "finished" for e in _entries(path)):
                out.append(path)
        return out

    def pending(self, journals: Sequence[Path], existing: set[str]) -> dict[str, dict[str, str]]:
        """region -> snapshot -> its image, for each image an unfinished prune meant to remove that is
        gone now, of its snapshots whose deletion that prune did not record."""
        out: dict[str, dict[str, str]] = {}
        for path in journals:
            planned: dict[tuple[str, str], list[str]] = {}
            deleted: set[tuple[str, str]] = set()
            for e in _entries(path):
                if e.get("ev") == "intent" and e.get("kind") == "image":
                    planned[(e.get("region", ""), e.get("id", ""))] = list(e.get("snapshots", []))
                elif e.get("ev") == "removed" and e.get("kind") == "snapshot":
                    deleted.add((e.get("region", ""), e.get("id", "")))
            for (region, image_id), snaps in planned.items():
                if image_id in existing:
                    continue  # planned again from what is there now
                for snap in snaps:
                    if (region, snap) not in deleted:
                        out.setdefault(region, {})[snap] = image_id
        return out

    # -- acting -------------------------------------------------------------------------

    def act(self, result: Plan, on_line: Callable[[str, str, str, str, str], None]) -> Outcome:
        """Deregister the images to remove, then delete the snapshots to delete (each phase in
        parallel; a snapshot of an image that could not be deregistered is left); ``on_line(kind,
        region, id, what, detail)`` is told of each (what: removed, gone, failed). A journal that
        cannot be written stops the removals (nothing is removed without its intent on disk)."""
        out = Outcome()
        run_id = time.strftime("prune-%Y%m%dT%H%M%SZ-", time.gmtime()) + secrets.token_hex(3)
        journal = Journal(run_id, self.directory)
        stop = threading.Event()

        def write(event: str, **data: Any) -> bool:
            try:
                journal.write(event, **data)
                return True
            except OSError as exc:
                if not stop.is_set():
                    stop.set()
                    out.failed.append(f"{exc.strerror or exc}; the prune stopped there")
                return False

        def remove(kind: str, region: str, rid: str, op: str, gone: frozenset[str], **params: Any) -> bool:
            note = params.pop("note", {})
            if stop.is_set() or not write("intent", kind=kind, region=region, id=rid, **note):
                return False
            doing = "Deregistering AMI" if kind == "image" else "Deleting snapshot"
            self.say(f"{doing} {rid} ({region})...")
            try:
                self.gw.call(op, region, **params)
                (out.removed_images if kind == "image" else out.deleted_snapshots).append(rid)
                on_line(kind, region, rid, "removed", "")
            except AwsError as exc:
                if exc.code not in gone:
                    out.failed.append(f"{'AMI' if kind == 'image' else 'snapshot'} {rid} ({region}): {exc}")
                    on_line(kind, region, rid, "failed", str(exc))
                    return False
                out.gone.append(rid)
                on_line(kind, region, rid, "gone", str(exc))
            write("removed", kind=kind, region=region, id=rid)
            return True

        def deregister(d: ImageDecision) -> bool:
            snaps = [s.id for s in result.snapshots_of(d.image.id) if s.remove]
            return remove("image", d.image.region, d.image.id, "deregister_image", IMAGE_GONE,
                          ImageId=d.image.id, note={"snapshots": snaps})

        def delete(s: SnapshotDecision) -> bool:
            return remove("snapshot", s.region, s.id, "delete_snapshot", SNAPSHOT_GONE, SnapshotId=s.id,
                          note={"image": s.image_id})

        try:
            if not write("started", regions=sorted({d.image.region for d in result.images})):
                raise BuildError(f"{out.failed[0]}: nothing was removed")
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                try:
                    images = result.removed_images
                    done = pool.map(deregister, images)
                    left = {d.image.id for d, ok in zip(images, done, strict=True) if not ok}
                    snaps = [s for s in result.deleted_snapshots if s.image_id not in left]
                    list(pool.map(delete, snaps))
                except BaseException:
                    stop.set()  # Ctrl-C: the queued removals do not start; the journal stays unfinished
                    raise
            if not out.failed:
                write("finished")
        finally:
            journal.close()
        return out

    def settle(self, journals: Sequence[Path]) -> None:
        """Mark the earlier prunes' journals finished (this run has done what they left)."""
        for path in journals:
            j = Journal(path.stem, self.directory)
            try:
                j.write("finished", resumed=True)
            finally:
                j.close()


def _permissions(perms: Sequence[dict[str, Any]]) -> list[str]:
    who: list[str] = []
    for p in perms:
        if p.get("Group") == "all":
            who.append("all")
        for key in ("UserId", "OrganizationArn", "OrganizationalUnitArn"):
            if p.get(key):
                who.append(str(p[key]))
    return who


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn line
        if isinstance(entry, dict):
            yield entry


def scan_all(pruner: Pruner, regions: Sequence[str]) -> list[RegionScan]:
    """Each region read (in parallel)."""
    with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(regions)))) as pool:
        return list(pool.map(pruner.scan, regions))


def prune(console: Any, **options: Any) -> int:
    """``amibake prune`` (its options as :class:`Request`'s fields): read, decide, show, and (with
    ``yes``) act; the exit status."""
    request = Request(**options)
    ui = console.build_ui("prune")
    home = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or (request.regions[0] if request.regions else "us-east-1"))
    gw = PruneGateway(AwsAccess(region=home))
    pruner = Pruner(gw, request, ui.say)
    try:
        regions = pruner.regions()
    except AwsError as exc:
        ui.error(f"Cannot list the regions: {exc}")
        return 1
    ui.say(f"Searching {len(regions)} region(s) for the selected AMIs...")
    scans = scan_all(pruner, regions)
    failed = False
    for s in scans:
        if s.error:
            failed = True
            ui.error(f"{s.region}: not pruned, cannot read it: {s.error}")
            console.machine_line("prune", "region-error", s.region, s.error)
    journals = pruner.unfinished()
    existing = {i.id for s in scans for i in s.images}
    pending = pruner.pending(journals, existing)
    readable = {s.region for s in scans if not s.error}
    pending = {r: v for r, v in pending.items() if r in readable}
    try:
        result = pruner.decide(scans, pending)
    except AwsError as exc:
        ui.error(f"Cannot read the launch or volume permissions: {exc}")
        return 1
    searched = [s.region for s in scans if s.selected]
    if not result.images and not result.snapshots:
        ui.say("No AMI matches the selection" + (f" in {', '.join(regions)}." if request.regions else "."))
        console.machine_line("prune", "summary", "nothing", "0", "0", str(gw.calls))
        return 1 if failed else 0
    ui.say(f"{len(result.images)} AMI(s) selected in {', '.join(searched) or 'no region'}: "
           f"{len(result.removed_images)} to remove, {len(result.images) - len(result.removed_images)} kept")
    _show(console, ui, result)
    if not request.yes:
        ui.say(f"Dry run: nothing was removed. {len(result.removed_images)} AMI(s) and "
               f"{len(result.deleted_snapshots)} snapshot(s) would be removed; "
               "run again with --yes to remove them.")
        console.machine_line("prune", "summary", "dry-run", str(len(result.removed_images)),
                             str(len(result.deleted_snapshots)), str(gw.calls))
        return 1 if failed else 0

    def line(kind: str, region: str, rid: str, what: str, detail: str) -> None:
        console.machine_line("prune", what, kind, region, rid, detail)
        if what == "failed":
            ui.error(f"Could not remove {kind} {rid} ({region}): {detail}")
        elif what == "gone":
            ui.message(f"{kind} {rid} ({region}) was already gone")

    out = pruner.act(result, line)
    if not out.failed and not failed:
        pruner.settle(journals)
    ui.say(f"Removed {len(out.removed_images)} AMI(s) and {len(out.deleted_snapshots)} snapshot(s); "
           f"{len(out.gone)} already gone, {len(out.failed)} failed.")
    console.machine_line("prune", "summary", "removed", str(len(out.removed_images)),
                         str(len(out.deleted_snapshots)), str(gw.calls))
    return 1 if (out.failed or failed) else 0


def _show(console: Any, ui: Any, result: Any) -> None:
    rows = [("Region", "AMI", "Name", "Build", "Created", "Action", "Reason")]
    for d in sorted(result.images, key=lambda d: (d.image.region, d.image.build, d.image.order_key()),
                    reverse=False):
        img = d.image
        created = img.created.strftime("%Y-%m-%dT%H:%M:%SZ")
        console.machine_line("prune", "image", img.region, img.id, img.name, img.build, created, d.action,
                             "; ".join(d.reasons))
        rows.append((img.region, img.id, img.name, img.build, created, d.action, "; ".join(d.reasons)))
    snaps = [("Region", "Snapshot", "AMI", "Action", "Reason")]
    for s in result.snapshots:
        console.machine_line("prune", "snapshot", s.region, s.id, s.image_id, s.action, "; ".join(s.reasons))
        snaps.append((s.region, s.id, s.image_id, s.action, "; ".join(s.reasons)))
    if console.machine:
        return
    console.say(_table(rows))
    if len(snaps) > 1:
        console.say("\nSnapshots of the AMIs to remove:")
        console.say(_table(snaps))


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1])) + "  " + r[-1] for r in rows)


__all__ = ["ImageDecision", "Outcome", "PruneGateway", "Pruner", "RegionScan", "Request", "prune", "scan_all"]
