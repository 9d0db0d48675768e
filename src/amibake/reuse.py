"""``-skip-unchanged`` and ``amibake plan``: per build, rebuild, reuse an image and converge, or
refuse, and why. Builder-agnostic: the builder's :class:`amibake.api.ImageReuse` (named by its
registration) resolves what only it can, finds images by fingerprint and converges them.

Each build decides alone, in its own thread, before it launches anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from amibake import fingerprint, registry
from amibake.api import Artifact, BuildEnv, FoundImage, Hooks, NothingToReuse
from amibake.errors import AmibakeError

Action = Literal["rebuild", "reuse", "refused"]


@dataclass(frozen=True)
class SkipOptions:
    #: -skip-unchanged / AMIBAKE_SKIP_UNCHANGED=1
    enabled: bool = False
    #: -max-age, in seconds: an image older than this is not reused (None: any age)
    max_age: float | None = None
    #: -force: always rebuild
    force: bool = False


@dataclass
class Decision:
    build: str
    action: Action
    #: why: the changed fingerprint components, or what stops the reuse
    reasons: list[str] = field(default_factory=list)
    fingerprint: str = ""
    #: the image reused (action "reuse"), or the newest of this build (for the reasons)
    image: FoundImage | None = None
    #: what a build or a converge would create or change
    resources: list[str] = field(default_factory=list)
    breakdown: dict[str, str] = field(default_factory=dict)


def decide(build_type: str, config: Any, env: BuildEnv, options: SkipOptions,
           *, explain: bool = False) -> tuple[Decision, Any]:
    """What this build would do. ``explain``: also the reasons and resources of a rebuild (plan).
    Returns the decision and the builder's reuse object (None when the builder has none)."""
    name = env.build_name
    spec = registry.lookup("builder", build_type)
    impl = spec.reuse_class() if spec else None
    partial = env.fingerprint
    if impl is None or partial is None:
        why = (f"the {build_type} builder makes no image to reuse" if impl is None
               else "the build's fingerprint could not be computed")
        return Decision(name, "rebuild", [why]), None
    reuse = impl(config, env)
    try:
        fp = partial.resolved(reuse.resolve())
    except NothingToReuse as exc:
        return Decision(name, "rebuild", [str(exc)]), reuse
    except AmibakeError as exc:
        return Decision(name, "refused", [str(exc)]), reuse
    d = Decision(name, "rebuild", fingerprint=fp.digest, breakdown=fp.breakdown())
    env.image_fingerprint.update(fingerprint=fp.digest, breakdown=fp.breakdown(), reused=False)
    try:
        if options.force:
            d.reasons.append("-force: always rebuild")
        else:
            found = reuse.find(fp.digest, options.max_age)
            if found is not None:
                d.action, d.image = "reuse", found
                d.reasons.append(f"{found.id} (created {found.created}) has the same content fingerprint")
                if explain:
                    d.resources = reuse.resources(found)
                return d, reuse
            if options.max_age is not None and reuse.find(fp.digest, None) is not None:
                d.reasons.append("an image with this fingerprint exists but is older than -max-age")
        if explain or not d.reasons:
            newest = reuse.newest_of_build()
            d.image = newest
            if newest is None:
                d.reasons.append("no image of this build with a fingerprint exists")
            elif newest.fingerprint != fp.digest:
                d.reasons += [f"since {newest.id}: {r}" for r in
                              fingerprint.changes(fingerprint.recall(newest.fingerprint), fp)]
        if explain:
            d.resources = reuse.resources(None)
    except AmibakeError as exc:
        return Decision(name, "refused", [str(exc)], fingerprint=fp.digest), reuse
    return d, reuse


def try_reuse(build_type: str, config: Any, env: BuildEnv, hooks: Hooks,
              options: SkipOptions) -> Artifact | None:
    """``-skip-unchanged`` before a build launches anything: the converged image's artifact, or None
    to build. A lookup that fails is reported and the build goes on."""
    decision, reuse = decide(build_type, config, env, options)
    if decision.action == "reuse" and decision.image is not None:
        artifact: Artifact = reuse.converge(decision.image, hooks)
        return artifact
    why = "; ".join(decision.reasons)
    if decision.action == "refused":
        env.ui.error(f"-skip-unchanged: cannot look for an image to reuse: {why}; building")
    else:
        env.ui.say(f"-skip-unchanged: building: {why}")
    return None
