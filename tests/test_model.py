"""The gate model: one class per kind, checked by hand and against flowkit; the method registry."""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from typing import ClassVar

import flowkit as fk
import numpy as np
import pandas as pd
import pytest
import yaml

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.imported import from_flowkit
from cikflow.gating.model import (
    KINDS,
    BooleanGate,
    Gate,
    Outline,
    PolygonGate,
    QuadrantGate,
    RangeGate,
    SplitQuadrantGate,
    from_spec,
    identity_scale,
)
from cikflow.gating.registry import METHODS, get_method

# five points on two dimensions (transformed units)
A = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
B = np.array([4.0, 3.0, 2.0, 1.0, 0.0])
ALL = np.ones(5, dtype=bool)


def _dimension(dim, lo, hi):
    return fk.Dimension(dim, compensation_ref="uncompensated", range_min=lo, range_max=hi)


def _divider(div_id, dim, value):
    return fk.QuadrantDivider(div_id, dim, "uncompensated", [value])


def _flowkit_members(gate: Gate) -> dict[str, np.ndarray]:
    """Membership by flowkit's own gate ``apply`` (the independent reference)."""
    fk_gate = gate.to_flowkit(dimension=_dimension, divider=_divider, paths={})
    result = fk_gate.apply(pd.DataFrame({"a": A, "b": B}))
    if isinstance(result, dict):
        return {k: np.asarray(v, dtype=bool) for k, v in result.items()}
    return {gate.name: np.asarray(result, dtype=bool)}


def test_range_minimum_inclusive_maximum_exclusive():
    gate = RangeGate("g", "root", bounds=(("a", 1.0, 3.0),))
    got = gate.members({"a": A}, parent=ALL, populations={})["g"]
    np.testing.assert_array_equal(got, [False, True, True, False, False])
    np.testing.assert_array_equal(_flowkit_members(gate)["g"], got)


def test_range_within_parent_and_complement():
    gate = RangeGate("g", "root", complement=True, bounds=(("a", 1.0, 3.0),))
    parent = np.array([True, True, False, True, True])
    got = gate.members({"a": A}, parent=parent, populations={})["g"]
    np.testing.assert_array_equal(got, [True, False, False, True, True])


def test_quadrants_by_hand_and_by_flowkit():
    gate = QuadrantGate(
        "q", "root", xdim="a", ydim="b", x=2.0, y=2.0,
        quadrants=(("pp", "++"), ("pm", "+-"), ("mp", "-+"), ("mm", "--")),
    )  # fmt: skip
    got = gate.members({"a": A, "b": B}, parent=ALL, populations={})
    # a ≥ 2 for points 2, 3, 4; b ≥ 2 for points 0, 1, 2
    np.testing.assert_array_equal(got["pp"], [False, False, True, False, False])
    np.testing.assert_array_equal(got["pm"], [False, False, False, True, True])
    np.testing.assert_array_equal(got["mp"], [True, True, False, False, False])
    assert not got["mm"].any()
    reference = _flowkit_members(gate)
    for quad, _ in gate.quadrants:
        np.testing.assert_array_equal(reference[quad], got[quad], err_msg=quad)
    assert [p for p, _ in gate.populations()] == ["pp", "pm", "mp", "mm"]


def test_polygon_by_hand_and_by_flowkit():
    # triangle (0.5, 0.5) – (3.5, 0.5) – (3.5, 2.5): its slanted edge passes y = 1.5 at x = 2
    # and y ≈ 2.17 at x = 3, so of the five points only (3, 1) is inside
    gate = PolygonGate(
        "p", "root", xdim="a", ydim="b", vertices=((0.5, 0.5), (3.5, 0.5), (3.5, 2.5))
    )
    got = gate.members({"a": A, "b": B}, parent=ALL, populations={})["p"]
    np.testing.assert_array_equal(got, [False, False, False, True, False])
    np.testing.assert_array_equal(_flowkit_members(gate)["p"], got)


