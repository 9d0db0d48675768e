"""What ``amibake prune`` removes and keeps, decided from plain data (no AWS, no clock).

:func:`plan` takes the account's images of the searched regions (:class:`Image`), which of them the
selection chose, what uses or protects them (:class:`Usage`) and the rules (:class:`Rules`), and
returns one :class:`ImageDecision` per selected image and one :class:`SnapshotDecision` per snapshot
of a removed image, each with its reasons. The guarantees (tests/unit/test_prune_plan.py checks
them as properties):

* the newest image of a build (per region) is never removed unless ``keep`` is 0;
* an image in use, protected, not ``available``, or shared or public (unless ``include_shared``) is
  never removed;
* a snapshot is deleted only when its image is removed and no other image of its region (kept,
  not selected, or of another build) refers to it, and it is not shared (unless ``include_shared``).

A build is the value of the image's ``amibake:build`` tag; the selected images without that tag
form one group per region (the selection is then the build).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

BUILD_TAG = "amibake:build"
CREATED_TAG = "amibake:created"

#: the group name shown for the selected images with no ``amibake:build`` tag
UNTAGGED = "(no amibake:build tag)"


@dataclass(frozen=True)
class Image:
    """One AMI owned by the account, as the planner needs it."""

    id: str
    region: str
    name: str = ""
    #: AWS's CreationDate (UTC)
    created: datetime = datetime(1970, 1, 1)
    tags: Mapping[str, str] = field(default_factory=dict)
    snapshots: tuple[str, ...] = ()
    state: str = "available"
    public: bool = False
    #: account ids, organization or OU ARNs the image is shared with
    shared_with: tuple[str, ...] = ()
    #: deregistration protection is on
    protected: bool = False

    @property
    def build(self) -> str:
        return self.tags.get(BUILD_TAG, "") or UNTAGGED

    def order_key(self) -> tuple[datetime, str, str, str]:
        """Oldest first: CreationDate, then the build's ``amibake:created`` tag, the name, the id."""
        return (self.created, self.tags.get(CREATED_TAG, ""), self.name, self.id)


@dataclass
class Usage:
    """What uses or protects images and snapshots: image id -> reasons ("instance i-1 (running)",
    "launch template lt-1 version 3", ...); snapshot id -> reasons ("shared with 1234...")."""

    images: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    snapshots: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def use(self, image_id: str, reason: str) -> None:
        if reason not in self.images[image_id]:
            self.images[image_id].append(reason)

    def share(self, snapshot_id: str, reason: str) -> None:
        if reason not in self.snapshots[snapshot_id]:
            self.snapshots[snapshot_id].append(reason)


@dataclass(frozen=True)
class Rules:
    """``--keep N`` (None: no count rule), ``--older-than`` in seconds (None: any age),
    ``--include-shared``, and the time the ages are measured against."""

    keep: int | None = None
    older_than: float | None = None
    include_shared: bool = False
    now: datetime = datetime(1970, 1, 1)


@dataclass(frozen=True)
class ImageDecision:
    image: Image
    remove: bool
    #: why it is kept (every reason that applies), or why it is removed (one line)
    reasons: tuple[str, ...]

    @property
    def action(self) -> str:
        return "remove" if self.remove else "keep"


@dataclass(frozen=True)
class SnapshotDecision:
    id: str
    region: str
    #: the removed image it belongs to
    image_id: str
    remove: bool
    reasons: tuple[str, ...]

    @property
    def action(self) -> str:
        return "delete" if self.remove else "keep"


@dataclass
class Plan:
    images: list[ImageDecision] = field(default_factory=list)
    snapshots: list[SnapshotDecision] = field(default_factory=list)

    @property
    def removed_images(self) -> list[ImageDecision]:
        return [d for d in self.images if d.remove]

    @property
    def deleted_snapshots(self) -> list[SnapshotDecision]:
        return [s for s in self.snapshots if s.remove]

    def snapshots_of(self, image_id: str) -> list[SnapshotDecision]:
        return [s for s in self.snapshots if s.image_id == image_id]


def human_age(seconds: float) -> str:
    """A Go-like duration, rounded down to whole units: ``3d4h``, ``2h5m``, ``40s``."""
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{s}s" if s else f"{minutes}m"
    return f"{s}s"


