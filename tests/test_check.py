"""``cikflow check`` and the same check at workflow start: template markers against files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cikflow.check import check_clustering_markers, check_inputs, marker_problems
from cikflow.cli import main
from cikflow.exceptions import ConfigError
from cikflow.io import read_template
from cikflow.io.config import read_config
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


@pytest.fixture
def run_dir(repo_dir, tmp_path):
    """A workflow directory: config, sheet, two simulated files, the default templates."""
    shutil.copytree(repo_dir / "config" / "gating", tmp_path / "gating")
    shutil.copytree(repo_dir / "config" / "release", tmp_path / "release")
    config = yaml.safe_load((repo_dir / ".test" / "config" / "config.yaml").read_text())
    config.update(
        samples="config/samples.tsv",
        template="gating/cik_default.yaml",
        release_spec="release/default.yaml",
    )
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    batches = simulate_batches(n_batches=1, days=(0, 7), n_events=500, seed=2)
    sheet = write_simulated(batches, tmp_path / "data", fcs_prefix="data/")
    sheet.to_csv(tmp_path / "config" / "samples.tsv", sep="\t", index=False)
    return tmp_path


def _misspell(run_dir: Path, old: str, new: str) -> None:
    path = run_dir / "gating" / "cik_default.yaml"
    path.write_text(path.read_text().replace(f"{old}:", f"{new}:"))


def test_consistent_inputs_pass(run_dir, capsys):
    assert main(["check", "--directory", str(run_dir)]) == 0
    assert "check passed: 0 errors, 0 warnings" in capsys.readouterr().err


def test_marker_typo_in_the_template_is_caught(run_dir, capsys):
    _misspell(run_dir, "CD16", "CD61")
    assert main(["check", "--directory", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "error: gating/cik_default.yaml: marker 'CD61' is in none of the 2 files" in err
    assert "(did you mean 'CD16'?)" in err


def test_workflow_stops_before_any_job_on_a_template_marker_typo(repo_dir, run_dir):
    _misspell(run_dir, "CD16", "CD61")
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(repo_dir / "Snakefile"), "--directory", str(run_dir), "-n"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "marker 'CD61' is in none of the 2 files (did you mean 'CD16'?)" in output
    assert "Traceback" not in output


def test_a_file_lacking_a_marker_is_a_warning_naming_the_file(repo_dir):
    config = read_config(repo_dir / ".test" / "config" / "config.yaml")
    problems = check_inputs(config, base_dir=repo_dir / ".test")
    by_file = {p.where: p for p in problems}
    assert not any(p.fatal for p in problems)
    assert "marker 'CD56'" in by_file["bad/no_cd56.fcs"].message
    assert "this sample will fail" in by_file["bad/no_cd56.fcs"].message
    assert "unreadable keywords" in by_file["bad/not_fcs.fcs"].message


def test_an_alias_resolves_a_marker_and_a_bad_override_is_named():
    panels = {"a.fcs": (["FL1-A", "FL2-A"], ["CD3", "NK1/1"])}
    assert marker_problems(dims=["NK1.1"], panels=panels, aliases={"NK1.1": ["NK1/1"]}) == []
    (problem,) = marker_problems(dims=["CD3"], panels=panels, overrides={"CD3": "FL9-A"})
    assert problem.where == "a.fcs"
    assert "names no detector" in problem.message


def test_a_template_carries_its_own_aliases(shared_data, repo_dir):
    """flowsom_68983.yaml declares NK1.1 = 'NK1/1': no config alias is needed."""
    import warnings

    from cikflow.gating import gate_fcs
    from cikflow.io import read_fcs, read_template

    template = read_template(repo_dir / "config" / "gating" / "flowsom_68983.yaml")
    assert template.aliases == {"NK1.1": ["NK1/1"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fcs = read_fcs(shared_data / "flowsom-68983" / "68983.fcs")
    outcome = gate_fcs(fcs, template)  # no aliases passed
    assert outcome.channel_map["NK1.1"] == "PE-A"


def test_a_panel_without_the_marker_gets_no_misleading_suggestion():
    """Aurora-like panel: no CD56, but CD16 (another template marker) and CD26, CD69."""
    panels = {"a.fcs": (["B1-A", "B2-A", "B3-A", "B4-A"], ["CD3", "CD16", "CD26", "CD69"])}
    (problem,) = marker_problems(dims=["CD3", "CD16", "CD56"], panels=panels)
    assert problem.fatal
    assert problem.message.startswith("marker 'CD56' is in none of the 1 files; fix")


def _with_clustering_markers(run_dir: Path, template: str, markers: list[str]) -> None:
    path = run_dir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config.update(
        template=template, clustering={**config.get("clustering", {}), "markers": markers}
    )
    path.write_text(yaml.safe_dump(config))


def test_clustering_markers_the_template_lacks_are_named_with_what_it_has(repo_dir):
    template = read_template(repo_dir / "config" / "gating" / "flowsom_68983.yaml")
    with pytest.raises(ConfigError) as err:
        check_clustering_markers({"markers": ["CD3", "CD16", "CD56"]}, template=template)
    message = str(err.value)
    assert message.startswith("clustering.markers: 'CD16' is not a dimension of template")
    assert "(it has FSC-A, SSC-A, FSC-W, FSC-H, SSC-W, SSC-H, CD3, NK1.1)" in message
    check_clustering_markers({"markers": ["CD3", "NK1.1"]}, template=template)


def test_a_gate_below_the_base_on_an_unclustered_marker_is_named(repo_dir):
    template = read_template(repo_dir / "config" / "gating" / "cik_default.yaml")
    check_clustering_markers({"markers": ["CD3", "CD16", "CD56"]}, template=template)
    check_clustering_markers(None, template=template)  # the default markers
    with pytest.raises(ConfigError, match=r"lack 'CD16', used by gate 'CIK_CD16pos' below"):
        check_clustering_markers({"markers": ["CD3", "CD56"]}, template=template)


def test_check_and_the_workflow_stop_on_clustering_markers_the_template_lacks(
    repo_dir, run_dir, capsys
):
    _with_clustering_markers(run_dir, "gating/cik_default.yaml", ["CD3", "CD16", "CD56", "CD8"])
    assert main(["check", "--directory", str(run_dir)]) == 2
    expected = "clustering.markers: 'CD8' is not a dimension of template 'gating/cik_default.yaml'"
    assert f"error: gating/cik_default.yaml: {expected}" in capsys.readouterr().err
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(repo_dir / "Snakefile"), "--directory", str(run_dir), "-n"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"cikflow ConfigError: {expected}" in output
    assert "Traceback" not in output


GATINGML = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML
    xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
<gating:RectangleGate gating:id="Lymph"><gating:dimension gating:compensation-ref="uncompensated"
 gating:min="20000" gating:max="200000"><data-type:fcs-dimension data-type:name="FSC-A"/>
</gating:dimension></gating:RectangleGate>
</gating:Gating-ML>
"""


def test_release_spec_against_a_gatingml_templates_gates(run_dir, capsys):
    """A GatingML template reports its gates: a criterion on any other population is named."""
    (run_dir / "gating" / "lymph.xml").write_text(GATINGML)
    config_path = run_dir / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["template"] = "gating/lymph.xml"
    config_path.write_text(yaml.safe_dump(config))
    assert read_template(run_dir / "gating" / "lymph.xml").reported == ["Lymph"]
    assert main(["check", "--directory", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "criterion 'dose_CIK': unknown metric 'CIK_cells_per_kg'" in err