def test_boolean_within_parent():
    x = np.array([True, True, False, False, True])
    y = np.array([True, False, True, False, True])
    parent = np.array([True, True, True, True, False])
    expect = {
        "and": [True, False, False, False, False],
        "or": [True, True, True, False, False],
    }
    for op, want in expect.items():
        gate = BooleanGate("b", "root", op=op, of=("x", "y"))
        got = gate.members({}, parent=parent, populations={"x": x, "y": y})["b"]
        np.testing.assert_array_equal(got, want, err_msg=op)
    gate = BooleanGate("b", "root", op="not", of=("x",))
    got = gate.members({}, parent=parent, populations={"x": x})["b"]
    np.testing.assert_array_equal(got, [False, False, True, True, False])


@pytest.mark.parametrize(
    "gate",
    [
        RangeGate("r", "root", bounds=(("a", 1.0, None),)),
        RangeGate("r", "root", complement=True, bounds=(("a", None, 2.5),)),
        PolygonGate("p", "root", xdim="a", ydim="b", vertices=((0, 0), (1, 0), (1, 1))),
        QuadrantGate(
            "q",
            "root",
            xdim="a",
            ydim="b",
            x=1.5,
            y=2.5,
            quadrants=(("one", "++"), ("two", "-+"), ("three", "+-"), ("four", "--")),
        ),
    ],
    ids=["range", "range-complement", "polygon", "quadrant"],
)
def test_flowkit_round_trip(gate):
    fk_gate = gate.to_flowkit(dimension=_dimension, divider=_divider, paths={})
    assert from_flowkit(fk_gate, parent="root") == gate


def test_thresholds_move_only_the_fitted_side():
    gate = RangeGate("r", "root", bounds=(("a", 1.0, None),))
    (t,) = gate.thresholds()
    assert (t.dimension, t.value, t.side) == ("a", 1.0, "min")
    assert gate.with_thresholds({"a": 2.5}).bounds == (("a", 2.5, None),)
    # two finite bounds: no single divider to move
    assert RangeGate("r", "root", bounds=(("a", 1.0, 2.0),)).thresholds() == []
    quad = QuadrantGate("q", "root", xdim="a", ydim="b", x=1.0, y=2.0, quadrants=(("z", "++"),))
    assert quad.with_thresholds({"b": 3.0}).thresholds()[1].value == 3.0


def test_outlines_fill_open_bounds_from_the_axes():
    one_d = RangeGate("CD16pos", "root", bounds=(("a", 2.0, None),)).outline([(0.0, 4.0)])
    assert one_d.marks == [2.0]
    assert one_d.spans == [(2.0, 4.0)]
    assert one_d.labels == [("CD16pos", 0.75, 0.95)]  # middle of [2, 4] on a 0–4 axis
    box = RangeGate("r", "root", bounds=(("a", None, 1.0), ("b", 2.0, None)))
    assert box.outline([(0.0, 4.0), (-1.0, 5.0)]).paths == [
        ([0.0, 1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 5.0, 5.0, 2.0])
    ]
    assert BooleanGate("b", "root", op="and", of=("x",)).outline([]) == Outline()


def test_spec_is_converted_with_the_scale():
    spec = {"name": "v", "parent": "root", "type": "range", "dimensions": {"CD3": {"min": 100}}}
    gate = from_spec(spec, scale=lambda dim, v: np.log10(np.asarray(v, dtype=float)))
    assert gate.bounds == (("CD3", 2.0, None),)
    bad = {"name": "n", "parent": "root", "type": "boolean", "op": "not", "of": ["a", "b"]}
    with pytest.raises(GatingTemplateError, match="'not' takes one gate"):
        from_spec(bad, scale=identity_scale)


def _schema(name):
    return yaml.safe_load(resources.files("cikflow").joinpath(f"schemas/{name}").read_text())


def test_schema_enums_follow_the_registry_and_the_kinds():
    gate = _schema("template.schema.yaml")["$defs"]["gate"]["properties"]
    divider = _schema("template.schema.yaml")["$defs"]["divider"]["properties"]
    imported = _schema("import_template.schema.yaml")["properties"]["overrides"]
    assert gate["method"]["enum"] == list(METHODS)
    assert gate["type"]["enum"] == list(KINDS)
    assert divider["method"]["enum"] == [m.name for m in METHODS.values() if m.divider]
    override = imported["additionalProperties"]["properties"]["method"]["enum"]
    assert override == [m.name for m in METHODS.values() if m.imported]
    for method in METHODS.values():
        assert set(method.kinds) <= set(KINDS), method.name
        # every parameter the registry knows is one a template may write
        assert set(method.defaults) <= set(gate["params"]["properties"]), method.name


