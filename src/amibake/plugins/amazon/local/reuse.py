"""amibake-local's side of ``-skip-unchanged`` and ``amibake plan``: amazon-ebs's (an AMI found by its
content fingerprint is converged, not rebuilt), with the fingerprint resolved from the mirror.

The template's options are in the fingerprint already (suite, mirror, variant, components, packages:
the package set asked for; a ``rootfs_tarball``'s contents through ``local_inputs``). What they do
not pin is the mirror's state: the same options give other package versions once the archive moves
on. So the fingerprint also holds the **mirror snapshot**, the SHA-256 of the suite's signed index
(``dists/<suite>/InRelease``, else ``Release``), which changes whenever any package of the suite
does; a ``snapshot.debian.org`` mirror URL pins it for good.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
import uuid
from typing import Any, cast

from amibake import fingerprint
from amibake.api import BuildEnv, FoundImage, NothingToReuse
from amibake.errors import BuildError
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.local.config import LocalConfig
from amibake.plugins.amazon.reuse import AmiReuse
from amibake.plugins.amazon.state import BuildState

#: the fingerprint component of the mirror's state
MIRROR_SNAPSHOT = "mirror snapshot"
INDEX_TIMEOUT = 30.0


def mirror_snapshot(config: LocalConfig) -> dict[str, str]:
    """``{"mirror snapshot": sha256 of dists/<suite>/InRelease}``; nothing with ``rootfs_tarball``
    (its contents are fingerprinted as a local input)."""
    if config.rootfs_tarball:
        return {}
    base = config.mirror.rstrip("/")
    problems = []
    for name in ("InRelease", "Release"):
        url = f"{base}/dists/{config.suite}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=INDEX_TIMEOUT) as resp:  # the mirror: http(s) or file
                data = resp.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        return {MIRROR_SNAPSHOT: hashlib.sha256(data).hexdigest()}
    raise BuildError("cannot read the mirror's index for the fingerprint: " + "; ".join(problems))


class LocalView:
    """A :class:`LocalConfig` as amazon-ebs's AMI steps read it (the launch options it has not are off)."""

    skip_create_ami = False
    vpc_id = ""
    subnet_id = ""
    subnet_filter = None

    def __init__(self, config: LocalConfig) -> None:
        self._config = config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


class LocalReuse(AmiReuse):
    """amazon-ebs's reuse of an AMI by fingerprint; the fingerprint resolved from the mirror."""

    def __init__(self, config: LocalConfig, env: BuildEnv) -> None:
        super().__init__(cast(EbsConfig, config), env)
        self.local_config = config

    def _state(self, gateway: Any, hooks: Any = None) -> BuildState:
        return BuildState(config=cast(EbsConfig, LocalView(self.local_config)), ec2=gateway, env=self.env,
                          hooks=hooks, run_uuid=self.env.run_uuid or str(uuid.uuid4()), ui_=self.ui)

    def resolve(self) -> dict[str, str]:
        if not self.local_config.ami_name:
            raise NothingToReuse("no ami_name: this build makes no AMI to reuse")
        return mirror_snapshot(self.local_config)

    def resources(self, image: FoundImage | None) -> list[str]:
        if image is not None:
            return super().resources(image)
        c = self.local_config
        region = self.gateway.region
        out = ["root filesystem, disk and boot test on this host (no instance)",
               "snapshot written with the EBS direct APIs", f"AMI in {region}"]
        out += [f"AMI copy in {r} (and its snapshots)" for r in c.copy_regions(region)]
        return out


def fingerprint_tags(env: BuildEnv, resolved: dict[str, str], build_name: str) -> dict[str, str]:
    """``amibake:fingerprint`` for the build's AMI and snapshot (with ``-skip-unchanged`` or
    ``amibake plan``'s fingerprint computed), from the values :func:`mirror_snapshot` resolved."""
    partial = env.fingerprint
    if partial is None:
        return {}
    fp = partial.resolved(resolved)
    found = env.image_fingerprint
    if found.get("remembered") != fp.digest:
        found.update(fingerprint=fp.digest, breakdown=fp.breakdown(), reused=False, remembered=fp.digest)
        fingerprint.remember(fp, build_name)
    return {fingerprint.TAG: fp.digest}
