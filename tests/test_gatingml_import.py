"""GatingML 2.0 templates imported gate by gate: what cannot work is left out, by name.

Small hand-written documents, one failure each, beside a gate that works; its membership
is checked against events counted by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cikflow.exceptions import GatingMLGateWarning, GatingMLWarning, GatingTemplateError
from cikflow.gating import gate_fcs
from cikflow.io import read_fcs, read_template, write_fcs

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML
    xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
"""
TAIL = "</gating:Gating-ML>\n"


def _dim(name: str, lo: float, hi: float, extra: str = "") -> str:
    return (
        f'<gating:dimension gating:compensation-ref="uncompensated" gating:min="{lo}" '
        f'gating:max="{hi}"{extra}><data-type:fcs-dimension data-type:name="{name}"/>'
        "</gating:dimension>"
    )


def _rect(gate_id: str, *dims: str, parent: str | None = None) -> str:
    attr = f' gating:parent_id="{parent}"' if parent else ""
    inner = "".join(dims)
    return f'<gating:RectangleGate gating:id="{gate_id}"{attr}>{inner}</gating:RectangleGate>\n'


GOOD = _rect("Good", _dim("FSC-H", 20, 80), _dim("SSC-H", 10, 50))
GOOD_CHILD = _rect("GoodChild", _dim("FL2-H", 0, 5), parent="Good")

#: events: FSC-H, SSC-H, FL1-H, FL2-H
EVENTS = np.array(
    [
        [20, 10, 1, 1],  # both minima: in Good (minimum inclusive), in GoodChild
        [80, 30, 2, 2],  # FSC-H at the maximum: out (maximum exclusive)
        [50, 49, 3, 7],  # in Good, FL2-H 7: not in GoodChild
        [19, 30, 4, 1],  # FSC-H below: out
        [60, 50, 5, 1],  # SSC-H at the maximum: out
        [79, 25, 6, 4],  # in Good and GoodChild
        [30, 5, 7, 1],  # SSC-H below: out
        [40, 40, 8, 0],  # in Good and GoodChild
    ],
    dtype=float,
)
GOOD_IN = [True, False, True, False, False, True, False, True]
GOOD_CHILD_IN = [True, False, False, False, False, True, False, True]


