"""All file input and output of cikflow."""

from __future__ import annotations

from cikflow.io.fcs import FcsData, file_sha256, read_fcs, select_events, write_fcs
from cikflow.io.tables import (
    read_json,
    read_table,
    read_yaml,
    sidecar_path,
    write_json,
    write_table,
    write_text_gz,
)
from cikflow.io.template import read_template

__all__ = [
    "FcsData",
    "file_sha256",
    "read_fcs",
    "read_json",
    "read_table",
    "read_template",
    "read_yaml",
    "select_events",
    "sidecar_path",
    "write_fcs",
    "write_json",
    "write_table",
    "write_text_gz",
]
