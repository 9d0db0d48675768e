"""Post-processors manifest, checksum, compress and shell-local, and FileArtifact."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.api import BuildEnv
from amibake.errors import BuildError
from amibake.postprocessors.checksum.postprocessor import ChecksumPostProcessor
from amibake.postprocessors.common import FileArtifact
from amibake.postprocessors.compress.postprocessor import (
    BgzfWriter,
    CompressPostProcessor,
    Scheme,
    compression_level,
    detect,
)
from amibake.postprocessors.manifest.postprocessor import (
    ManifestPostProcessor,
    append_build,
    build_entry,
    go_json,
    read_manifest,
)
from amibake.postprocessors.shell_local.postprocessor import ShellLocalPostProcessor
from amibake.provisioners.shell.provisioner import ExitCodeError
from tests.unit.test_provisioners_local import RecordingUi, make_env, render, shell_local_config


@dataclass
class AmiArtifact:
    """What an amazon builder returns: an id, no files."""

    id: str = "us-east-1:ami-0abc"
    builder_id: str = "mitchellh.amazonebs"
    files: list[str] = field(default_factory=list)
    generated: dict[str, Any] = field(default_factory=dict)
    destroyed: bool = False

    def string(self) -> str:
        return "AMIs were created:\nus-east-1: ami-0abc\n"

    def state(self, name: str) -> Any:
        return self.generated if name == "generated_data" and self.generated else None

    def destroy(self) -> None:
        self.destroyed = True


def manifest_config(**kw: Any) -> Any:
    base: dict[str, Any] = dict(output="", strip_path=False, strip_time=False, custom_data=None)
    base.update(kw)
    return SimpleNamespace(**base)


def env_for(build_name: str = "amazon-ebs", builder_type: str = "amazon-ebs", **kw: Any) -> BuildEnv:
    return make_env(build_name=build_name, builder_type=builder_type, run_id=kw.pop("run_id", "run-1"), **kw)


# -- manifest ------------------------------------------------------------------------------------


@pytest.mark.effect("post-processor/manifest", "output", "strip_time")
def test_manifest_of_an_ami_in_packers_format(tmp_path: Path) -> None:
    out = tmp_path / "manifest.json"
    pp = ManifestPostProcessor(manifest_config(output=str(out), strip_time=True), env_for())
    art = AmiArtifact()
    new, keep, force = pp.post_process(art)
    assert new is art and keep is True and force is True
    assert out.read_text() == (
        "{\n"
        '  "builds": [\n'
        "    {\n"
        '      "name": "amazon-ebs",\n'
        '      "builder_type": "amazon-ebs",\n'
        '      "files": null,\n'
        '      "artifact_id": "us-east-1:ami-0abc",\n'
        '      "packer_run_uuid": "run-1",\n'
        '      "custom_data": null\n'
        "    }\n"
        "  ],\n"
        '  "last_run_uuid": "run-1"\n'
        "}"
    )


@pytest.mark.effect("post-processor/manifest", "output", "strip_path", "custom_data")
def test_manifest_build_time_files_strip_path_and_custom_data(tmp_path: Path) -> None:
    f = tmp_path / "disk.img"
    f.write_bytes(b"12345")
    out = tmp_path / "m.json"
    config = manifest_config(
        output=str(out), strip_path=True, custom_data={"z": "last", "region": "{{ .BuildRegion }}"}
    )
    art = FileArtifact("x", files=[str(f), str(tmp_path / "missing")], id="the-id")
    art.states["generated_data"] = {"BuildRegion": "eu-west-1"}
    ManifestPostProcessor(config, env_for("b", "amazon-ebs")).post_process(art)
    (build,) = json.loads(out.read_text())["builds"]
    assert list(build) == [
        "name", "builder_type", "build_time", "files", "artifact_id", "packer_run_uuid", "custom_data"
    ]
    assert isinstance(build["build_time"], int) and build["build_time"] > 1_600_000_000
    assert build["files"] == [{"name": "disk.img", "size": 5}, {"name": "missing", "size": 0}]
    assert build["custom_data"] == {"region": "eu-west-1", "z": "last"}
    assert list(build["custom_data"]) == ["region", "z"]  # Go marshals maps sorted


def test_manifest_default_output_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ManifestPostProcessor(manifest_config(), env_for()).post_process(AmiArtifact())
    assert (tmp_path / "packer-manifest.json").exists()
    assert not [p for p in os.listdir(tmp_path) if p != "packer-manifest.json"]  # no lock or temp left


def test_manifest_appends_across_runs_and_force_restarts(tmp_path: Path) -> None:
    out = str(tmp_path / "m.json")
    ManifestPostProcessor(manifest_config(output=out), env_for("a", run_id="r1")).post_process(AmiArtifact())
    ManifestPostProcessor(manifest_config(output=out), env_for("b", run_id="r2")).post_process(AmiArtifact())
    builds, last = read_manifest(out)
    assert [b["name"] for b in builds] == ["a", "b"] and last == "r2"
    # -force in the same run keeps what this run wrote; a new forced run starts afresh
    ManifestPostProcessor(manifest_config(output=out), env_for("c", run_id="r2", force=True)).post_process(
        AmiArtifact()
    )
    assert [b["name"] for b in read_manifest(out)[0]] == ["a", "b", "c"]
    ManifestPostProcessor(manifest_config(output=out), env_for("d", run_id="r3", force=True)).post_process(
        AmiArtifact()
    )
    assert [b["name"] for b in read_manifest(out)[0]] == ["d"]


def test_manifest_existing_entries_are_read_as_packer_reads_them(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    out.write_text(json.dumps({
        "builds": [{"name": "old", "extra": 1, "build_time": 0, "files": [{"name": "f", "size": 3, "x": 1}]}],
        "last_run_uuid": "r0",
        "unknown": True,
    }))
    append_build(str(out), build_entry(name="n", builder_type="t", build_time=5, files=None,
                                        artifact_id="i", packer_run_uuid="r1", custom_data=None), "r1")
    doc = json.loads(out.read_text())
    assert list(doc) == ["builds", "last_run_uuid"]
    assert doc["builds"][0] == {
        "name": "old", "builder_type": "", "files": [{"name": "f", "size": 3}], "artifact_id": "",
        "packer_run_uuid": "", "custom_data": None,
    }
    assert doc["builds"][1]["build_time"] == 5


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"builds": {"a": 1}}'])
def test_manifest_corrupt_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    out = tmp_path / "m.json"
    out.write_text(content)
    with pytest.raises(BuildError, match=f"Unable to parse content from {out}"):
        ManifestPostProcessor(manifest_config(output=str(out)), env_for()).post_process(AmiArtifact())
    assert out.read_text() == content


def test_manifest_empty_existing_file_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    out.write_text("")
    ManifestPostProcessor(manifest_config(output=str(out)), env_for()).post_process(AmiArtifact())
    assert len(read_manifest(str(out))[0]) == 1


def test_manifest_keeps_file_mode(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    out.write_text("")
    os.chmod(out, 0o600)
    ManifestPostProcessor(manifest_config(output=str(out)), env_for()).post_process(AmiArtifact())
    assert os.stat(out).st_mode & 0o777 == 0o600


def test_manifest_concurrent_appends_from_threads(tmp_path: Path) -> None:
    out = str(tmp_path / "m.json")
    names = [f"par{i}" for i in range(24)]
    barrier = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def one(name: str) -> None:
        try:
            barrier.wait()
            ManifestPostProcessor(manifest_config(output=out), env_for(name)).post_process(AmiArtifact())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(b["name"] for b in read_manifest(out)[0]) == sorted(names)


def test_manifest_concurrent_appends_from_processes(tmp_path: Path) -> None:
    out = str(tmp_path / "m.json")
    code = (
        "import sys\n"
        "from amibake.postprocessors.manifest.postprocessor import append_build, build_entry\n"
        "for i in range(15):\n"
        "    e = build_entry(name=f'{sys.argv[2]}-{i}', builder_type='t', build_time=1,\n"
        "                    files=None, artifact_id='x', packer_run_uuid='r', custom_data=None)\n"
        "    append_build(sys.argv[1], e, 'r')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, out, f"p{n}"]) for n in range(3)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    names = [b["name"] for b in read_manifest(out)[0]]
    assert sorted(names) == sorted(f"p{n}-{i}" for n in range(3) for i in range(15))


def test_go_json_escapes_like_go() -> None:
    assert go_json({"a": "<b> & é\u2028"}) == '{\n  "a": "\\u003cb\\u003e \\u0026 é\\u2028"\n}'
    assert go_json({"a": [], "b": {}}) == '{\n  "a": [],\n  "b": {}\n}'


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4))
@settings(max_examples=50)
def test_go_json_round_trips(custom: dict[str, str]) -> None:
    entry = build_entry(name="n", builder_type="t", build_time=0, files=None, artifact_id="a",
                        packer_run_uuid="r", custom_data=custom)
    assert json.loads(go_json(entry))["custom_data"] == dict(sorted(custom.items()))


# -- checksum ------------------------------------------------------------------------------------


def checksum_config(**kw: Any) -> Any:
    base: dict[str, Any] = dict(checksum_types=None, output="")
    base.update(kw)
    return SimpleNamespace(**base)


def test_checksum_default_md5_and_output_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = tmp_path / "a.img"
    a.write_bytes(b"aaa")
    art = FileArtifact("x", files=[str(a)])
    new, keep, force = ChecksumPostProcessor(checksum_config(), env_for("b1", "null")).post_process(art)
    assert (keep, force) == (True, True)
    target = "packer_b1_null_md5.checksum"
    assert (tmp_path / target).read_text() == f"{hashlib.md5(b'aaa').hexdigest()}\ta.img\n"
    assert new.files == [str(a), target]
    assert new.id == "" and new.builder_id == "packer.post-processor.checksum"
    assert new.string() == f"Created artifact from files: {a}, {target}"


@pytest.mark.effect("post-processor/checksum", "checksum_types", "output")
def test_checksum_several_types_and_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B" * 3_000_000)
    out = str(tmp_path / "sums" / "{{.BuildName}}.{{.ChecksumType}}")
    pp = ChecksumPostProcessor(checksum_config(checksum_types=["sha256", "sha1"], output=out), env_for("bn"))
    new, _, _ = pp.post_process(FileArtifact("x", files=[str(a), str(b)]))
    sha256 = (tmp_path / "sums" / "bn.sha256").read_text().splitlines()
    assert sha256 == [
        f"{hashlib.sha256(b'A').hexdigest()}\ta",
        f"{hashlib.sha256(b'B' * 3_000_000).hexdigest()}\tb",
    ]
    assert (tmp_path / "sums" / "bn.sha1").read_text().startswith(hashlib.sha1(b"A").hexdigest())
    assert new.files == [str(a), str(b), str(tmp_path / "sums/bn.sha256"), str(tmp_path / "sums/bn.sha1")]
    new.destroy()
    assert not a.exists() and not (tmp_path / "sums" / "bn.sha1").exists()


def test_checksum_of_an_ami_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    new, keep, force = ChecksumPostProcessor(checksum_config(), env_for()).post_process(AmiArtifact())
    assert new.files == [] and (keep, force) == (True, True)
    assert os.listdir(tmp_path) == []


def test_checksum_unknown_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="Unrecognized checksum type: crc"):
        ChecksumPostProcessor(checksum_config(checksum_types=["crc"]), env_for()).post_process(AmiArtifact())
    config = checksum_config(output=str(tmp_path / "x"))
    with pytest.raises(BuildError, match="unable to open file"):
        ChecksumPostProcessor(config, env_for()).post_process(FileArtifact("x", files=[str(tmp_path / "no")]))


# -- compress ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "fmt", "scheme"),
    [
        ("test", "", Scheme("tar", "pgzip")),
        ("packer_{{.BuildName}}_{{.BuilderType}}", "", Scheme("tar", "pgzip")),
        ("test.zip", "", Scheme("zip", "")),
        ("test.tar", "", Scheme("tar", "")),
        ("test.lz4", "", Scheme("", "lz4")),
        ("test.tar.lz4", "", Scheme("tar", "lz4")),
        ("test.tar.gz", "", Scheme("tar", "pgzip")),
        ("test.gz", "", Scheme("", "pgzip")),
        ("test.zip.gz", "", Scheme("", "pgzip")),
        ("test.xz", "", Scheme("", "xz")),
        ("test.tar.bgzf", "", Scheme("tar", "bgzf")),
        ("test.unknown", "", Scheme("tar", "pgzip")),
        ("test", "tar.xz", Scheme("tar", "xz")),
    ],
)
def test_detect(output: str, fmt: str, scheme: Scheme) -> None:
    assert detect(output, fmt) == scheme


@pytest.mark.parametrize(("given_level", "level"), [(None, 6), (0, 6), (-1, 6), (1, 1), (9, 9), (42, 9)])
def test_compression_level(given_level: int | None, level: int) -> None:
    assert compression_level(given_level) == level


def test_compression_level_below_range() -> None:
    with pytest.raises(BuildError, match="Invalid compression level"):
        compression_level(-3)


def compress_config(**kw: Any) -> Any:
    base: dict[str, Any] = dict(output="", format="", compression_level=None)
    base.update(kw)
    return SimpleNamespace(**base)


def two_files(tmp_path: Path) -> list[str]:
    (tmp_path / "in").mkdir()
    a, b = tmp_path / "in" / "a.txt", tmp_path / "in" / "b.bin"
    a.write_text("hello")
    b.write_bytes(os.urandom(200_000))
    return [str(a), str(b)]


@pytest.mark.effect("post-processor/compress", "output")
def test_compress_tar_gz(tmp_path: Path) -> None:
    files = two_files(tmp_path)
    ui = RecordingUi()
    out = tmp_path / "out" / "{{.BuildName}}.tar.gz"
    pp = CompressPostProcessor(compress_config(output=str(out)), env_for("bn", ui=ui))
    new, keep, force = pp.post_process(FileArtifact("x", files=files))
    target = tmp_path / "out" / "bn.tar.gz"
    assert (keep, force) == (False, False)
    assert new.files == [str(target)] and new.string() == f"compressed artifacts in: {target}"
    assert new.builder_id == "packer.post-processor.compress"
    with tarfile.open(target, "r:gz") as tar:
        assert tar.getnames() == ["a.txt", "b.bin"]
        member = tar.extractfile("a.txt")
        assert member is not None and member.read() == b"hello"
    assert ui.of("say") == [
        f"Using pgzip compression with 1 cores for {target}",
        f"Tarring {target} with pgzip",
        f"Archive {target} completed",
    ]
    new.destroy()
    assert not target.exists()


def test_compress_zip(tmp_path: Path) -> None:
    files = two_files(tmp_path)
    target = tmp_path / "a.zip"
    ui = RecordingUi()
    CompressPostProcessor(compress_config(output=str(target)), env_for(ui=ui)).post_process(
        FileArtifact("x", files=files)
    )
    with zipfile.ZipFile(target) as zf:
        assert zf.namelist() == [f.lstrip("/") for f in files]
        assert zf.read(files[0].lstrip("/")) == b"hello"
    assert ui.of("say") == [f"Zipping {target}", f"Archive {target} completed"]


@pytest.mark.parametrize("ext", ["gz", "xz", "bgzf"])
def test_compress_single_file(tmp_path: Path, ext: str) -> None:
    src = tmp_path / "disk.raw"
    payload = os.urandom(70_000) + b"\0" * 100_000
    src.write_bytes(payload)
    target = tmp_path / f"disk.{ext}"
    ui = RecordingUi()
    config = compress_config(output=str(target), compression_level=1)
    CompressPostProcessor(config, env_for(ui=ui)).post_process(FileArtifact("x", files=[str(src)]))
    data = target.read_bytes()
    got = lzma.decompress(data) if ext == "xz" else gzip.decompress(data)
    assert got == payload
    assert f"Archiving {src} with" in ui.of("say")[1]


@pytest.mark.effect("post-processor/compress", "compression_level")
@pytest.mark.parametrize("output", ["c.tar.gz", "c.zip", "c.gz"])
def test_compression_level_changes_the_output(tmp_path: Path, output: str) -> None:
    src = tmp_path / "text.txt"
    src.write_bytes(b"".join(b"line %d of a compressible text %d\n" % (i, i * i % 97) for i in range(40_000)))
    sizes = {}
    for level in (1, 9):
        target = tmp_path / str(level) / output
        config = compress_config(output=str(target), compression_level=level)
        CompressPostProcessor(config, env_for()).post_process(FileArtifact("x", files=[str(src)]))
        sizes[level] = target.stat().st_size
    assert sizes[9] < sizes[1] * 0.9


@pytest.mark.effect("post-processor/compress", "format", "output")
def test_compress_format_picks_the_archive(tmp_path: Path) -> None:
    from amibake.postprocessors.compress.config import CompressConfig

    files = two_files(tmp_path)
    target = tmp_path / "artifact"
    CompressPostProcessor(CompressConfig(output=str(target), format="zip"), env_for()).post_process(
        FileArtifact("x", files=files)
    )
    with zipfile.ZipFile(target) as zf:
        assert zf.read(files[0].lstrip("/")) == b"hello"


def test_bgzf_blocks_are_bgzf() -> None:
    buf = io.BytesIO()
    w = BgzfWriter(buf, 6)
    w.write(b"x" * 100_000)
    w.close()
    data = buf.getvalue()
    assert data.endswith(BgzfWriter.EOF_BLOCK)
    assert data[12:16] == b"BC\x02\x00"
    bsize = int.from_bytes(data[16:18], "little") + 1
    assert gzip.decompress(data[:bsize]) == b"x" * BgzfWriter.BLOCK_INPUT
    assert gzip.decompress(data) == b"x" * 100_000
    assert gzip.decompress(BgzfWriter.EOF_BLOCK) == b""


def test_compress_of_an_ami_makes_an_empty_tar_gz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pp = CompressPostProcessor(compress_config(), env_for("b", "amazon-ebs"))
    new, _, _ = pp.post_process(AmiArtifact())
    assert new.files == ["packer_b_amazon-ebs"]
    with tarfile.open(tmp_path / "packer_b_amazon-ebs", "r:gz") as tar:
        assert tar.getnames() == []


def test_compress_without_archive_needs_one_file(tmp_path: Path) -> None:
    one_file = r"Can only have 1 input file when not using tar/zip\. Found 0 files: \[\]"
    with pytest.raises(BuildError, match=one_file):
        CompressPostProcessor(compress_config(output=str(tmp_path / "x.gz")), env_for()).post_process(
            AmiArtifact()
        )
    files = two_files(tmp_path)
    with pytest.raises(BuildError, match=r"Found 2 files: \[.*a\.txt .*b\.bin\]"):
        CompressPostProcessor(compress_config(output=str(tmp_path / "x.gz")), env_for()).post_process(
            FileArtifact("x", files=files)
        )


def test_compress_lz4_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="lz4 compression is not supported"):
        CompressPostProcessor(compress_config(output=str(tmp_path / "x.lz4")), env_for()).post_process(
            AmiArtifact()
        )


# -- shell-local post-processor ------------------------------------------------------------------


def test_shell_local_post_processor_sees_generated_data() -> None:
    ui = RecordingUi()
    art = AmiArtifact(generated={"SourceAMI": "ami-src"})
    config = shell_local_config(inline=["echo built from {{ .SourceAMI }} as $PACKER_BUILD_NAME"])
    new, keep, force = ShellLocalPostProcessor(config, env_for("bn", ui=ui)).post_process(art)
    assert new is art and (keep, force) == (True, True)
    assert ui.of("message") == ["built from ami-src as bn"]


def test_shell_local_post_processor_single_string_command_runs_through_sh() -> None:
    ui = RecordingUi()
    config = shell_local_config(inline=["true"], execute_command=["echo via-sh {{.Script}} | cut -c1-6"])
    ShellLocalPostProcessor(config, env_for(ui=ui)).post_process(AmiArtifact())
    assert ui.of("message") == ["via-sh"]


def test_shell_local_post_processor_failure() -> None:
    with pytest.raises(ExitCodeError):
        ShellLocalPostProcessor(shell_local_config(inline=["exit 5"]), env_for()).post_process(AmiArtifact())


# -- shell-local, as a provisioner and as a post-processor ----------------------------------------

SHELL_LOCAL = ("provisioner/shell-local", "post-processor/shell-local")


def run_shell_local(kind: str, ui: RecordingUi, **raw: Any) -> None:
    """Decode ``raw`` with the real config class of ``kind`` and run it on this machine."""
    from amibake.config.base import CheckContext, decode
    from amibake.postprocessors.shell_local.config import ShellLocalPostProcessorConfig
    from amibake.provisioners.shell_local.config import ShellLocalConfig
    from amibake.provisioners.shell_local.provisioner import ShellLocalProvisioner
    from tests.unit.test_provisioners_local import LocalComm

    cls = ShellLocalConfig if kind.startswith("provisioner") else ShellLocalPostProcessorConfig
    config, problems, _ = decode(cls, raw, CheckContext(template_dir=Path("."), key_path=""))
    assert config is not None and not problems, problems
    env = env_for("bn", ui=ui)
    if kind.startswith("provisioner"):
        ShellLocalProvisioner(config, env).provision(LocalComm(), {})
    else:
        ShellLocalPostProcessor(config, env).post_process(AmiArtifact())


def shell_local_problems(kind: str, **raw: Any) -> list[str]:
    from amibake.config.base import CheckContext, decode
    from amibake.postprocessors.shell_local.config import ShellLocalPostProcessorConfig
    from amibake.provisioners.shell_local.config import ShellLocalConfig

    cls = ShellLocalConfig if kind.startswith("provisioner") else ShellLocalPostProcessorConfig
    _, problems, _ = decode(cls, raw, CheckContext(template_dir=Path("."), key_path=""))
    return [p.message for p in problems]


@pytest.mark.effect("provisioner/shell-local", "inline", "inline_shebang", "environment_vars", "env")
@pytest.mark.effect("post-processor/shell-local", "inline", "inline_shebang", "environment_vars", "env")
@pytest.mark.parametrize("kind", SHELL_LOCAL)
def test_shell_local_inline_shebang_and_variables(kind: str) -> None:
    ui = RecordingUi()
    line = 'echo "$A|$B|${BASH_VERSION:+bash}"'
    run_shell_local(kind, ui, inline=[line], inline_shebang="/bin/bash -e", environment_vars=["A=a"],
                    env={"B": "b"})
    assert ui.of("message") == ["a|b|bash"]
    ui = RecordingUi()
    run_shell_local(kind, ui, inline=[line])  # the default shebang, /bin/sh -e, is not bash
    assert ui.of("message") == ["||"]


@pytest.mark.effect("provisioner/shell-local", "scripts", "valid_exit_codes")
@pytest.mark.effect("post-processor/shell-local", "scripts", "valid_exit_codes")
@pytest.mark.parametrize("kind", SHELL_LOCAL)
def test_shell_local_scripts_in_order_and_valid_exit_codes(kind: str, tmp_path: Path) -> None:
    one, two = tmp_path / "one.sh", tmp_path / "two.sh"
    one.write_text("#!/bin/sh\necho one\n")
    two.write_text("#!/bin/sh\necho two\nexit 3\n")
    for s in (one, two):
        s.chmod(0o755)
    ui = RecordingUi()
    run_shell_local(kind, ui, scripts=[str(one), str(two)], valid_exit_codes=[0, 3])
    assert ui.of("message") == ["one", "two"]
    with pytest.raises(ExitCodeError, match="exit status: 3"):
        run_shell_local(kind, RecordingUi(), scripts=[str(one), str(two)])


@pytest.mark.effect("provisioner/shell-local", "script", "env_var_format")
@pytest.mark.effect("post-processor/shell-local", "script", "env_var_format")
@pytest.mark.parametrize("kind", SHELL_LOCAL)
def test_shell_local_script_and_env_var_format(kind: str, tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text('#!/bin/sh\necho "[$FOO]"\n')
    script.chmod(0o755)
    ui = RecordingUi()
    run_shell_local(kind, ui, script=str(script), environment_vars=["FOO=bar"], env_var_format="%s='%s-fmt' ")
    assert ui.of("message") == ["[bar-fmt]"]


@pytest.mark.effect("provisioner/shell-local", "command", "execute_command")
@pytest.mark.effect("post-processor/shell-local", "command", "execute_command")
@pytest.mark.parametrize("kind", SHELL_LOCAL)
def test_shell_local_command_and_execute_command(kind: str) -> None:
    ui = RecordingUi()
    run_shell_local(kind, ui, command="echo from-command")
    assert ui.of("message") == ["from-command"]
    ui = RecordingUi()
    run_shell_local(kind, ui, command="echo x", execute_command=["/bin/sh", "-c", "echo exec:{{.Script}}"])
    (line,) = ui.of("message")
    assert line.startswith("exec:/")


@pytest.mark.effect("provisioner/shell-local", "only_on")
@pytest.mark.effect("post-processor/shell-local", "only_on")
@pytest.mark.parametrize("kind", SHELL_LOCAL)
def test_shell_local_only_on_both_kinds(kind: str) -> None:
    from amibake.provisioners.shell_local.provisioner import current_os

    ui = RecordingUi()
    other = "windows" if current_os() != "windows" else "linux"
    run_shell_local(kind, ui, inline=["exit 1"], only_on=[other])
    assert ui.of("say") == ["Skipping shell-local due to runtime OS"]
    ui = RecordingUi()
    run_shell_local(kind, ui, inline=["echo here"], only_on=[current_os()])
    assert ui.of("message") == ["here"]


@pytest.mark.effect("provisioner/shell-local", "tempfile_extension")
@pytest.mark.effect("post-processor/shell-local", "tempfile_extension")
@pytest.mark.parametrize("kind", SHELL_LOCAL)
def test_shell_local_tempfile_extension_both_kinds(kind: str) -> None:
    ui = RecordingUi()
    run_shell_local(kind, ui, inline=["true"], tempfile_extension=".cmd",
                    execute_command=["/bin/sh", "-c", "echo {{.Script}}"])
    (line,) = ui.of("message")
    assert line.endswith(".cmd")


@pytest.mark.effect("provisioner/shell-local", "use_linux_pathing")
@pytest.mark.effect("post-processor/shell-local", "use_linux_pathing")
@pytest.mark.parametrize("kind", SHELL_LOCAL)
def test_shell_local_use_linux_pathing_is_packers_error_off_windows(kind: str, tmp_path: Path) -> None:
    """Packer maps scripts' drive paths (C:/x) to WSL's /mnt/c/x; a path without a drive is an error."""
    script = tmp_path / "s.sh"
    script.write_text("true\n")
    assert shell_local_problems(kind, script=str(script)) == []
    assert shell_local_problems(kind, script=str(script), use_linux_pathing=True) == [
        "There was an error splitting your absolute path; expected to find a drive following the format "
        f"':/' but did not: absolute path: {script}"
    ]
    assert shell_local_problems(kind, inline=["true"], use_linux_pathing=True) == [
        "Packer is unable to use the Command and Inline features with the Windows Linux Subsystem. "
        "Please use the Script or Scripts options instead"
    ]


# -- FileArtifact --------------------------------------------------------------------------------


def test_file_artifact(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_text("x")
    f = tmp_path / "f"
    f.write_text("f")
    art = FileArtifact("b", files=[str(d), str(f), str(tmp_path / "gone")], id="i")
    assert art.string().startswith("Created artifact from files: ")
    assert art.state("anything") is None
    art.destroy()
    assert not d.exists() and not f.exists()


def test_render_stand_in_is_used(tmp_path: Path) -> None:
    data: Mapping[str, Any] = {"A": 1}
    assert render("x{{ .A }}y{{.A}}", data) == "x1y1"


def test_real_config_classes_drive_the_post_processors(tmp_path: Path) -> None:
    from amibake.postprocessors.checksum.config import ChecksumConfig
    from amibake.postprocessors.compress.config import CompressConfig
    from amibake.postprocessors.manifest.config import ManifestConfig
    from amibake.postprocessors.shell_local.config import ShellLocalPostProcessorConfig

    ui = RecordingUi()
    env = env_for("b", ui=ui)
    out = tmp_path / "m.json"
    ManifestPostProcessor(ManifestConfig(output=str(out)), env).post_process(AmiArtifact())
    assert json.loads(out.read_text())["builds"][0]["custom_data"] is None
    f = tmp_path / "f"
    f.write_text("f")
    sums = str(tmp_path / "{{.ChecksumType}}.sum")
    new, _, _ = ChecksumPostProcessor(ChecksumConfig(output=sums), env).post_process(
        FileArtifact("x", files=[str(f)])
    )
    assert (tmp_path / "md5.sum").exists()
    target = tmp_path / "c.tar.gz"
    CompressPostProcessor(CompressConfig(output=str(target)), env).post_process(new)
    with tarfile.open(target) as tar:
        assert tar.getnames() == ["f", "md5.sum"]
    pp_config = ShellLocalPostProcessorConfig(inline=["echo pp"])
    ShellLocalPostProcessor(pp_config, env).post_process(AmiArtifact())
    assert ui.of("message") == ["pp"]
