"""``amibake build``: run the prepared builds in parallel, provision, post-process, summarise.

Packer's core, in one module: each build runs in its own thread; the builder calls back
:meth:`BuildHooks.provision` with its communicator; the post-processor chains then run on the
builder's artifact with Packer's ``keep_input_artifact`` rules; the closing summary lists the
artifacts of the successful builds. The library raises and returns: signals, exit status and
the debug log belong to the process, set up by the CLI (:mod:`amibake.cli.process`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from amibake import registry
from amibake.api import Artifact, BuildEnv, OnError
from amibake.communicator.base import Communicator
from amibake.core import PluginInstance, PreparedBuild, RunContext, late_keys, strings_in
from amibake.errors import AmibakeError, BuildError, InterpolationError, TemplateError
from amibake.ui.console import BuildUi, Console, human_duration


@dataclass
class BuildOptions:
    on_error: OnError = "cleanup"
    parallel_builds: int = 0
    debug: bool = False
    force: bool = False
    #: content fingerprints by build name (amibake.fingerprint); the AMIs are tagged with them
    fingerprints: dict[str, Any] = field(default_factory=dict)
    #: -skip-unchanged, -max-age, -force (amibake.reuse.SkipOptions); None: always build
    skip: Any = None


@dataclass
class BuildResult:
    name: str
    artifacts: list[Artifact] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


class BuildHooks:
    """What a builder calls back: the template's provisioners, run over its communicator."""

    def __init__(self, run: RunContext, build: PreparedBuild, env: BuildEnv) -> None:
        self.run = run
        self.build = build
        self.env = env

    def _config_for(self, inst: PluginInstance, build_data: Mapping[str, Any]) -> Any:
        """Render what was left for build time (``{{ .ID }}``, ``{{ build `Host` }}``) and decode again."""
        if not _has_action(inst.raw):
            return inst.config
        from amibake.config.base import CheckContext, decode
        from amibake.core import complete_build_data
        from amibake.template.interpolate import render_deep

        data = complete_build_data(self.build.type, build_data)
        ctx = self.run.interp(
            self.build.name, self.build.type, data=data, build_fn_data=data, keep_unknown_fields=True
        )
        late = late_keys(inst.block.kind, inst.type)
        try:
            raw = {k: (v if k in late else render_deep(v, ctx)) for k, v in inst.raw.items()}
        except InterpolationError as e:
            raise BuildError(f"{inst.block.key_path}: {e.message}") from None
        spec = registry.lookup(inst.block.kind, inst.type)
        assert spec is not None
        config, problems, _ = decode(
            spec.config_class(),
            raw,
            CheckContext(
                template_dir=self.run.template.template_dir,
                key_path=inst.block.key_path,
                key_pos=inst.block.key_pos,
                check_files=False,
                build_name=self.build.name,
            ),
        )
        if problems or config is None:
            raise TemplateError(problems)
        return config

    def _run_one(self, inst: PluginInstance, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        spec = registry.lookup(inst.block.kind, inst.type)
        impl = spec.impl_class() if spec else None
        if impl is None:
            raise BuildError(f"the {inst.type} provisioner is validated by amibake but cannot run yet")
        ui = self.env.ui
        if inst.pause_before:
            ui.say(f"Pausing {human_duration(inst.pause_before)} before the next provisioner...")
            if self.env.cancel.wait(inst.pause_before):
                raise BuildError("build cancelled")
        attempts = max(0, inst.block.max_retries) + 1
        for attempt in range(1, attempts + 1):
            config = self._config_for(inst, build_data)
            prov = impl(config, self.env)
            try:
                if inst.timeout:
                    _with_timeout(partial(prov.provision, comm, build_data), inst.timeout, inst.type)
                else:
                    prov.provision(comm, build_data)
                return
            except AmibakeError as e:
                if attempt == attempts or self.env.cancel.is_set():
                    raise
                ui.error(f"Provisioner failed ({e}); retrying ({attempt + 1} of {attempts})...")

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        for inst in self.build.provisioners:
            if self.env.cancel.is_set():
                _raise_cancelled()
            self._run_one(inst, comm, build_data)

    def cleanup_provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        if self.build.error_cleanup is None:
            return
        self.env.ui.say("Provisioning step had errors: Running the cleanup provisioner, if present...")
        self._run_one(self.build.error_cleanup, comm, build_data)

    def has_checks(self) -> bool:
        return bool(self.build.checks)

    def run_checks(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        from amibake.checkreport import fetch_report

        ui = self.env.ui
        failure: BaseException | None = None
        for i, inst in enumerate(self.build.checks, 1):
            if self.env.cancel.is_set():
                _raise_cancelled()
            ui.say(f"Running check {i} of {len(self.build.checks)} ({inst.type}, {inst.block.key_path})...")
            try:
                self._run_one(inst, comm, build_data)
            except AmibakeError as e:
                failure = e
                ui.error(f"Check {i} failed: {e}")
                break
        checks = self.build.checks_file
        if checks is not None and checks.junit_report and not self.env.cancel.is_set():
            summary = fetch_report(comm, checks.junit_report, Path(checks.junit_dir), self.build.name, ui)
            if failure is None and summary.failed:
                failure = BuildError(f"the checks' JUnit report has {summary.describe()}")
        if failure is not None:
            raise BuildError(f"the image failed its checks: {failure}") from None
        ui.say("All checks passed.")


def _raise_cancelled() -> None:
    raise BuildError("build cancelled")


def _with_timeout(fn: Any, seconds: float, what: str) -> None:
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            fn()
        except BaseException as e:
            box["err"] = e

    t = threading.Thread(target=target, daemon=True, name=f"provisioner-{what}")
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise BuildError(f"{what} provisioner timed out after {human_duration(seconds)}")
    if "err" in box:
        raise box["err"]


def _has_action(value: Any) -> bool:
    return any("{{" in s for s in strings_in(value))


class BuildRunner:
    def __init__(
        self, run: RunContext, builds: list[PreparedBuild], console: Console, options: BuildOptions
    ) -> None:
        self.run = run
        self.builds = builds
        self.console = console
        self.options = options
        self.cancel = threading.Event()
        self.console.redact.add(*run.secrets())

    def request_cancel(self) -> None:
        """Cancel every build: each stops at its next step and cleans up what it created, then
        :meth:`run_all` returns. What stops the process is the caller's (the CLI's) business."""
        self.cancel.set()

    def left_behind(self) -> list[str]:
        """What the run's journal says exists and was not removed."""
        from amibake.journal import Journal, load_run

        try:
            rec = load_run(Journal(self.run.run_id).path)
        except (OSError, ValueError):
            return []
        return [r.describe() for r in rec.live if not rec.keeps(r)]

    def log_secrets(self) -> list[str]:
        """Every secret of the run a debug log must mask: the sensitive variables and data source
        outputs, and the builds' SSH passwords."""
        secrets = list(self.run.secrets())
        for build in self.builds:
            for key in ("ssh_password", "ssh_bastion_password"):
                password = getattr(build.builder.config, key, "")
                if isinstance(password, str) and password:
                    secrets.append(password)
        return secrets

    def _render(self, build: PreparedBuild) -> Any:
        from amibake.core import complete_build_data
        from amibake.template.interpolate import render

        def render_late(text: str, data: Mapping[str, Any]) -> str:
            if "{{" not in text:
                return text
            ctx = self.run.interp(
                build.name, build.type, data=dict(data), build_fn_data=complete_build_data(build.type, data)
            )
            return render(text, ctx)

        return render_late

    def run_one(self, build: PreparedBuild, ui: BuildUi) -> BuildResult:
        start = time.monotonic()
        result = BuildResult(build.name)
        env = BuildEnv(
            build_name=build.name,
            builder_type=build.type,
            template_dir=self.run.template.template_dir,
            ui=ui,
            cancel=self.cancel,
            on_error=self.options.on_error,
            debug=self.options.debug,
            force=self.options.force,
            run_id=self.run.run_id,
            run_uuid=self.run.run_id,
            render=self._render(build),
            secrets=self.run.secrets(),
            fingerprint=self.options.fingerprints.get(build.name),
            skip_unchanged=bool(self.options.skip and self.options.skip.enabled),
        )
        try:
            spec = registry.lookup("builder", build.type)
            impl = spec.impl_class() if spec else None
            if impl is None:
                raise BuildError(f"the {build.type} builder is validated by amibake but cannot build yet")
            builder = impl(build.builder.config, env)
            hooks = BuildHooks(self.run, build, env)
            artifact = None
            if env.skip_unchanged:
                from amibake.reuse import try_reuse

                artifact = try_reuse(build.type, build.builder.config, env, hooks, self.options.skip)
            if artifact is None:
                artifact = builder.run(hooks)
            if artifact is not None:
                result.artifacts = self.post_process(build, artifact, env)
        except AmibakeError as e:
            result.error = str(e)
        except Exception as e:  # a bug: report it for this build, keep the others going
            result.error = f"internal error: {type(e).__name__}: {e}"
        result.seconds = time.monotonic() - start
        if result.error:
            self.console.error(
                f"Build '{build.name}' errored after {human_duration(result.seconds)}: {result.error}"
            )
        else:
            self.console.say(f"Build '{build.name}' finished after {human_duration(result.seconds)}.")
        return result

    def post_process(self, build: PreparedBuild, artifact: Artifact, env: BuildEnv) -> list[Artifact]:
        """Packer's rules: each sequence's last artifact is a result; the builder's artifact is kept when
        there are no post-processors or when the first post-processor of any sequence keeps its input;
        an intermediate artifact is destroyed unless the next post-processor keeps it."""
        artifacts: list[Artifact] = []
        keep_original = not build.post_processors
        for chain in build.post_processors:
            prior = artifact
            for i, inst in enumerate(chain):
                spec = registry.lookup("post-processor", inst.type)
                impl = spec.impl_class() if spec else None
                if impl is None:
                    raise BuildError(f"amibake validates {inst.type} post-processors but cannot run them yet")
                env.ui.say(f"Running post-processor: {inst.block.name or inst.type}")
                pp = impl(inst.config, replace(env))
                new, keep, force = pp.post_process(prior)
                user_keep = inst.block.keep_input_artifact
                if user_keep is not None:
                    if keep and force and not user_keep:
                        env.ui.message(
                            f"The {inst.type} post-processor forces keep_input_artifact=true to preserve the "
                            "build chain; keep_input_artifact=false is ignored"
                        )
                    else:
                        keep = user_keep
                if i == 0:
                    keep_original = keep_original or keep
                elif not keep:
                    env.ui.message(f"Deleting prior artifact from post-processor '{chain[i - 1].type}'")
                    prior.destroy()
                prior = new
            artifacts.append(prior)
        if keep_original:
            artifacts.insert(0, artifact)
        else:
            env.ui.say(f"Deleting original artifact for build '{build.name}'")
            artifact.destroy()
        return artifacts

    def run_all(self) -> list[BuildResult]:
        uis = {b.name: self.console.build_ui(b.name) for b in self.builds}
        if not self.console.machine:
            for b in self.builds:
                uis[b.name]._line("", "output will be in this color.", uis[b.name].color)
            self.console.say("")
        workers = self.options.parallel_builds or len(self.builds) or 1
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="build") as pool:
            futures = [pool.submit(self.run_one, b, uis[b.name]) for b in self.builds]
            results = [f.result() for f in futures]
        self.console.say(f"\n==> Wait completed after {human_duration(time.monotonic() - start)}")
        self.summary(results)
        return results

    def summary(self, results: list[BuildResult]) -> None:
        c = self.console
        failed = [r for r in results if r.error]
        if failed:
            c.say("\n==> Some builds didn't complete successfully and had errors:")
            for r in failed:
                c.say(f"--> {r.name}: {r.error}")
                c.machine_line(r.name, "error", r.error or "")
        artifacts = [(r.name, a) for r in results for a in r.artifacts]
        if not artifacts:
            c.say("\n==> Builds finished but no artifacts were created.")
            return
        c.say("\n==> Builds finished. The artifacts of successful builds are:")
        counts: dict[str, int] = {}
        for r in results:
            if r.artifacts:
                c.machine_line(r.name, "artifact-count", str(len(r.artifacts)))
        for name, a in artifacts:
            n = counts.get(name, 0)
            counts[name] = n + 1
            c.say(f"--> {name}: {a.string()}")
            c.machine_line(name, "artifact", str(n), "builder-id", a.builder_id)
            c.machine_line(name, "artifact", str(n), "id", a.id)
            c.machine_line(name, "artifact", str(n), "string", a.string())
            if getattr(a, "reused", False):
                c.machine_line(name, "artifact", str(n), "reused", "true")
            c.machine_line(name, "artifact", str(n), "files-count", str(len(a.files)))
            for i, f in enumerate(a.files):
                c.machine_line(name, "artifact", str(n), "file", str(i), f)
            c.machine_line(name, "artifact", str(n), "end")
