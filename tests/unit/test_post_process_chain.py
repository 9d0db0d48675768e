"""Packer's keep_input_artifact rules across post-processor sequences (amibake.build)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amibake.api import BuildEnv
from amibake.build import BuildOptions, BuildRunner
from amibake.core import load_template, prepare_builds
from amibake.postprocessors.common import FileArtifact
from amibake.ui.console import Console


class RecUi:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, m: str) -> None:
        self.lines.append(m)

    message = error = say

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def ask(self, q: str) -> str:
        return ""


def run_chain(tmp_path: Path, post_processors: list[Any]) -> tuple[list[Any], FileArtifact, RecUi]:
    doc = {
        "builders": [
            {
                "type": "amazon-ebs",
                "name": "b",
                "region": "us-east-1",
                "source_ami": "ami-12345678",
                "instance_type": "t2.micro",
                "ssh_username": "u",
                "ami_name": "x-{{timestamp}}",
            }
        ],
        "post-processors": post_processors,
    }
    (tmp_path / "t.json").write_text(json.dumps(doc))
    run = load_template(tmp_path / "t.json")
    (build,) = prepare_builds(run)[0]
    original = tmp_path / "disk.img"
    original.write_bytes(b"image")
    artifact = FileArtifact(builder_id="test.builder", files=[str(original)], id="disk")
    ui = RecUi()
    env = BuildEnv(build_name="b", builder_type="amazon-ebs", template_dir=tmp_path, ui=ui)
    runner = BuildRunner(run, [build], Console(), BuildOptions())
    return runner.post_process(build, artifact, env), artifact, ui


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_no_post_processors_keeps_the_original(tmp_path: Path) -> None:
    results, original, _ = run_chain(tmp_path, [])
    assert results == [original]
    assert Path(original.files[0]).exists()


def test_compress_alone_deletes_the_original(tmp_path: Path) -> None:
    results, original, ui = run_chain(tmp_path, [{"type": "compress", "output": "out.tar.gz"}])
    assert len(results) == 1 and results[0] is not original
    assert not Path(original.files[0]).exists()
    assert "Deleting original artifact for build 'b'" in ui.lines
    assert (tmp_path / "out.tar.gz").exists()


def test_keep_input_artifact_true_keeps_it(tmp_path: Path) -> None:
    pp = [{"type": "compress", "output": "out.tar.gz", "keep_input_artifact": True}]
    results, original, _ = run_chain(tmp_path, pp)
    assert results[0] is original and len(results) == 2
    assert Path(original.files[0]).exists()


def test_manifest_forces_keep_even_when_told_false(tmp_path: Path) -> None:
    pp = [{"type": "manifest", "output": "m.json", "keep_input_artifact": False}]
    results, original, ui = run_chain(tmp_path, pp)
    # Packer lists the kept original, then the sequence's last artifact (the same one)
    assert results == [original, original]
    assert Path(original.files[0]).exists()
    assert any("forces keep_input_artifact=true" in line for line in ui.lines)


def test_sequence_destroys_intermediate_unless_kept(tmp_path: Path) -> None:
    pp = [[{"type": "compress", "output": "mid.tar.gz"}, {"type": "compress", "output": "last.tar.gz"}]]
    results, original, ui = run_chain(tmp_path, pp)
    assert not Path(original.files[0]).exists()  # the first compress does not keep the original
    assert not (tmp_path / "mid.tar.gz").exists()  # compress does not keep its input
    assert (tmp_path / "last.tar.gz").exists()
    assert len(results) == 1
    assert "Deleting prior artifact from post-processor 'compress'" in ui.lines


def test_one_sequence_keeping_the_original_is_enough(tmp_path: Path) -> None:
    pp = [{"type": "compress", "output": "a.tar.gz"}, {"type": "manifest", "output": "m.json"}]
    results, original, _ = run_chain(tmp_path, pp)
    assert results[0] is original
    assert Path(original.files[0]).exists()
