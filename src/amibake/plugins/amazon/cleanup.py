"""Find and remove what interrupted or crashed runs left in AWS (``amibake cleanup``).

Two sources, merged:

* the run journals (:mod:`amibake.journal`): resources created and not removed, and create calls
  that were in flight when the process died (looked up by name or client token). Each run is
  reached the way its journal says it reached AWS (endpoint, profile, role ARN per region);
* tags, region by region, through the default access and through each run's: every resource
  amibake creates carries ``amibake:run-id``, ``amibake:build`` and ``amibake:created``.

The safety rules, checked for each resource at the moment it would be removed (not once, at listing):

* a run whose journal here is held by a live amibake is in progress: left alone;
* a run with no journal here (another machine, another state dir, a lost journal) is removed only
  once its heartbeat is stale (:mod:`amibake.plugins.amazon.liveness`: no ``amibake:heartbeat`` or
  ``amibake:created`` newer than 5 refresh periods on any of its resources) and, with no
  ``--older-than``, only resources older than :data:`DEFAULT_MIN_AGE`; its AMIs and snapshots are
  kept and reported (no journal here says its build failed);
* an AMI, snapshot or volume carrying ``amibake:finished`` is never removed; of a finished build,
  exactly the listed artifact AMIs and their snapshots are kept, any other image of the run is removed.

Removal goes in dependency order (instances, fleets, launch templates, IAM, security groups, key
pairs, volumes, AMIs, snapshots); a resource already gone is reported as such, so running cleanup
twice is harmless. Calls use short timeouts and few retries: an endpoint that cannot be reached
costs seconds, is reported for its run, and the other runs are still cleaned.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from amibake.aws.access import AssumeRole, AwsAccess
from amibake.aws.errors import AwsError
from amibake.aws.retry import RetryPolicy
from amibake.aws.session import CLIENTS
from amibake.journal import (
    KINDS,
    Journal,
    RunRecord,
    is_active,
    load_run,
    run_files,
    valid_run_id,
)
from amibake.plugins.amazon.access import Polling
from amibake.plugins.amazon.ec2 import Ec2Gateway, Tagged, tag_dict
from amibake.plugins.amazon.liveness import (
    CREATED_TAG,
    FINISHED_TAG,
    last_sign_of_life,
    parse_time,
    stale_after,
)
from amibake.steps.context import pause_requested

RUN_TAG = "amibake:run-id"
BUILD_TAG = "amibake:build"
__all__ = ["BUILD_TAG", "CREATED_TAG", "RUN_TAG", "Cleaner", "CleanupGateway"]

#: with no ``--older-than``: the minimum age of a resource of a run with no journal here
DEFAULT_MIN_AGE = 3600.0
#: per-call limits for cleanup: an unreachable endpoint costs seconds, not minutes
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 15
MAX_ATTEMPTS = 3

#: error codes that mean "it is already gone"
GONE = frozenset({
    "InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound",
    "InvalidKeyPair.NotFound", "InvalidVolume.NotFound", "InvalidAMIID.NotFound",
    "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound", "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.Malformed", "NoSuchEntity",
    "InvalidFleetId.NotFound", "InvalidSpotInstanceRequestID.NotFound",
})

Say = Callable[[str], None]

#: the (endpoint, profile, role ARN) a run used; ("", "", "") is the cleaner's own environment
AccessKey = tuple[str, str, str]
DEFAULT_ACCESS: AccessKey = ("", "", "")


class CleanupGateway(Ec2Gateway):
    """An :class:`Ec2Gateway` whose clients have short connect/read timeouts and few retries."""

    def __init__(self, access: AwsAccess) -> None:
        super().__init__(access, Polling(delay=2.0, max_attempts=60, overridden=True),
                         retry=RetryPolicy(max_attempts=MAX_ATTEMPTS))

    def _client(self, service: str, region: str | None = None) -> Any:
        return CLIENTS.client(service, region or self.region, self.access,
                              timeouts=(CONNECT_TIMEOUT, READ_TIMEOUT))


def gateway_for(access: AccessKey, region: str) -> CleanupGateway:
    endpoint, profile, role = access
    return CleanupGateway(AwsAccess(region=region, endpoint_ec2=endpoint, profile=profile,
                                    assume_role=AssumeRole(role) if role else None))


def make_gateway(region: str) -> Ec2Gateway:
    """A gateway for cleanup: credentials, endpoint, profile from the environment, as botocore finds them."""
    return gateway_for(DEFAULT_ACCESS, region)


def new_cleaner(region: str, state: Path, echo: Callable[[str], None]) -> Cleaner:
    """The amazon builders' cleaner (the ``cleanup`` of their plugin specs): ``region`` is where it
    searches when no journal names one, ``state`` the state dir whose journals it reads."""
    return Cleaner(make_gateway(region), state, echo)


@dataclass
class Leftover:
    kind: str
    region: str
    id: str
    run_id: str = ""
    build: str = ""
    #: "journal", "tag" or both
    sources: set[str] = field(default_factory=set)
    created: str = ""
    access: AccessKey = DEFAULT_ACCESS
    tags: dict[str, str] = field(default_factory=dict)
    #: the name or client token of the journal intent it was found from
    intent: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.region, self.id)

    def describe(self) -> str:
        where = f" ({self.region})" if self.region else ""
        run = f" of run {self.run_id}" if self.run_id else ""
        return f"{self.kind} {self.id}{where}{run}"


@dataclass
class RunReport:
    """One row of the summary: what cleanup did for a run."""

    removed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def left(self) -> bool:
        return bool(self.failed or self.unreachable)


@dataclass
class Plan:
    leftovers: list[Leftover] = field(default_factory=list)
    #: "kind region id" -> why it is kept (each resource once)
    kept_by: dict[tuple[str, str, str], str] = field(default_factory=dict)
    skipped_runs: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    #: run id ("" for the default access's searches) -> its report
    reports: dict[str, RunReport] = field(default_factory=dict)

    @property
    def kept(self) -> list[str]:
        return list(self.kept_by.values())

    def report(self, run_id: str) -> RunReport:
        return self.reports.setdefault(run_id, RunReport())

    def keep(self, key: tuple[str, str, str], run_id: str, note: str) -> None:
        if key not in self.kept_by:
            self.kept_by[key] = note
            self.report(run_id).kept.append(note)

    def add(self, item: Leftover) -> None:
        if item.key in self.kept_by:
            return
        for old in self.leftovers:
            if old.key == item.key:
                old.sources |= item.sources
                old.run_id = old.run_id or item.run_id
                old.build = old.build or item.build
                old.created = old.created or item.created
                old.tags = old.tags or item.tags
                old.intent = old.intent or item.intent
                if "tag" in item.sources:  # found there: that access reaches it
                    old.access = item.access
                return
        self.leftovers.append(item)

    def ordered(self) -> list[Leftover]:
        rank = {k: i for i, k in enumerate(KINDS)}
        # mounts deepest first: a chroot's /proc before the root it is mounted in
        return sorted(self.leftovers, key=lambda r: (rank.get(r.kind, len(KINDS)),
                                                     -len(r.id) if r.kind == "mount" else 0))


@dataclass
class Result:
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Unreachable(Exception):
    pass


class Cleaner:
    def __init__(
        self,
        gateway: Ec2Gateway | None,
        state_dir: Path,
        say: Say,
        *,
        gateways: Callable[[AccessKey, str], Ec2Gateway] = gateway_for,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.default_region = gateway.region if gateway is not None else "us-east-1"
        self.state_dir = state_dir
        self.say = say
        self._make = gateways
        self._gateways: dict[tuple[AccessKey, str], Ec2Gateway] = {}
        if gateway is not None:
            self._gateways[(DEFAULT_ACCESS, gateway.region)] = gateway
        #: (access, region) -> why it cannot be reached
        self.down: dict[tuple[AccessKey, str], str] = {}
        self.clock = clock
        self.stale = stale_after()
        self.records: dict[str, RunRecord] = {}
        #: run id -> newest sign of life seen on any of its resources (epoch seconds)
        self.life: dict[str, float] = {}
        self.dry_run = False

    # -- access ------------------------------------------------------------------------------

    def gw(self, access: AccessKey, region: str) -> Ec2Gateway:
        key = (access, region or self.default_region)
        if key in self.down:
            raise Unreachable(self.down[key])
        if key not in self._gateways:
            self._gateways[key] = self._make(access, key[1])
        return self._gateways[key]

    def _call(self, access: AccessKey, region: str, fn: Callable[[Ec2Gateway], Any]) -> Any:
        """fn(gateway) through the run's access; when that cannot be reached, through the cleaner's
        own (default) access, which may reach the same account another way."""
        try:
            return self._call_via(access, region, fn)
        except Unreachable as first:
            if access == DEFAULT_ACCESS:
                raise
            try:
                return self._call_via(DEFAULT_ACCESS, region, fn)
            except Unreachable as second:
                raise Unreachable(f"{first}; and {second}") from None

    def _call_via(self, access: AccessKey, region: str, fn: Callable[[Ec2Gateway], Any]) -> Any:
        """fn(gateway); a transport failure marks (access, region) unreachable for the rest of the run."""
        key = (access, region or self.default_region)
        gw = self.gw(access, region)
        try:
            return fn(gw)
        except AwsError as exc:
            if not exc.code:  # no answer from AWS at all: connection, timeout, TLS, session
                self.down[key] = _reason(access, key[1], exc)
                raise Unreachable(self.down[key]) from None
            raise

    @staticmethod
    def access_of(rec: RunRecord | None, region: str) -> AccessKey:
        if rec is None:
            return DEFAULT_ACCESS
        a = rec.access.get(region, {})
        return (a.get("endpoint", ""), a.get("profile", ""), a.get("role_arn", ""))

    # -- finding ----------------------------------------------------------------------------

    def plan(
        self,
        *,
        run_id: str = "",
        regions: Sequence[str] = (),
        older_than: float | None = None,
        now: float | None = None,
        dry_run: bool = False,
    ) -> Plan:
        self.dry_run = dry_run
        plan = Plan()
        for path in run_files(self.state_dir):
            rec = load_run(path)
            if run_id and rec.run_id != run_id:
                continue
            self.records[rec.run_id] = rec
            if is_active(path):
                plan.skipped_runs.append(rec.run_id)
                plan.report(rec.run_id).skipped.append("in progress (its journal is held by a live amibake)")
        pause("cleanup-journals-read")
        now = self.clock() if now is None else now  # ages as of the tag search
        region_set = list(regions) or sorted(
            {r for rec in self.records.values() for r in rec.regions if r} | {self.default_region}
        )
        plan.regions = region_set
        # where to search by tag: the default access in every region (every run, or --run's), and
        # each run whose journal names another access through that access (for that run only)
        searches: dict[tuple[AccessKey, str, str], None] = {(DEFAULT_ACCESS, r, run_id): None
                                                            for r in region_set}
        for rec in self.records.values():
            for r in sorted(rec.regions):
                access = self.access_of(rec, r)
                if r in region_set and access != DEFAULT_ACCESS:
                    searches[(access, r, rec.run_id)] = None
        for rec in self.records.values():
            if rec.run_id in plan.skipped_runs:
                continue
            self._from_journal(rec, plan, set(region_set), older_than, now)
        iam_done: set[tuple[AccessKey, str]] = set()
        for access, region, only in searches:
            try:
                found = self._call(access, region, partial(_find, region=region, run_id=only))
                if (access, only) not in iam_done:
                    iam_done.add((access, only))
                    found += self._call(access, region, partial(_find_iam, run_id=only))
            except (Unreachable, AwsError) as exc:
                what = "tag search" if access == DEFAULT_ACCESS else "the journal's endpoint"
                _note(plan.report(only).unreachable, f"{region} ({what}): {exc}")
                continue
            for t in found:
                self._from_tag(t, access, plan, older_than, now)
        return plan

    def _from_journal(self, rec: RunRecord, plan: Plan, regions: set[str], older_than: float | None,
                      now: float) -> None:
        report = plan.report(rec.run_id)
        for res in rec.live:
            if res.region and res.region not in regions:
                continue
            key = (res.kind, res.region, res.id)
            if rec.keeps(res):
                plan.keep(key, rec.run_id,
                          f"{res.describe()}: artifact of finished build '{res.build}' of run {rec.run_id}")
                continue
            at = str(res.detail.get("at", ""))
            if not _old_enough(at, older_than, now):
                continue
            plan.add(Leftover(res.kind, res.region, res.id, rec.run_id, res.build, {"journal"}, at,
                              self.access_of(rec, res.region)))
        # create calls in flight when the process died: find what they made, if anything
        for res in rec.dangling:
            if res.region and res.region not in regions:
                continue
            at = str(res.detail.get("at", ""))
            if not _old_enough(at, older_than, now):
                continue
            access = self.access_of(rec, res.region)
            try:
                found = self._call(access, res.region, partial(
                    self._resolve_intent, kind=res.kind, region=res.region, name=res.id, run_id=rec.run_id))
            except Unreachable as exc:
                _note(report.unreachable, f"{res.region}: {exc}")
                continue
            except AwsError as exc:
                _note(report.failed, f"could not look up the {res.kind} {res.id} ({res.region}): {exc}")
                continue
            if not found:
                # nothing was made: settle the intent, so that it is not looked up again
                report.gone.append(f"{res.kind} {res.id} ({res.region}) (never created)")
                if not self.dry_run:
                    self._journal_removed(Leftover(res.kind, res.region, res.id, rec.run_id, res.build,
                                                   intent=res.id))
            for rid in found:
                plan.add(Leftover(res.kind, res.region, rid, rec.run_id, res.build, {"journal"}, at, access,
                                  intent=res.id))

    @staticmethod
    def _resolve_intent(gw: Ec2Gateway, kind: str, region: str, name: str, run_id: str) -> list[str]:
        if not name:
            return []
        if kind == "key-pair":
            try:
                resp = gw._call("describe_key_pairs", region, KeyNames=[name])
            except AwsError as exc:
                if exc.code in GONE:
                    return []
                raise
            return [str(k["KeyName"]) for k in resp.get("KeyPairs", [])]
        if kind in ("iam-role", "iam-instance-profile", "s3-object"):
            return [name]  # removing one that does not exist is harmless
        if kind == "security-group":
            return gw.security_group_by_name(name, region)
        if kind == "instance":
            return gw.instances_by_token(name, region)
        if kind == "launch-template":
            return gw.launch_templates_named(name, region)
        if kind == "image":
            return [img.id for img in gw.images_named(name, region=region)
                    if img.tags.get(RUN_TAG) in (None, "", run_id)]
        return []

    def _from_tag(self, t: Tagged, access: AccessKey, plan: Plan, older_than: float | None,
                  now: float) -> None:
        run = t.tags.get(RUN_TAG, "")
        build = t.tags.get(BUILD_TAG, "")
        created = t.tags.get(CREATED_TAG, "")
        life = last_sign_of_life(t.tags)
        if life is not None and run:
            self.life[run] = max(life, self.life.get(run, 0.0))
        if run in plan.skipped_runs:
            return
        key = (t.kind, t.region, t.id)
        item = Leftover(t.kind, t.region, t.id, run, build, {"tag"}, created, access, dict(t.tags))
        if FINISHED_TAG in t.tags:
            plan.keep(key, run, f"{item.describe()}: marked {FINISHED_TAG} (a delivered artifact)")
            return
        rec = self.records.get(run)
        if t.kind in ("image", "snapshot"):
            if rec is None:
                plan.keep(key, run, f"{item.describe()}: no journal of run {run} here says its build failed")
                return
            if rec.keeps(_as_resource(t, build, rec)):
                plan.keep(key, run, f"{item.describe()}: artifact of finished build '{build}' of run {run}")
                return
        min_age = older_than if older_than is not None else (None if rec is not None else DEFAULT_MIN_AGE)
        if not _old_enough(created, min_age, now):
            return
        plan.add(item)

    # -- removing ---------------------------------------------------------------------------

    def remove(self, plan: Plan, *, dry_run: bool = False) -> Result:
        result = Result()
        # an AMI's snapshots go with it
        for item in plan.ordered():
            if item.kind != "image":
                continue
            try:
                images = self._call(item.access, item.region, partial(_describe_image, item=item))
            except (Unreachable, AwsError):
                continue  # reported when the image itself is tried
            for img in images:
                for snap in img.snapshot_ids:
                    plan.add(Leftover("snapshot", item.region, snap, item.run_id, item.build, {"image"},
                                      item.created, item.access))
        instances: list[Leftover] = []
        for item in plan.ordered():
            if item.kind != "instance" and instances:
                self._wait_terminated(instances, plan)
                instances = []
            report = plan.report(item.run_id)
            try:
                why_not = self._may_remove(item)
                if why_not:
                    report.skipped.append(f"{item.describe()}: {why_not}")
                    result.skipped.append(item.describe())
                    self.say(f"Left {item.describe()}: {why_not}")
                    continue
                if dry_run:
                    self.say(f"Would remove {item.describe()}")
                    result.removed.append(item.describe())
                    report.removed.append(item.describe())
                    continue
                gone = self._call(item.access, item.region, partial(self._remove_one, item=item))
            except Unreachable as exc:
                _note(report.unreachable, f"{item.region or 'iam'}: {exc}")
                result.failed.append(f"{item.describe()}: {exc}")
                continue
            except AwsError as exc:
                if exc.code not in GONE:
                    report.failed.append(f"{item.describe()}: {exc}")
                    result.failed.append(f"{item.describe()}: {exc}")
                    self.say(f"Could not remove {item.describe()}: {exc}")
                    continue
                gone = True
            except UnknownKind as exc:
                report.failed.append(f"{item.describe()}: {exc}")
                result.failed.append(f"{item.describe()}: {exc}")
                self.say(f"Could not remove {item.describe()}: {exc}")
                continue
            self._journal_removed(item)
            if gone:
                report.gone.append(item.describe())
                result.gone.append(item.describe())
                self.say(f"Already gone: {item.describe()}")
                continue
            report.removed.append(item.describe())
            result.removed.append(item.describe())
            self.say(f"Removed {item.describe()}")
            if item.kind == "instance":
                instances.append(item)
        if instances:
            self._wait_terminated(instances, plan)
        return result

    def _may_remove(self, item: Leftover) -> str:
        """'' when ``item`` may be removed now; else why not. Asked at the moment of removal."""
        run = item.run_id
        if run:
            path = self.state_dir / "runs" / f"{run}.jsonl"
            if path.exists():
                if is_active(path):
                    return "its run is in progress (its journal is held by a live amibake)"
            else:
                age = self._heartbeat_age(item)
                if age is not None and age < self.stale:
                    return (f"its run is alive elsewhere (last heartbeat {age:.0f}s ago; stale after "
                            f"{self.stale:.0f}s)")
        if item.kind in ("image", "snapshot", "volume"):
            tags = self._fresh_tags(item)
            if tags is not None and FINISHED_TAG in tags:
                return f"marked {FINISHED_TAG} (a delivered artifact)"
        return ""

    def _heartbeat_age(self, item: Leftover) -> float | None:
        """Seconds since the run's newest sign of life, read now from its resources' tags."""
        region = item.region or self.default_region
        newest = self.life.get(item.run_id, 0.0)
        found: list[Tagged] = self._call(item.access, region,
                                         lambda g: g.find_tagged(region, RUN_TAG, item.run_id))
        for t in found:
            life = last_sign_of_life(t.tags)
            if life is not None:
                newest = max(newest, life)
        life = last_sign_of_life(item.tags)
        if life is not None:
            newest = max(newest, life)
        self.life[item.run_id] = newest
        return (self.clock() - newest) if newest else None

    def _fresh_tags(self, item: Leftover) -> dict[str, str] | None:
        """The tags of an image, snapshot or volume now; None when it is gone."""
        def read(g: Ec2Gateway) -> dict[str, str] | None:
            try:
                if item.kind == "image":
                    resp = g._call("describe_images", item.region or None, ImageIds=[item.id])
                    found = resp.get("Images", [])
                elif item.kind == "volume":  # amazon-ebsvolume delivers volumes
                    resp = g._call("describe_volumes", item.region or None, VolumeIds=[item.id])
                    found = resp.get("Volumes", [])
                else:
                    resp = g._call("describe_snapshots", item.region or None, SnapshotIds=[item.id])
                    found = resp.get("Snapshots", [])
            except AwsError as exc:
                if exc.code in GONE:
                    return None
                raise
            return tag_dict(found[0].get("Tags")) if found else None

        result: dict[str, str] | None = self._call(item.access, item.region, read)
        return result

    def _wait_terminated(self, instances: Iterable[Leftover], plan: Plan) -> None:
        for inst in instances:
            def probe(g: Ec2Gateway, i: Leftover = inst) -> None:
                g.wait(f"instance {i.id} to be terminated",
                       lambda: _instance_gone_or_terminated(g, i))
            try:
                self._call(inst.access, inst.region, probe)
            except (Unreachable, AwsError) as exc:
                self.say(f"Instance {inst.id} ({inst.region}) is not terminated yet: {exc}")
            except Exception as exc:  # a wait that gave up: the removals after it will say what failed
                self.say(str(exc))

    @staticmethod
    def _remove_one(gw: Ec2Gateway, item: Leftover) -> bool:
        """Remove ``item``; True when it turned out to be gone already."""
        r, rid = item.region or None, item.id
        if item.kind == "instance":
            inst = gw.describe_instance(rid, r)
            if inst is None or inst.state in ("terminated", "shutting-down"):
                return True
            gw.terminate_instance(rid, r)
        elif item.kind == "fleet":
            gw.delete_fleet(rid, r)
        elif item.kind == "launch-template":
            gw.delete_launch_template(rid, r)
        elif item.kind == "iam-role-in-profile":
            for role in gw.iam_profile_roles(rid):
                gw.remove_role_from_instance_profile(rid, role)
        elif item.kind == "iam-role-policy":
            for policy in gw.iam_role_policies(rid):
                gw.delete_role_policy(rid, policy)
        elif item.kind == "iam-instance-profile":
            for role in gw.iam_profile_roles(rid):
                gw.remove_role_from_instance_profile(rid, role)
            gw.delete_instance_profile(rid)
        elif item.kind == "iam-role":
            for policy in gw.iam_role_policies(rid):
                gw.delete_role_policy(rid, policy)
            for prof in gw.iam_role_profiles(rid):
                gw.remove_role_from_instance_profile(prof, rid)
            gw.delete_role(rid)
        elif item.kind == "security-group":
            gw.wait(f"security group {rid} to be deletable",
                    lambda: (_run(gw.delete_security_group, rid, r), "deleted"),
                    retry_codes=("DependencyViolation",))
        elif item.kind == "key-pair":
            # DeleteKeyPair succeeds for a name that does not exist: look first
            if not Cleaner._resolve_intent(gw, "key-pair", item.region, rid, item.run_id):
                return True
            gw.delete_key_pair(rid, r)
        elif item.kind == "volume":
            _detach_if_attached(gw, rid, r)
            gw.delete_volume(rid, r)
        elif item.kind == "image":
            gw.deregister_image(rid, r)
        elif item.kind == "snapshot":
            gw.delete_snapshot(rid, r)
        elif item.kind == "mount":
            if not _mounted(rid):
                return True
            _unmount(rid)
            return False
        elif item.kind == "import-task":
            task = gw.import_task(rid, r)
            if task is None or task.status in ("deleted", "deleting"):
                return True
            gw.cancel_import(rid, r)  # or, completed, what it made unless delivered (amibake:finished)
        elif item.kind == "s3-object":
            gw.delete_object(rid, r)
        elif item.kind == "spot-request":
            gw._call("cancel_spot_instance_requests", r, SpotInstanceRequestIds=[rid])
        else:
            raise UnknownKind(f"amibake does not know how to remove a {item.kind!r}; nothing was done")
        return False

    def _journal_removed(self, item: Leftover) -> None:
        if not item.run_id or not valid_run_id(item.run_id):
            return
        path = self.state_dir / "runs" / f"{item.run_id}.jsonl"
        if not path.exists() or is_active(path):
            return
        j = Journal(item.run_id, self.state_dir)
        try:
            extra = {"name": item.intent} if item.intent and item.intent != item.id else {}
            j.write("removed", build=item.build, kind=item.kind, region=item.region, id=item.id,
                    by="cleanup", **extra)
        except OSError as exc:
            self.say(f"Could not record the removal in {path}: {exc}")
        finally:
            j.close()


class UnknownKind(Exception):
    pass


def _as_resource(t: Tagged, build: str, rec: RunRecord) -> Any:
    """A tag-found image or snapshot as the journal would list it (a snapshot with its AMI)."""
    from amibake.journal import Resource

    detail: dict[str, Any] = {}
    if t.kind == "snapshot":
        for res in rec.live:
            if res.kind == "snapshot" and res.id == t.id and res.region == t.region:
                detail = dict(res.detail)
    return Resource(t.kind, t.region, t.id, build, detail)


def pause(point: str) -> None:
    """A debugging aid, as in builds: with ``AMIBAKE_PAUSE_AT=<point>``, print
    ``amibake: paused at <point> (pid N)`` to stderr and wait ``AMIBAKE_PAUSE_SECONDS`` (default 3600)
    or until the process gets SIGCONT. Point: ``cleanup-journals-read`` (the journals are read, the
    tag search has not started)."""
    main = threading.current_thread() is threading.main_thread()
    if main:  # blocked before the announcement: a SIGCONT sent on seeing it is not lost
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCONT})
    try:
        seconds = pause_requested(point)
        if seconds is None:
            return
        if main:
            signal.sigtimedwait({signal.SIGCONT}, seconds)
        else:
            time.sleep(seconds)
    finally:
        if main:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCONT})


def _mounted(path: str, mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Whether ``path`` is a mount point on this host (``/proc/self/mountinfo``'s fifth field, with
    its octal escapes)."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            points = {line.split()[4] for line in f if len(line.split()) > 4}
    except OSError:
        return False
    escaped = path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")
    return escaped in points


def _unmount(path: str) -> None:
    """``umount path``, as the build would have; a failure is the removal's failure."""
    from amibake import localexec

    errors: list[str] = []
    status = localexec.run(["umount", path], stderr=errors.append)
    if status != 0:
        raise AwsError("umount", "", f"umount {path} failed ({localexec.exit_description(status)}): "
                       + " ".join(errors))


