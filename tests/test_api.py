"""Conventions of the public API: typed, documented, at most two positional parameters."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = [
    "cikflow.acquisition",
    "cikflow.clustering",
    "cikflow.clustering.batch",
    "cikflow.clustering.labelling",
    "cikflow.clustering.model",
    "cikflow.clustering.sample",
    "cikflow.counts",
    "cikflow.counts.formulas",
    "cikflow.counts.harvest",
    "cikflow.counts.methods",
    "cikflow.counts.tables",
    "cikflow.evaluate",
    "cikflow.gating",
    "cikflow.gating.concrete",
    "cikflow.gating.model",
    "cikflow.gating.registry",
    "cikflow.intervals",
    "cikflow.io",
    "cikflow.io.config",
    "cikflow.io.status",
    "cikflow.io.release",
    "cikflow.io.samplesheet",
    "cikflow.panel",
    "cikflow.plotdata",
    "cikflow.preprocess",
    "cikflow.qc",
    "cikflow.realism",
    "cikflow.reference",
    "cikflow.release",
    "cikflow.report",
    "cikflow.report.figures",
    "cikflow.simulate",
    "cikflow.simulate_anomaly",
    "cikflow.simulate_presets",
    "cikflow.steps",
    "cikflow.steps.batch",
    "cikflow.steps.cluster",
    "cikflow.steps.demo",
    "cikflow.steps.export",
    "cikflow.steps.files",
    "cikflow.steps.gate",
    "cikflow.steps.provenance",
    "cikflow.steps.report",
    "cikflow.steps.summarize",
    "cikflow.summary",
    "cikflow.uncertainty",
    "cikflow.verify",
]


def _public_functions():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if inspect.isfunction(obj):
                yield pytest.param(obj, id=f"{name}.{attr}")


@pytest.mark.parametrize("func", list(_public_functions()))
def test_public_function_conventions(func):
    sig = inspect.signature(func)
    positional = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert len(positional) <= 2, f"{func.__qualname__}: {len(positional)} positional parameters"
    missing = [p.name for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not missing, f"{func.__qualname__}: unannotated {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, func.__qualname__
    assert func.__doc__, f"{func.__qualname__} has no docstring"
    for p in positional:
        assert p.annotation not in ("bool", bool), (
            f"{func.__qualname__}: positional boolean {p.name}"
        )


def test_all_lists_exist():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.{attr}"
