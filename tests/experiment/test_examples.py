"""devgrad.experiment.examples: the specs devgrad ships, found by name, listed and copied."""

from __future__ import annotations

import pytest

from devgrad.experiment import SpecError, resolve
from devgrad.experiment.errors import RunError
from devgrad.experiment.examples import EXAMPLES, copy_to, names, spec_file
from tests.support.run_helpers import ROOT, cli, cli_process


def test_the_package_ships_exactly_the_specs_of_experiments():
    source = {p.name: p.read_bytes() for p in (ROOT / "experiments").glob("*.yaml")}
    shipped = {p.name: p.read_bytes() for p in EXAMPLES.glob("*.yaml")}
    assert shipped == source, ("devgrad/examples/ must be a copy of experiments/: "
                               "cp experiments/*.yaml devgrad/examples/ (and remove what experiments/ no longer has)")


def test_a_bundled_spec_is_found_by_name_and_a_path_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert spec_file("triangle") == spec_file("triangle.yaml") == EXAMPLES / "triangle.yaml"
    assert resolve("triangle").name == "triangle"
    (tmp_path / "triangle").write_text("name: mine\ndata: {source: xor}\n")
    assert spec_file("triangle").resolve() == tmp_path / "triangle" and resolve("triangle").name == "mine"
    with pytest.raises(SpecError, match="did you mean 'triangle'"):
        spec_file("triangel")
    with pytest.raises(SpecError, match=r"give its name alone \(triangle\)"):
        spec_file("experiments/triangle.yaml")


def test_copy_writes_every_spec_and_never_overwrites_other_content(tmp_path):
    written = copy_to(tmp_path / "specs")
    assert sorted(p.stem for p in written) == names()
    assert copy_to(tmp_path / "specs") == written  # the same files again: nothing to refuse
    (tmp_path / "specs" / "xor.yaml").write_text("edited")
    with pytest.raises(RunError, match="xor.yaml already exists with other content; nothing was copied"):
        copy_to(tmp_path / "specs")
    assert (tmp_path / "specs" / "xor.yaml").read_text() == "edited"


@pytest.mark.slow
def test_devgrad_examples_lists_and_copies_and_run_takes_a_name(tmp_path):
    listed = cli("examples")
    assert listed.returncode == 0 and "triangle  " in listed.stdout and "devgrad run NAME" in listed.stdout
    copied = cli("examples", "--copy", tmp_path / "specs")
    assert copied.returncode == 0 and (tmp_path / "specs" / "triangle.yaml").exists()
    # a fresh process in another working folder: the name is found among the shipped specs from anywhere
    ran = cli_process("run", "xor", "--set", "train.epochs=1", "--set", "plots.enabled=false", "--out",
                      tmp_path / "runs", "-q", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert len(list((tmp_path / "runs" / "xor").iterdir())) == 1
    missing = cli("run", "triangel", "--out", tmp_path / "runs")
    assert missing.returncode == 2 and "did you mean 'triangle'" in missing.stderr and "Traceback" not in missing.stderr