def _protections(img: Image, usage: Usage, include_shared: bool) -> list[str]:
    out: list[str] = []
    if img.state != "available":
        out.append(f"state {img.state}")
    if img.protected:
        out.append("deregistration protection is on")
    out.extend(usage.images.get(img.id, ()))
    if not include_shared:
        if img.public:
            out.append("public (--include-shared to remove)")
        if img.shared_with:
            out.append(f"shared with {', '.join(img.shared_with)} (--include-shared to remove)")
    return out


def plan(account: Iterable[Image], selected: Iterable[str], usage: Usage, rules: Rules) -> Plan:
    """Decide, for each selected image (ids in ``selected``), keep or remove, and for each snapshot
    of a removed image, delete or keep. ``account`` holds every image of the account in the searched
    regions (selected or not): a snapshot another of them refers to is kept."""
    images = list(account)
    chosen = set(selected)
    groups: dict[tuple[str, str], list[Image]] = defaultdict(list)
    for img in images:
        if img.id in chosen:
            groups[(img.region, img.build)].append(img)
    out = Plan()
    for (region, build), members in sorted(groups.items()):
        newest_first = sorted(members, key=Image.order_key, reverse=True)
        for rank, img in enumerate(newest_first):
            kept = _protections(img, usage, rules.include_shared)
            rule = _rule(rank, img, build, region, rules)
            if kept or rule:
                out.images.append(ImageDecision(img, False, tuple(kept + ([rule] if rule else []))))
            else:
                out.images.append(ImageDecision(img, True, (_why_removed(rank, img, build, rules),)))
    removed = {d.image.id for d in out.images if d.remove}
    # region -> snapshot -> the images that stay and refer to it
    staying: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for img in images:
        if img.id not in removed:
            for snap in img.snapshots:
                staying[img.region][snap].append(img.id)
    seen: set[tuple[str, str]] = set()
    for d in out.images:
        if not d.remove:
            continue
        for snap in d.image.snapshots:
            if (d.image.region, snap) in seen:
                continue
            seen.add((d.image.region, snap))
            reasons: list[str] = []
            users = staying[d.image.region].get(snap, [])
            if users:
                reasons.append(f"also used by {', '.join(sorted(users))}")
            if not rules.include_shared:
                reasons.extend(f"{r} (--include-shared to delete)" for r in usage.snapshots.get(snap, ()))
            out.snapshots.append(SnapshotDecision(snap, d.image.region, d.image.id, not reasons,
                                                  tuple(reasons) or ("no other image uses it",)))
    return out


def _rule(rank: int, img: Image, build: str, region: str, rules: Rules) -> str:
    """Why the rules keep the image at ``rank`` (0 = newest of its build), or ""."""
    if rank == 0 and rules.keep != 0:
        return f"newest of build {build} in {region} (--keep 0 to remove it)"
    if rules.keep is not None and rank < rules.keep:
        return f"one of the newest {rules.keep} of build {build} in {region}"
    if rules.older_than is not None:
        age = (rules.now - img.created).total_seconds()
        if age < rules.older_than:
            return f"newer than --older-than {human_age(rules.older_than)} (age {human_age(age)})"
    return ""


def _why_removed(rank: int, img: Image, build: str, rules: Rules) -> str:
    parts = []
    if rules.keep is not None:
        parts.append(f"number {rank + 1} from the newest of build {build} (--keep {rules.keep})")
    if rules.older_than is not None:
        age = (rules.now - img.created).total_seconds()
        parts.append(f"age {human_age(age)} (--older-than {human_age(rules.older_than)})")
    return "; ".join(parts) or "selected"


def selects(img: Image, names: Sequence[str], tags: Mapping[str, str], builds: Iterable[str] | None) -> bool:
    """The selection: the name matches one of ``names`` (``*`` and ``?`` wildcards, as EC2's name
    filter), every tag of ``tags`` has its value, and the ``amibake:build`` tag is one of ``builds``
    (when given). Each criterion given must hold."""
    if names and not any(wildcard_match(n, img.name) for n in names):
        return False
    if any(img.tags.get(k) != v for k, v in tags.items()):
        return False
    return builds is None or img.tags.get(BUILD_TAG, "") in set(builds)


def wildcard_match(pattern: str, text: str) -> bool:
    """``*`` any run of characters, ``?`` one character, everything else itself (no ``[...]``)."""
    import re

    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.DOTALL) is not None