def test_registry_names_the_gate_and_what_is_wrong():
    with pytest.raises(GatingTemplateError, match="gate 'x': method 'blob' needs a polygon gate"):
        get_method("blob", kind="range", where="gate 'x'")
    with pytest.raises(GatingTemplateError, match="'beads' is not one of valley"):
        get_method("beads", kind="rectangle", where="override 'y'", imported=True)
    with pytest.raises(GatingTemplateError, match=r"needs params\.search"):
        METHODS["valley"].params({}, where="gate 'z'")
    assert METHODS["valley"].params({"search": [1, 2]}, where="")["bandwidth"] == 0.012


@dataclass(frozen=True)
class EllipseGate(Gate):
    """A new gate kind written outside the package: the ellipse exercise."""

    xdim: str = ""
    ydim: str = ""
    centre: tuple[float, float] = (0.0, 0.0)
    radii: tuple[float, float] = (1.0, 1.0)
    kind: ClassVar[str] = "ellipse"

    @property
    def dims(self):
        return (self.xdim, self.ydim)

    def members(self, values, *, parent, populations):
        u = (values[self.xdim] - self.centre[0]) / self.radii[0]
        v = (values[self.ydim] - self.centre[1]) / self.radii[1]
        return {self.name: parent & (u**2 + v**2 <= 1)}

    def outline(self, extent):
        t = np.linspace(0, 2 * np.pi, 65)
        x = self.centre[0] + self.radii[0] * np.cos(t)
        y = self.centre[1] + self.radii[1] * np.sin(t)
        return Outline(paths=[(list(x), list(y))])


def test_a_new_kind_plugs_into_the_cluster_labelling(monkeypatch):
    """An ellipse kind, registered in one place, labels clusters with no other change."""
    from cikflow.clustering import label_clusters
    from cikflow.gating import model
    from cikflow.gating.template import Template

    def read(spec, scale):
        xd, yd = spec["dimensions"]
        (cx, cy), (rx, ry) = spec["centre"], spec["radii"]
        tx, ty = scale(xd, [cx, cx + rx]), scale(yd, [cy, cy + ry])
        return EllipseGate(
            spec["name"], spec["parent"], xdim=xd, ydim=yd,
            centre=(tx[0], ty[0]), radii=(tx[1] - tx[0], ty[1] - ty[0]),
        )  # fmt: skip

    monkeypatch.setattr(model, "KINDS", dict(model.KINDS))  # registered for this test only
    monkeypatch.setattr(model, "_FROM_SPEC", dict(model._FROM_SPEC))
    model.register(EllipseGate, spec=read)
    spec = {
        "gates": [
            {"name": "base", "parent": "root", "type": "range", "dimensions": {"a": {"min": 0}}},
            {
                "name": "blob",
                "parent": "base",
                "type": "ellipse",
                "dimensions": ["a", "b"],
                "centre": [1.0, 1.0],
                "radii": [0.5, 0.5],
            },
        ],
        "base": "base",
        "populations": {"Blob": "blob"},
        "transforms": {"lin": {"type": "linear", "t": 10, "a": 0}},
        "default_transform": "lin",
        "channels": {},
    }
    template = Template("t", "1", "yaml", spec)
    # cluster 0 sits at (1, 1) in data units, cluster 1 at (3, 3): linear t=10 → /10
    values = np.array([[0.1, 0.1], [0.1, 0.1], [0.3, 0.3], [0.3, 0.3]])
    labels = np.array([0, 0, 1, 1])
    out = label_clusters(values, labels, template=template, markers=["a", "b"])
    assert out.phenotypes == ["Blob", "other"]


QUADS = (("pp", "++"), ("pm", "+-"), ("mp", "-+"), ("mm", "--"))


