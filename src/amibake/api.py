"""The interfaces between amibake's core and its plugins (builders, provisioners, post-processors).

Plugins receive their typed, frozen config object and a small environment; they never reach for
globals. The core (``amibake.core``) drives them: it runs builders in parallel threads, hands each
builder a :class:`Hooks` whose ``provision`` runs the template's provisioners over the builder's
communicator, then runs the post-processor chains on the returned :class:`Artifact`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

OnError = Literal["cleanup", "abort", "ask", "run-cleanup-provisioner"]


class Ui(Protocol):
    """Per-build output, shaped like Packer's. Implementations redact secrets."""

    def say(self, message: str) -> None:
        """A step headline: ``==> name: message``."""

    def message(self, message: str) -> None:
        """Detail under a step: ``    name: message``."""

    def error(self, message: str) -> None:
        """An error line: ``==> name: message`` (red on a terminal)."""

    def progress(self, label: str, fraction: float | None) -> None:
        """Progress of a long wait (``fraction`` in 0..1, or None when unknown)."""

    def ask(self, question: str) -> str:
        """Ask the user (``-on-error=ask``); returns the answer, "" when there is no terminal."""


class Artifact(Protocol):
    builder_id: str
    #: Packer's artifact id, e.g. ``us-east-1:ami-0abc,us-west-2:ami-0def``
    id: str
    files: list[str]

    def string(self) -> str:
        """The closing summary text (``AMIs were created:\\nus-east-1: ami-...``)."""

    def state(self, name: str) -> Any:
        """Artifact state (``atlas.artifact.metadata``, ``generated_data`` ...), None when unknown."""

    def destroy(self) -> None:
        """Delete what the artifact is (deregister AMIs, delete snapshots / files)."""


@dataclass
class BuildEnv:
    """What a plugin may know about the build it serves."""

    #: Packer build name (JSON builder ``name``; HCL2 ``type.name`` or ``build.type.name``)
    build_name: str
    builder_type: str
    template_dir: Path
    ui: Ui
    cancel: threading.Event = field(default_factory=threading.Event)
    on_error: OnError = "cleanup"
    debug: bool = False
    force: bool = False
    #: one id per ``amibake build`` run; tagged on every resource amibake creates
    run_id: str = ""
    #: Packer's ``PACKER_RUN_UUID``: one per run, the same for all its builds (set by the core):
    #: ``{{ build `PackerRunUUID` }}``, the manifest's ``packer_run_uuid``, local processes' environment
    run_uuid: str = ""
    #: renders a late-interpolated string (``{{ .BuildRegion }}``...) with build data
    render: Callable[[str, Mapping[str, Any]], str] = lambda text, data: text
    #: values that must never be printed (sensitive variables, passwords, keys)
    secrets: list[str] = field(default_factory=list)
    #: the build's content fingerprint (:class:`amibake.fingerprint.Fingerprint`) without the inputs
    #: the builder resolves itself (the source AMI id); None when it is not known
    fingerprint: Any = None
    #: filled by the builder once its image is known: ``fingerprint`` (the digest its image is
    #: tagged with), ``breakdown`` (component -> short hash) and ``reused`` (True after a converge)
    image_fingerprint: dict[str, Any] = field(default_factory=dict)
    #: ``-skip-unchanged``: the manifest's custom_data carries the fingerprint's breakdown
    skip_unchanged: bool = False

    def add_secret(self, secret: str) -> None:
        """Make ``secret`` one of the run's secrets from now on (a password learnt during the build):
        the build's list (its own messages) and the run's redactor behind the build's Ui, which the
        console output of every provisioner and the debug log go through (it knew only the
        template's secrets when the run started)."""
        if not secret:
            return
        if secret not in self.secrets:
            self.secrets.append(secret)
        redact = getattr(getattr(self.ui, "console", None), "redact", None)
        add = getattr(redact, "add", None)
        if callable(add):
            add(secret)