@pytest.fixture(scope="module")
def fcs(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("gml") / "events.fcs"
    names = ["FSC-H", "SSC-H", "FL1-H", "FL2-H"]
    write_fcs(path, EVENTS, pnn=names, pns=["", "", "CD3", "CD56"])
    return read_fcs(path)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "template.xml"
    path.write_text(HEAD + body + TAIL)
    return path


def _read_leaving_out(path: Path, *bad: str) -> tuple[object, list[GatingMLGateWarning]]:
    with pytest.warns(GatingMLGateWarning) as record:
        template = read_template(path)
    gate_warnings = [w.message for w in record if isinstance(w.message, GatingMLGateWarning)]
    assert [w.gate for w in gate_warnings] == list(bad)
    return template, gate_warnings


def _assert_good_gates(fcs, template) -> None:
    outcome = gate_fcs(fcs, template)
    assert set(outcome.membership) == {"Good", "GoodChild"}
    np.testing.assert_array_equal(outcome.membership["Good"], GOOD_IN)
    np.testing.assert_array_equal(outcome.membership["GoodChild"], GOOD_CHILD_IN)


def test_good_gates_alone_import_without_warning(fcs, tmp_path: Path):
    template = read_template(_write(tmp_path, GOOD + GOOD_CHILD))
    _assert_good_gates(fcs, template)


NON_SQUARE = """<transforms:spectrumMatrix transforms:id="Spill3x2">
  <transforms:fluorochromes>
    <data-type:fcs-dimension data-type:name="CD3"/>
    <data-type:fcs-dimension data-type:name="CD56"/>
    <data-type:fcs-dimension data-type:name="CD16"/>
  </transforms:fluorochromes>
  <transforms:detectors>
    <data-type:fcs-dimension data-type:name="FL1-H"/>
    <data-type:fcs-dimension data-type:name="FL2-H"/>
  </transforms:detectors>
  <transforms:spectrum>
    <transforms:coefficient transforms:value="1"/><transforms:coefficient transforms:value="0.1"/>
  </transforms:spectrum>
  <transforms:spectrum>
    <transforms:coefficient transforms:value="0.2"/><transforms:coefficient transforms:value="1"/>
  </transforms:spectrum>
  <transforms:spectrum>
    <transforms:coefficient transforms:value="0.3"/><transforms:coefficient transforms:value="0.4"/>
  </transforms:spectrum>
</transforms:spectrumMatrix>
"""
BAD_COMP_DIM = (
    '<gating:dimension gating:compensation-ref="Spill3x2" gating:min="0" gating:max="5">'
    '<data-type:fcs-dimension data-type:name="FL1-H"/></gating:dimension>'
)


def test_gate_on_non_square_spectrum_matrix_is_left_out_with_its_child(fcs, tmp_path: Path):
    body = (
        NON_SQUARE
        + GOOD
        + _rect("Unmixed", BAD_COMP_DIM)
        + _rect("UnmixedChild", _dim("FL2-H", 0, 5), parent="Unmixed")
        + GOOD_CHILD
    )
    with pytest.warns(GatingMLWarning, match=r"spectrum matrix 'Spill3x2' \(line \d+\) left out"):
        template, (warning,) = _read_leaving_out(_write(tmp_path, body), "Unmixed")
    assert warning.dependants == ("UnmixedChild",)
    assert "3 fluorochrome × 2 detector" in warning.reason
    assert "left out with it: UnmixedChild" in str(warning)
    _assert_good_gates(fcs, template)


def test_flowkit_loses_the_non_square_matrix_file_whole(fcs, tmp_path: Path):
    import flowkit as fk

    body = NON_SQUARE + GOOD + _rect("Unmixed", BAD_COMP_DIM) + GOOD_CHILD
    strategy = fk.parse_gating_xml(str(_write(tmp_path, body)))
    with pytest.raises(np.linalg.LinAlgError):  # what cikflow's gate-by-gate import avoids
        strategy.gate_sample(fk.Sample(fcs.path))


def test_gate_on_undefined_transform_is_left_out_with_its_child(fcs, tmp_path: Path):
    extra = ' gating:transformation-ref="NoSuchTransform"'
    body = (
        GOOD
        + _rect("Scaled", _dim("FL1-H", 0.1, 0.5, extra))
        + _rect("ScaledChild", _dim("FL2-H", 0, 5), parent="Scaled")
        + GOOD_CHILD
    )
    template, (warning,) = _read_leaving_out(_write(tmp_path, body), "Scaled")
    assert warning.reason == (
        "dimension 'FL1-H' references transform 'NoSuchTransform', which the file lacks"
    )
    assert warning.dependants == ("ScaledChild",)
    _assert_good_gates(fcs, template)


def test_gate_on_unknown_transform_kind_is_left_out(fcs, tmp_path: Path):
    unknown = (
        '<transforms:transformation transforms:id="Odd">'
        '<transforms:fcube transforms:T="1000"/></transforms:transformation>\n'
    )
    extra = ' gating:transformation-ref="Odd"'
    body = unknown + GOOD + _rect("Scaled", _dim("FL1-H", 0.1, 0.5, extra)) + GOOD_CHILD
    with pytest.warns(GatingMLWarning, match=r"transform 'Odd' \(line 6\) left out"):
        template, (warning,) = _read_leaving_out(_write(tmp_path, body), "Scaled")
    assert "uses transform 'Odd', left out" in warning.reason
    assert "fcube" in warning.reason
    _assert_good_gates(fcs, template)


def test_gate_on_transform_with_impossible_parameters_is_left_out(fcs, tmp_path: Path):
    # asinh with M = 0 divides by zero (every value NaN): the schema says M > 0
    nan_asinh = (
        '<transforms:transformation transforms:id="Flat">'
        '<transforms:fasinh transforms:T="1000" transforms:M="0" transforms:A="0"/>'
        "</transforms:transformation>\n"
    )
    extra = ' gating:transformation-ref="Flat"'
    body = nan_asinh + GOOD + _rect("Scaled", _dim("FL1-H", 0.1, 0.5, extra)) + GOOD_CHILD
    with pytest.warns(
        GatingMLWarning, match=r"transform 'Flat' \(line 6\) left out: .* attribute 'transforms:M'"
    ):
        template, (warning,) = _read_leaving_out(_write(tmp_path, body), "Scaled")
    assert warning.reason.startswith("dimension 'FL1-H' uses transform 'Flat', left out: ")
    _assert_good_gates(fcs, template)


def test_gate_with_a_nameless_dimension_is_left_out(fcs, tmp_path: Path):
    nameless = (
        '<gating:dimension gating:compensation-ref="uncompensated" gating:min="0">'
        "</gating:dimension>"
    )
    body = GOOD + GOOD_CHILD + _rect("NoName", nameless)
    template, (warning,) = _read_leaving_out(_write(tmp_path, body), "NoName")
    # the gate starts on line 8 (after the 5-line head, Good and GoodChild)
    assert str(warning).startswith("template.xml: gate 'NoName' (line 8) left out: ")
    assert "line 8" in warning.reason
    _assert_good_gates(fcs, template)


def test_boolean_gate_on_a_bad_gate_and_a_missing_parent_are_named(fcs, tmp_path: Path):
    extra = ' gating:transformation-ref="Missing"'
    boolean = (
        '<gating:BooleanGate gating:id="Both"><gating:and>'
        '<gating:gateReference gating:ref="Good"/><gating:gateReference gating:ref="Scaled"/>'
        "</gating:and></gating:BooleanGate>\n"
    )
    body = (
        GOOD
        + _rect("Scaled", _dim("FL1-H", 0.1, 0.5, extra))
        + boolean
        + _rect("Orphan", _dim("FL1-H", 0, 5), parent="NotThere")
        + GOOD_CHILD
    )
    template, (scaled, orphan) = _read_leaving_out(_write(tmp_path, body), "Scaled", "Orphan")
    assert scaled.dependants == ("Both",)
    assert orphan.reason == "it refers to gate 'NotThere', which the file lacks"
    _assert_good_gates(fcs, template)


def test_gates_whose_parents_loop_are_left_out(fcs, tmp_path: Path):
    body = (
        GOOD
        + _rect("A", _dim("FL1-H", 0, 5), parent="B")
        + _rect("B", _dim("FL1-H", 0, 5), parent="A")
        + GOOD_CHILD
    )
    template, warnings = _read_leaving_out(_write(tmp_path, body), "A", "B")
    assert {w.reason for w in warnings} == {"its parent and references loop back to it"}
    _assert_good_gates(fcs, template)


def test_a_document_with_no_usable_gate_is_an_error(tmp_path: Path):
    extra = ' gating:transformation-ref="Missing"'
    path = _write(tmp_path, _rect("Scaled", _dim("FL1-H", 0.1, 0.5, extra)))
    with (
        pytest.warns(GatingMLGateWarning),
        pytest.raises(GatingTemplateError, match=r"template.xml: none of its 1 gates can be used"),
    ):
        read_template(path)


def test_truncated_xml_names_line_and_element(tmp_path: Path):
    path = tmp_path / "cut.xml"
    # cut inside the second dimension of Good: the document ends at line 6
    path.write_text((HEAD + GOOD)[: len(HEAD) + GOOD.index("SSC-H")])
    with pytest.raises(GatingTemplateError) as err:
        read_template(path)
    msg = str(err.value)
    assert msg.startswith("cut.xml: not well-formed XML at line 6, column ")
    assert "in element <gating:dimension> (opened at line 6)" in msg
    assert not re.search(r"[A-Z]\w*(Error|Exception)\b", msg)  # no Python exception names


def test_mismatched_tag_names_line_and_element(tmp_path: Path):
    body = (
        GOOD
        + '<gating:RectangleGate gating:id="X">\n  <gating:dimension>\n</gating:RectangleGate>\n'
    )
    path = _write(tmp_path, body)
    with pytest.raises(GatingTemplateError) as err:
        read_template(path)
    msg = str(err.value)
    assert msg.startswith("template.xml: not well-formed XML at line 9, column ")
    assert "in element <gating:dimension> (opened at line 8)" in msg
    assert "Opening and ending tag mismatch: dimension line 8 and RectangleGate" in msg


def test_root_element_not_gatingml_is_named(tmp_path: Path):
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?>\n<Workspace version="2.0"/>\n')
    with pytest.raises(GatingTemplateError, match=r"other.xml: line 2: root element <Workspace>"):
        read_template(path)
