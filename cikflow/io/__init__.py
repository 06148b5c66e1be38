"""All file input and output of cikflow."""

from __future__ import annotations

from cikflow.io.arrays import read_arrays, write_arrays
from cikflow.io.export import WorkspaceSample, export_flowjo_wsp, export_gatingml
from cikflow.io.fcs import FcsData, file_sha256, read_fcs, select_events, write_fcs
from cikflow.io.flowjo import read_flowjo_counts, read_flowjo_template
from cikflow.io.gatingml import read_gatingml
from cikflow.io.h5ad import require_anndata, write_h5ad
from cikflow.io.overrides import read_overrides
from cikflow.io.status import SampleStatus, read_status, write_status
from cikflow.io.tables import (
    read_json,
    read_table,
    read_yaml,
    sidecar_path,
    write_json,
    write_membership,
    write_table,
    write_text_gz,
)
from cikflow.io.template import read_template

__all__ = [
    "FcsData",
    "SampleStatus",
    "WorkspaceSample",
    "export_flowjo_wsp",
    "export_gatingml",
    "file_sha256",
    "read_arrays",
    "read_fcs",
    "read_flowjo_counts",
    "read_flowjo_template",
    "read_gatingml",
    "read_json",
    "read_overrides",
    "read_status",
    "read_table",
    "read_template",
    "read_yaml",
    "require_anndata",
    "select_events",
    "sidecar_path",
    "write_arrays",
    "write_fcs",
    "write_h5ad",
    "write_json",
    "write_membership",
    "write_status",
    "write_table",
    "write_text_gz",
]