#: the build data of an HTTP server the builder does not run (Packer's PopulateProvisionHookData)
HTTP_NOT_IMPLEMENTED: Mapping[str, str] = {
    "PackerHTTPIP": "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER",
    "PackerHTTPPort": "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER",
    "PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
}


class Hooks(Protocol):
    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        """Run the template's provisioners for this build. Raises on failure."""

    def cleanup_provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        """Run the ``error-cleanup-provisioner`` (after a failed provisioner)."""

    def has_checks(self) -> bool:
        """Whether ``-checks FILE`` gave this build checks (a builder whose spec says ``checks``
        then runs :meth:`run_checks` on a fresh instance of its image before distributing it)."""

    def run_checks(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        """Run the build's checks on the test instance; fetch their JUnit report when one is named.
        Raises when a check fails (or the report has failures or errors)."""


def provision(hooks: Hooks, comm: Communicator, build_data: Mapping[str, Any], env: BuildEnv, ui: Ui) -> None:
    """Packer's StepProvision for any builder: the template's provisioners, then the
    ``error-cleanup-provisioner`` when they fail (not with ``-on-error=abort``); the failure is raised."""
    try:
        hooks.provision(comm, build_data)
    except Exception:
        if env.on_error != "abort":
            try:
                hooks.cleanup_provision(comm, build_data)
            except Exception as exc:
                ui.error(f"error-cleanup-provisioner failed: {exc}")
        raise


def open_communicator(config: Any, host: str, *, password: str, ui: Ui,
                      cancel: threading.Event) -> Communicator:
    """Packer's StepConnect for a communicator other than SSH (``winrm``), chosen through the plugin
    registry: its implementation connects (and says Packer's messages) from the template's options,
    the machine's address and ``password`` (one the build retrieved, when the template sets none)."""
    from amibake import registry
    from amibake.errors import BuildError

    spec = registry.lookup("communicator", config.communicator)
    if spec is None or not spec.runnable:
        raise BuildError(f'communicator "{config.communicator}" cannot connect')
    comm: Communicator = spec.impl_class()(config, host, password=password, ui=ui, cancel=cancel)
    return comm


class Builder(Protocol):
    def __init__(self, config: Any, env: BuildEnv) -> None: ...

    def run(self, hooks: Hooks) -> Artifact | None:
        """Build; clean up every temporary resource before returning or raising."""


class NothingToReuse(Exception):
    """Raised by :meth:`ImageReuse.resolve` when this build makes no image (it simply builds)."""


@dataclass
class FoundImage:
    """An image that carries a content fingerprint (``-skip-unchanged``, ``amibake plan``)."""

    id: str
    region: str
    fingerprint: str
    #: RFC 3339, as the cloud reports it
    created: str


class ImageReuse(Protocol):
    """A builder's side of ``-skip-unchanged`` and ``amibake plan``: resolve the inputs only known
    at run time, find an image by fingerprint, converge it. Makes no instance."""

    def __init__(self, config: Any, env: BuildEnv) -> None: ...

    def resolve(self) -> dict[str, str]:
        """The fingerprint components resolved now, e.g. ``{"source AMI": "ami-0abc"}``."""

    def find(self, fingerprint: str, max_age: float | None) -> FoundImage | None:
        """The newest available image of the caller's own with ``fingerprint``, no older than
        ``max_age`` seconds (any age when None), in the build region."""

    def newest_of_build(self) -> FoundImage | None:
        """The newest fingerprinted image this build made (for ``plan``'s reasons)."""

    def converge(self, image: FoundImage, hooks: Hooks) -> Artifact:
        """Do the distribution steps still missing on ``image`` (copies, tags, sharing, deprecation);
        returns the artifact, marked reused."""

    def resources(self, image: FoundImage | None) -> list[str]:
        """What a build (``image`` None) or a converge of ``image`` would create or change."""


class Provisioner(Protocol):
    def __init__(self, config: Any, env: BuildEnv) -> None: ...

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None: ...


class PostProcessor(Protocol):
    def __init__(self, config: Any, env: BuildEnv) -> None: ...

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        """Returns (new artifact, keep the input artifact, force that choice)."""