def test_split_quadrants_by_hand_and_by_flowkit():
    # y divided at 3.5 within a < 2 (points 0, 1) and at 0.5 within a ≥ 2 (points 2, 3, 4)
    gate = SplitQuadrantGate("q", "root", xdim="a", ydim="b", x=2.0, y=0.5, y_xneg=3.5,
                             quadrants=QUADS)  # fmt: skip
    got = gate.members({"a": A, "b": B}, parent=ALL, populations={})
    # b = 4, 3 on the a− side: only point 0 reaches 3.5; b = 2, 1, 0 on the a+ side: 2 and 3
    np.testing.assert_array_equal(got["mp"], [True, False, False, False, False])
    np.testing.assert_array_equal(got["mm"], [False, True, False, False, False])
    np.testing.assert_array_equal(got["pp"], [False, False, True, True, False])
    np.testing.assert_array_equal(got["pm"], [False, False, False, False, True])
    rects = gate.to_flowkit(dimension=_dimension, divider=_divider, paths={})
    assert [type(r).__name__ for r in rects] == ["RectangleGate"] * 4  # plain GatingML
    frame = pd.DataFrame({"a": A, "b": B})
    for rect in rects:
        np.testing.assert_array_equal(
            np.asarray(rect.apply(frame), dtype=bool), got[rect.gate_name], err_msg=rect.gate_name
        )
    assert gate.population_path(("root", "p")) == ("root", "p")


def test_split_quadrant_thresholds_are_keyed_by_subset():
    gate = SplitQuadrantGate("q", "root", xdim="CD3", ydim="CD56", x=1.0, y=2.0, y_xneg=3.0,
                             quadrants=QUADS)  # fmt: skip
    keys = [t.key for t in gate.thresholds()]
    assert keys == ["CD3", "CD56 within CD3-", "CD56 within CD3+"]
    moved = gate.with_thresholds({"CD56 within CD3+": 2.5})
    assert (moved.x, moved.y_xneg, moved.y) == (1.0, 3.0, 2.5)
    both = gate.with_thresholds({"CD56": 0.7, "CD3": 1.2})  # a dimension moves both sides
    assert (both.x, both.y_xneg, both.y) == (1.2, 0.7, 0.7)
    outline = gate.outline([(0.0, 4.0), (0.0, 4.0)])
    assert outline.paths[1] == ([0.0, 1.0], [3.0, 3.0])  # CD3− side at its own CD56
    assert outline.paths[2] == ([1.0, 4.0], [2.0, 2.0])


def _notched_members(gate, *, a, b, expected):
    """The quadrants' members by hand; flowkit's polygons and rectangles agree with them.

    Both quadrants on the notch's side are polygons, the others rectangles.
    """
    got = gate.members({"a": a, "b": b}, parent=np.ones(len(a), dtype=bool), populations={})
    for quad, rows in expected.items():
        np.testing.assert_array_equal(np.flatnonzero(got[quad]), rows, err_msg=quad)
    made = gate.to_flowkit(dimension=_dimension, divider=_divider, paths={})
    kinds = {g.gate_name: type(g).__name__ for g in made}
    assert kinds == {"pp": "PolygonGate", "pm": "RectangleGate", "mp": "PolygonGate",
                     "mm": "RectangleGate"}  # fmt: skip
    frame = pd.DataFrame({"a": a, "b": b})
    for fk_gate in made:
        np.testing.assert_array_equal(
            np.asarray(fk_gate.apply(frame), dtype=bool), got[fk_gate.gate_name]
        )


