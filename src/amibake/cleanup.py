"""Find and remove what interrupted or crashed runs left in AWS (``amibake cleanup``).

Two sources, merged:

* the run journals (:mod:`amibake.journal`): resources created and not removed, and create calls
  that were in flight when the process died (looked up by name or client token);
* tags, region by region: every resource amibake creates carries ``amibake:run-id``,
  ``amibake:build`` and ``amibake:created`` from its create call on.

Removal goes in dependency order (instances, fleets, launch templates, IAM, security groups, key
pairs, volumes, AMIs, snapshots); a resource already gone counts as removed, so running cleanup twice
is harmless. An AMI (and its snapshots) of a build whose journal records its finish is the user's
artifact and is never touched; one whose run has no journal at all is kept too, and reported.
A run whose journal is still held open by a live amibake process is in progress and left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from amibake.builders.amazon.ec2 import AwsAccess, AwsError, Ec2Gateway, Polling, Tagged
from amibake.journal import (
    KINDS,
    Journal,
    Resource,
    RunRecord,
    is_active,
    load_run,
    run_files,
    valid_run_id,
)

RUN_TAG = "amibake:run-id"
BUILD_TAG = "amibake:build"
CREATED_TAG = "amibake:created"

#: error codes that mean "it is already gone"
GONE = frozenset({
    "InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound",
    "InvalidKeyPair.NotFound", "InvalidVolume.NotFound", "InvalidAMIID.NotFound",
    "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound", "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.Malformed", "NoSuchEntity",
    "InvalidFleetId.NotFound",
})

Say = Callable[[str], None]


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

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.region, self.id)

    def describe(self) -> str:
        where = f" ({self.region})" if self.region else ""
        run = f" of run {self.run_id}" if self.run_id else ""
        return f"{self.kind} {self.id}{where}{run}"


@dataclass
class Plan:
    leftovers: list[Leftover] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped_runs: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)

    def add(self, item: Leftover) -> None:
        for old in self.leftovers:
            if old.key == item.key:
                old.sources |= item.sources
                old.run_id = old.run_id or item.run_id
                old.build = old.build or item.build
                return
        self.leftovers.append(item)

    def ordered(self) -> list[Leftover]:
        rank = {k: i for i, k in enumerate(KINDS)}
        return sorted(self.leftovers, key=lambda r: rank.get(r.kind, len(KINDS)))


@dataclass
class Result:
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _parse_time(text: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _old_enough(created: str, older_than: float | None, now: float) -> bool:
    if older_than is None:
        return True
    t = _parse_time(created)
    return t is not None and now - t >= older_than


class Cleaner:
    def __init__(self, gateway: Ec2Gateway, state_dir: Path, say: Say) -> None:
        self.gw = gateway
        self.state_dir = state_dir
        self.say = say

    # -- finding ----------------------------------------------------------------------------

    def plan(
        self,
        *,
        run_id: str = "",
        regions: Sequence[str] = (),
        older_than: float | None = None,
        now: float | None = None,
    ) -> Plan:
        now = time.time() if now is None else now
        plan = Plan()
        records: dict[str, RunRecord] = {}
        for path in run_files(self.state_dir):
            rec = load_run(path)
            if run_id and rec.run_id != run_id:
                continue
            if is_active(path):
                plan.skipped_runs.append(rec.run_id)
                continue
            records[rec.run_id] = rec
        region_set = list(regions) or sorted(
            {r for rec in records.values() for r in rec.regions if r} | {self.gw.region}
        )
        plan.regions = region_set
        for rec in records.values():
            if not _old_enough(rec.started, older_than, now):
                continue
            self._from_journal(rec, plan, set(region_set))
        active = set(plan.skipped_runs)
        for region in region_set:
            for t in self.gw.find_tagged(region, RUN_TAG, run_id):
                self._from_tag(t, records, active, plan, older_than, now)
        for t in self.gw.find_tagged_iam(RUN_TAG, run_id):
            self._from_tag(t, records, active, plan, older_than, now)
        return plan

    def _from_journal(self, rec: RunRecord, plan: Plan, regions: set[str]) -> None:
        for res in rec.live:
            if res.region and res.region not in regions:
                continue
            if rec.keeps(res):
                plan.kept.append(
                    f"{res.describe()}: artifact of finished build '{res.build}' of run {rec.run_id}"
                )
                continue
            plan.add(Leftover(res.kind, res.region, res.id, rec.run_id, res.build, {"journal"}))
        # create calls in flight when the process died: find what they made, if anything
        for res in rec.dangling:
            if res.region and res.region not in regions:
                continue
            for rid in self._resolve_intent(res.kind, res.region, res.id, rec.run_id):
                if res.kind == "image" and res.build in rec.finished:
                    continue
                plan.add(Leftover(res.kind, res.region, rid, rec.run_id, res.build, {"journal"}))

    def _resolve_intent(self, kind: str, region: str, name: str, run_id: str) -> list[str]:
        if not name and kind != "fleet":
            return []
        try:
            if kind in ("key-pair", "iam-role", "iam-instance-profile"):
                return [name]
            if kind == "security-group":
                return self.gw.security_group_by_name(name, region)
            if kind == "instance":
                return self.gw.instances_by_token(name, region)
            if kind == "launch-template":
                return self.gw.launch_templates_named(name, region)
            if kind == "image":
                return [img.id for img in self.gw.images_named(name, region=region)
                        if img.tags.get(RUN_TAG) in (None, "", run_id)]
        except AwsError as exc:
            self.say(f"Could not look up the {kind} {name} ({region}): {exc}")
        return []

    def _from_tag(self, t: Tagged, records: dict[str, RunRecord], active: set[str], plan: Plan,
                  older_than: float | None, now: float) -> None:
        run = t.tags.get(RUN_TAG, "")
        build = t.tags.get(BUILD_TAG, "")
        if run in active:
            return
        if not _old_enough(t.tags.get(CREATED_TAG, ""), older_than, now):
            return
        item = Leftover(t.kind, t.region, t.id, run, build, {"tag"}, t.tags.get(CREATED_TAG, ""))
        if t.kind in ("image", "snapshot"):
            rec = records.get(run)
            if rec is None:
                plan.kept.append(f"{item.describe()}: no journal of run {run} here says its build failed")
                return
            if rec.keeps(Resource(t.kind, t.region, t.id, build)):
                plan.kept.append(f"{item.describe()}: artifact of finished build '{build}' of run {run}")
                return
        plan.add(item)

    # -- removing ---------------------------------------------------------------------------

    def remove(self, plan: Plan, *, dry_run: bool = False) -> Result:
        result = Result()
        ordered = plan.ordered()
        # an AMI's snapshots go with it
        extra: list[Leftover] = []
        for item in ordered:
            if item.kind == "image":
                try:
                    for img in self.gw.describe_images(image_ids=[item.id], region=item.region):
                        extra += [Leftover("snapshot", item.region, snap, item.run_id, item.build, {"image"})
                                  for snap in img.snapshot_ids]
                except AwsError as exc:
                    if exc.code not in GONE:
                        self.say(f"Could not describe {item.describe()}: {exc}")
        for leftover in extra:
            plan.add(leftover)
        instances: list[Leftover] = []
        for item in plan.ordered():
            if dry_run:
                self.say(f"Would remove {item.describe()}")
                result.removed.append(item.describe())
                continue
            if item.kind != "instance" and instances:
                self._wait_terminated(instances)
                instances = []
            try:
                self._remove_one(item)
            except AwsError as exc:
                if exc.code not in GONE:
                    result.failed.append(f"{item.describe()}: {exc}")
                    self.say(f"Could not remove {item.describe()}: {exc}")
                    continue
            self._journal_removed(item)
            result.removed.append(item.describe())
            self.say(f"Removed {item.describe()}")
            if item.kind == "instance":
                instances.append(item)
        if instances and not dry_run:
            self._wait_terminated(instances)
        return result

    def _wait_terminated(self, instances: Iterable[Leftover]) -> None:
        for inst in instances:
            try:
                self.gw.wait_instance(inst.id, ["terminated"], region=inst.region)
            except AwsError as exc:
                if exc.code not in GONE:
                    self.say(f"Instance {inst.id} ({inst.region}) is not terminated yet: {exc}")
            except Exception as exc:  # a wait that gave up: the removals after it will say what failed
                self.say(str(exc))

    def _remove_one(self, item: Leftover) -> None:
        gw, r, rid = self.gw, item.region or None, item.id
        if item.kind == "instance":
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
            gw.delete_key_pair(rid, r)
        elif item.kind == "volume":
            gw.delete_volume(rid, r)
        elif item.kind == "image":
            gw.deregister_image(rid, r)
        elif item.kind == "snapshot":
            gw.delete_snapshot(rid, r)
        elif item.kind == "spot-request":
            gw._call("cancel_spot_instance_requests", r, SpotInstanceRequestIds=[rid])

    def _journal_removed(self, item: Leftover) -> None:
        if not item.run_id or not valid_run_id(item.run_id):
            return
        if not (self.state_dir / "runs" / f"{item.run_id}.jsonl").exists():
            return
        j = Journal(item.run_id, self.state_dir)
        try:
            j.write("removed", build=item.build, kind=item.kind, region=item.region, id=item.id,
                    by="cleanup")
        finally:
            j.close()


def _run(fn: Callable[[str, str | None], None], rid: str, region: str | None) -> bool:
    fn(rid, region)
    return True


def make_gateway(region: str) -> Ec2Gateway:
    """A gateway for cleanup: credentials, endpoint, profile from the environment, as boto3 finds them."""
    return Ec2Gateway(AwsAccess(region=region), Polling(delay=2.0, max_attempts=60))
