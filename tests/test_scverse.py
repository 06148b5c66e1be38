"""The scverse export: a batch's base events as an AnnData ``.h5ad`` file.

Needs the ``anndata`` extra (in ``.[test]``); without it the tests that read the file
skip with a reason, and the missing extra is a named error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from cikflow.exceptions import ExportError
from cikflow.io import read_json, read_status, read_table, sidecar_path
from cikflow.steps import export_h5ad, gate_file, simulate_demo

CAP = 1800  # between the two samples' base counts: one kept whole, one subsampled
CONFIG = {
    "panel": {"aliases": {"Viability": ["7-AAD"]}},
    "gating": {"min_events": 50},
    "export": {"h5ad_events_per_sample": CAP, "random_state": 3},
}
#: the default template's populations below its base; each is named like its gate
SUBSETS = ["T", "CIK", "CIK_CD16pos", "CIK_CD16neg", "NK", "NK_CD56bright", "NK_CD56dim"]


@pytest.fixture(scope="module")
def anndata():
    return pytest.importorskip("anndata", reason="the anndata extra is not installed")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, repo_dir):
    root = tmp_path_factory.mktemp("h5ad")
    sheet = simulate_demo(
        root / "data", n_batches=1, days=(0, 21), n_events=3000, fcs_prefix="data/"
    )
    shutil.copy(repo_dir / ".test" / "bad" / "not_fcs.fcs", root / "data" / "bad.fcs")
    rows = [*sheet.to_dict("records"), {"sample": "bad", "batch": "B01", "day": 7, "fcs": "x"}]
    rows[-1]["fcs"] = "data/bad.fcs"
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    dirs = []
    for row in rows:
        d = root / "results" / "samples" / row["sample"]
        gate_file(
            root / row["fcs"],
            template_path=template,
            out_dir=d,
            row=row,
            config=CONFIG,
            events_table=True,
        )
        dirs.append(d)
    return root, dirs, template


@pytest.fixture(scope="module")
def exported(anndata, batch):
    root, dirs, template = batch
    out = root / "results" / "batch" / "B01" / "events.h5ad"
    left_out = export_h5ad(dirs, template_path=template, out_path=out, batch="B01", config=CONFIG)
    return anndata.read_h5ad(out), out, left_out


def _base_events(sample_dir):
    gates = read_table(sample_dir / "gates.tsv").set_index("gate")["events"]
    return int(gates["lymphocytes"])


def test_one_row_per_kept_base_event_and_one_column_per_dimension(batch, exported):
    _, dirs, _ = batch
    adata, _, left_out = exported
    assert [r.split(":")[0] for r in left_out] == ["bad"]
    base = {d.name: _base_events(d) for d in dirs[:2]}
    assert min(base.values()) < CAP < max(base.values())  # both branches of min(base, cap)
    assert adata.n_obs == sum(min(n, CAP) for n in base.values())
    assert adata.obs["sample"].value_counts().to_dict() == {s: min(n, CAP) for s, n in base.items()}
    assert list(adata.obs["sample"].cat.categories) == ["B01_d00", "B01_d21"]
    assert list(adata.obs["batch"].cat.categories) == ["B01"]
    assert adata.obs.groupby("sample", observed=True)["day"].unique().map(list).to_dict() == {
        "B01_d00": [0],
        "B01_d21": [21],
    }
    columns = ["sample", "batch", "day", "event", *SUBSETS, "cluster", "phenotype"]
    assert list(adata.obs.columns) == columns
    panel = read_status(dirs[0] / "status.json").panel
    assert sorted(adata.var_names) == sorted(panel)
    assert adata.var["detector"].astype(str).to_dict() == panel
    assert adata.var.loc["CD3", "transform"] == "logicle"
    assert adata.var.loc["FSC-A", "transform"] == "none"
    fluorescence = {d: not d.startswith(("FSC", "SSC")) for d in panel}
    assert adata.var["compensated"].to_dict() == fluorescence
    assert adata.X.dtype == np.float32
    assert adata.layers["compensated"].shape == adata.shape


def test_populations_are_each_events_gate_membership(batch, exported):
    _, dirs, _ = batch
    adata, _, _ = exported
    for d in dirs[:2]:
        events = read_table(d / "events.tsv.gz")  # one row per file event, 0/1 per gate
        obs = adata.obs[adata.obs["sample"] == d.name]
        rows = obs["event"].to_numpy()
        assert len(np.unique(rows)) == len(rows)
        assert (events.loc[rows, "lymphocytes"] == 1).all()  # base events only
        assert (events.loc[rows, "qc_removed"] == 0).all()
        for pop in SUBSETS:
            assert (obs[pop].to_numpy() == (events.loc[rows, pop] == 1).to_numpy()).all(), pop
        if len(obs) == _base_events(d):  # kept whole: the gate step's counts exactly
            gates = read_table(d / "gates.tsv").set_index("gate")["events"]
            assert {p: int(obs[p].sum()) for p in SUBSETS} == {p: int(gates[p]) for p in SUBSETS}


def test_cluster_and_phenotype_are_the_sample_clusters(batch, exported):
    _, dirs, _ = batch
    adata, _, _ = exported
    for d in dirs[:2]:
        clusters = read_table(d / "clusters.tsv").set_index("cluster")
        obs = adata.obs[adata.obs["sample"] == d.name]
        named = clusters.loc[obs["cluster"].to_numpy(), "phenotype"].to_numpy()
        assert (obs["phenotype"].astype(str).to_numpy() == named).all()
        if len(obs) == _base_events(d):
            assert obs["cluster"].value_counts().sort_index().to_dict() == {
                k: int(n) for k, n in clusters["events"].items() if n
            }


def test_values_are_the_compensated_transformed_file_values(batch, exported):
    import flowkit as fk

    root, dirs, _ = batch
    adata, _, _ = exported
    sample = fk.Sample(str(root / "data" / "B01_d21.fcs"))
    sample.apply_compensation(sample.metadata["spillover"])
    comp = sample.get_events(source="comp")
    rows = adata.obs_names[adata.obs["sample"] == "B01_d21"]
    events = adata.obs.loc[rows, "event"].to_numpy()
    sub = adata[rows]
    for dim, detector in read_status(dirs[1] / "status.json").panel.items():
        expected = comp[events, sample.pnn_labels.index(detector)]
        got = sub.layers["compensated"][:, list(adata.var_names).index(dim)]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-2, err_msg=dim)
    logicle = fk.transforms.LogicleTransform(262144, 0.5, 4.5, 0)
    j = list(adata.var_names).index("CD3")
    np.testing.assert_allclose(
        sub.X[:, j], logicle.apply(sub.layers["compensated"][:, [j]].astype(float))[:, 0], atol=1e-6
    )
    k = list(adata.var_names).index("FSC-A")
    assert (sub.X[:, k] == sub.layers["compensated"][:, k]).all()


def test_uns_holds_template_transforms_and_the_provenance_of_the_sidecar(batch, exported):
    _, dirs, template = batch
    adata, out, _ = exported
    prov = json.loads(adata.uns["provenance"])
    assert prov == read_json(sidecar_path(out))
    gate_prov = read_json(sidecar_path(dirs[0] / "gates.tsv"))
    assert prov["inputs"]["fcs_B01_d00"]["sha256"] == gate_prov["inputs"]["fcs"]["sha256"]
    assert prov["parameters"]["h5ad_events_per_sample"] == CAP
    assert prov["parameters"]["left_out"][0].startswith("bad:")
    text = template.read_text()
    assert adata.uns["template"]["text"] == text
    assert adata.uns["template"]["sha256"] == hashlib.sha256(template.read_bytes()).hexdigest()
    assert adata.uns["transforms"]["CD56"]["name"] == "logicle"
    assert float(adata.uns["transforms"]["CD56"]["m"]) == 4.5
    assert adata.uns["transforms"]["SSC-A"]["type"] == "none"
    samples = adata.uns["samples"]
    assert {s: int(v["base_events"]) for s, v in samples.items()} == {
        d.name: _base_events(d) for d in dirs[:2]
    }


def test_same_inputs_same_content(anndata, batch, exported, tmp_path):
    _, dirs, template = batch
    adata, out, _ = exported
    again = tmp_path / "again.h5ad"
    export_h5ad(dirs, template_path=template, out_path=again, batch="B01", config=CONFIG)
    other = anndata.read_h5ad(again)
    np.testing.assert_array_equal(other.X, adata.X)
    pd.testing.assert_frame_equal(other.obs, adata.obs)
    pd.testing.assert_frame_equal(other.var, adata.var)
    assert other.uns["provenance"] == adata.uns["provenance"]
    assert again.read_bytes() == out.read_bytes()


def test_stale_gate_counts_are_refused(anndata, batch, tmp_path):
    _, dirs, template = batch
    copy = tmp_path / dirs[0].name
    shutil.copytree(dirs[0], copy)
    table = read_table(copy / "gates.tsv")
    table.loc[table["gate"] == "T", "events"] += 1
    table.to_csv(copy / "gates.tsv", sep="\t", index=False)
    with pytest.raises(ExportError, match="out of date"):
        export_h5ad([copy], template_path=template, out_path=tmp_path / "x.h5ad", config=CONFIG)


def test_without_anndata_a_named_error_says_how_to_install(batch, tmp_path, monkeypatch):
    _, dirs, template = batch
    monkeypatch.setitem(sys.modules, "anndata", None)  # import anndata now fails
    with pytest.raises(ExportError, match=r"pip install -e '\.\[anndata\]'"):
        export_h5ad(dirs, template_path=template, out_path=tmp_path / "x.h5ad", config=CONFIG)
    assert not (tmp_path / "x.h5ad").exists()