def test_notched_quadrants_by_hand_and_by_flowkit():
    # x at 2; y at 0.5 within a ≥ 2 and at 2.5 within a < 2; the notch at a = 1 moves the
    # a < 2, b ≥ 2.5 events with a ≥ 1 into "++" (CD3-dim CIK cells out of the NK quadrant)
    a = np.array([0.5, 1.5, 1.5, 2.5, 2.5, 0.5])
    b = np.array([3.0, 3.0, 2.0, 1.0, 0.2, 0.2])
    gate = SplitQuadrantGate("q", "root", xdim="a", ydim="b", x=2.0, y=0.5, y_xneg=2.5,
                             x_notch=1.0, quadrants=QUADS)  # fmt: skip
    _notched_members(gate, a=a, b=b, expected={"mp": [0], "pp": [1, 3], "mm": [2, 5], "pm": [4]})
    notch = gate.thresholds()[3]
    assert (notch.key, notch.value, notch.upto) == ("a within a-b+", 1.0, 2.0)
    np.testing.assert_array_equal(
        np.flatnonzero(gate.subset(notch, {"a": a, "b": b}, parent=np.ones(6, dtype=bool))),
        [0, 1],  # the "-+" quadrant as it is without the notch
    )
    assert gate.with_thresholds({"a within a-b+": 0.2}).x_notch == 0.2
    outline = gate.outline([(0.0, 4.0), (0.0, 4.0)])
    assert outline.paths[0] == ([2.0, 2.0], [0.0, 2.5])  # x up to the higher y divider
    assert outline.paths[-1] == ([1.0, 1.0], [2.5, 4.0])  # the notch above y within a−
    # a notch at or above x moves nothing, and is no divider of its own
    flat = replace(gate, x_notch=2.0)
    assert not flat.notched
    assert len(flat.thresholds()) == 3
    assert np.flatnonzero(flat.members({"a": a, "b": b}, parent=np.ones(6, dtype=bool),
                                       populations={})["mp"]).tolist() == [0, 1]  # fmt: skip


def test_a_notch_above_x_moves_its_side_of_the_positives_the_other_way():
    # x at 2; y at 0.5 within a ≥ 2 and at 2.5 within a < 2; the notch at a = 3, above x,
    # moves the a ≥ 2, b ≥ 0.5 events with a < 3 into "-+" (NK cells whose CD3
    # background lies above a divider placed for the CD3-dim T cells)
    a = np.array([0.5, 2.5, 3.5, 2.5, 1.5, 2.2])
    b = np.array([3.0, 3.0, 1.0, 0.2, 2.0, 0.6])
    gate = SplitQuadrantGate("q", "root", xdim="a", ydim="b", x=2.0, y=0.5, y_xneg=2.5,
                             x_notch=3.0, quadrants=QUADS)  # fmt: skip
    assert (gate.notched, gate.raised) == (True, True)
    ones = np.ones(6, dtype=bool)
    _notched_members(gate, a=a, b=b, expected={"mp": [0, 1, 5], "pp": [2], "pm": [3], "mm": [4]})
    notch = gate.thresholds()[3]
    assert (notch.key, notch.value, notch.upto) == ("a within b+", 3.0, None)
    np.testing.assert_array_equal(  # the b+ cells of both sides, without the notch
        np.flatnonzero(gate.subset(notch, {"a": a, "b": b}, parent=ones)), [0, 1, 2, 5]
    )
    assert gate.with_thresholds({"a within b+": 3.5}).x_notch == 3.5
    outline = gate.outline([(0.0, 4.0), (0.0, 4.0)])
    assert outline.paths[0] == ([2.0, 2.0], [0.0, 2.5])
    assert outline.paths[-1] == ([3.0, 3.0], [0.5, 4.0])  # the notch above y within a+


def test_split_quadrant_from_the_template_form():
    spec = {"name": "q", "parent": "root", "type": "quadrant",
            "x": {"dimension": "a", "at": 2},
            "y": {"dimension": "b", "at": 600, "per_side": True},
            "quadrants": dict(QUADS)}  # fmt: skip
    gate = from_spec(spec, scale=identity_scale)
    assert isinstance(gate, SplitQuadrantGate)
    assert (gate.y_xneg, gate.y) == (600.0, 600.0)
    spec["y"] = {"dimension": "b", "at": {"-": 900, "+": 500}}
    gate = from_spec(spec, scale=identity_scale)
    assert (gate.y_xneg, gate.y) == (900.0, 500.0)
    spec["y"] = {"dimension": "b", "at": 5}
    assert type(from_spec(spec, scale=identity_scale)) is QuadrantGate
    # a notch: fitted per sample (true, until then at x), placed (a number) or none
    spec["x"]["notch"] = True
    gate = from_spec(spec, scale=identity_scale)
    assert isinstance(gate, SplitQuadrantGate)
    assert (gate.x_notch, gate.notched) == (2.0, False)
    moved = gate.with_thresholds({"a": 1.0})  # x placed below the template's: still none
    assert (moved.x_notch, moved.notched) == (1.0, False)
    spec["x"]["notch"] = 1.5
    assert from_spec(spec, scale=identity_scale).x_notch == 1.5