def _detach_if_attached(gw: Ec2Gateway, volume_id: str, region: str | None) -> None:
    """A volume of a killed run may still be attached (amazon-chroot attaches its volume to the build
    host): force it off whatever it is attached to and wait until it is available, so that it can
    be deleted. A volume attached at launch goes with its instance (removed before volumes)."""
    resp = gw._call("describe_volumes", region, VolumeIds=[volume_id])
    for vol in resp.get("Volumes", []):
        if vol.get("State") != "in-use":
            continue
        for att in vol.get("Attachments", []) or []:
            gw._call("detach_volume", region, VolumeId=volume_id, InstanceId=att.get("InstanceId"),
                     Force=True)

        def available() -> tuple[bool, str]:
            vols = gw._call("describe_volumes", region, VolumeIds=[volume_id]).get("Volumes", [])
            state = str(vols[0].get("State", "")) if vols else "deleted"
            return state in ("available", "deleted"), state

        gw.wait(f"volume {volume_id} to be detached", available)


def _find(gw: Ec2Gateway, *, region: str, run_id: str) -> list[Tagged]:
    return gw.find_tagged(region, RUN_TAG, run_id)


def _find_iam(gw: Ec2Gateway, *, run_id: str) -> list[Tagged]:
    return gw.find_tagged_iam(RUN_TAG, run_id)


def _describe_image(gw: Ec2Gateway, *, item: Leftover) -> list[Any]:
    return gw.describe_images(image_ids=[item.id], region=item.region or None)


def _instance_gone_or_terminated(gw: Ec2Gateway, item: Leftover) -> tuple[bool, str]:
    try:
        inst = gw.describe_instance(item.id, item.region or None)
    except AwsError as exc:
        if exc.code in GONE:
            return True, "(gone)"
        raise
    if inst is None:
        return True, "(gone)"
    return inst.state == "terminated", inst.state


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _reason(access: AccessKey, region: str, exc: AwsError) -> str:
    endpoint = access[0] or "the default endpoint"
    who = f", profile {access[1]}" if access[1] else ""
    return f"cannot reach {endpoint} for {region}{who}: {exc}"


def _old_enough(created: str, older_than: float | None, now: float) -> bool:
    if older_than is None:
        return True
    t = parse_time(created)
    return t is not None and now - t >= older_than


def _run(fn: Callable[[str, str | None], None], rid: str, region: str | None) -> bool:
    fn(rid, region)
    return True
