"""Named arrays with a JSON header in one ``.npz`` file, byte-identical on rerun.

The gate step hands a sample's base events to its report job, which clusters them, through
such a file (``base_events.npz``): exact values, a fraction of a text table's size and
reading time. Floating-point arrays are stored as they are (measured event values
barely compress: 19.5 MB to 18.1 MB, for a second's deflating); the others (gate
membership) are deflated, fast (8.5 MB to 0.8 MB in 0.07 s).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["read_arrays", "write_arrays"]

_HEADER = "header.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # a fixed time stamp in the archive: reruns write the same bytes


def write_arrays(
    arrays: Mapping[str, np.ndarray], path: str | Path, *, header: Mapping[str, Any]
) -> None:
    """Write named arrays and a JSON header as one ``.npz`` archive (floats stored, rest deflated).

    Parameters
    ----------
    arrays : mapping of str to numpy.ndarray
        Name → array (any shape; numeric or boolean dtype).
    path : str or pathlib.Path
        The file to write (readable by :func:`numpy.load` too).
    header : mapping
        JSON-serialisable values stored beside the arrays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(_HEADER, date_time=_EPOCH)
        archive.writestr(info, json.dumps(dict(header), sort_keys=True))
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            floats = np.issubdtype(array.dtype, np.floating)
            info.compress_type = zipfile.ZIP_STORED if floats else zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=None if floats else 1)


def read_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an archive written by :func:`write_arrays`.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.npz`` file.

    Returns
    -------
    tuple
        Name → array, and the header.
    """
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        header = json.loads(archive.read(_HEADER))
        for name in archive.namelist():
            if name.endswith(".npy"):
                with archive.open(name) as fh:
                    arrays[name[: -len(".npy")]] = np.lib.format.read_array(
                        io.BytesIO(fh.read()), allow_pickle=False
                    )
    return arrays, header
