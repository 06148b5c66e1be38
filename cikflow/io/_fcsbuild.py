"""Build FCS files byte for byte in any layout the standard allows (for tests and fuzzing).

:func:`cikflow.io.write_fcs` writes what cikflow needs (FCS 3.1, 32-bit float); this
module writes what instruments write: integer data of any whole-byte width, mixed
widths, either byte order or a byte permutation, ``$DATATYPE`` I/F/D, FCS 2.0 files
without TEXT offsets, and deliberately wrong offsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["build_fcs", "encode_values"]


def _order(byteord: str) -> list[int]:
    return [int(v) - 1 for v in byteord.split(",")]


def encode_values(
    values: np.ndarray,
    *,
    datatype: str,
    widths: Sequence[int],
    byteord: str,
) -> bytes:
    """The DATA segment for ``values`` (n_events × n_channels).

    ``widths`` are bytes per value per channel; ``byteord`` is a $BYTEORD string
    ("1,2,3,4" little endian, "4,3,2,1" big endian, or a permutation as wide as the
    values).
    """
    values = np.asarray(values)
    order = _order(byteord)
    ascending = order == sorted(order)
    columns = []
    for j, width in enumerate(widths):
        if datatype == "I":
            padded = 1 << (width - 1).bit_length()
            little = values[:, j].astype(f"<u{padded}").view(np.uint8).reshape(-1, padded)
            little = little[:, :width]
        else:
            little = values[:, j].astype(f"<f{width}").view(np.uint8).reshape(-1, width)
        if len(order) == width and not ascending:
            stored = little[:, order]  # stored byte i holds significance order[i]
        elif ascending:
            stored = little
        else:
            stored = little[:, ::-1]
        columns.append(stored)
    return np.ascontiguousarray(np.hstack(columns)).tobytes()


def build_fcs(
    values: np.ndarray,
    *,
    pnn: Sequence[str],
    datatype: str = "I",
    bits: int | Sequence[int] = 16,
    byteord: str = "1,2,3,4",
    pnr: Sequence[float] | None = None,
    version: str = "3.1",
    keywords: Mapping[str, str] | None = None,
    delimiter: bytes = b"/",
    text_offsets: bool = True,
    header_offsets: bool = True,
    end_error: int = 0,
) -> bytes:
    """A complete FCS file holding ``values``.

    Parameters
    ----------
    values : numpy.ndarray
        Shape (n_events, n_channels), stored as given (integers for ``I``).
    pnn : sequence of str
        $PnN per channel.
    datatype : {"I", "F", "D"}
        $DATATYPE.
    bits : int or sequence of int
        $PnB (one for all channels or one per channel).
    byteord : str
        $BYTEORD.
    pnr : sequence of float, optional
        $PnR per channel; default ``2**bits`` (integers) or 262144.
    version : str
        FCS version in the HEADER.
    keywords : mapping, optional
        Extra TEXT keywords (with their ``$`` where standard), added last.
    delimiter : bytes
        TEXT delimiter (one byte).
    text_offsets, header_offsets : bool
        Write $BEGINDATA/$ENDDATA in TEXT, DATA offsets in the HEADER.
    end_error : int
        Added to the declared DATA end (1 mimics the common off-by-one export bug).

    Returns
    -------
    bytes
    """
    values = np.asarray(values)
    n_events, n_channels = values.shape
    all_bits = [bits] * n_channels if isinstance(bits, int) else list(bits)
    widths = [b // 8 for b in all_bits]
    if pnr is None:
        pnr = [float(2**b) if datatype == "I" else 262144.0 for b in all_bits]
    data = encode_values(values, datatype=datatype, widths=widths, byteord=byteord)
    pairs = [
        ("$BYTEORD", byteord),
        ("$DATATYPE", datatype),
        ("$MODE", "L"),
        ("$NEXTDATA", "0"),
        ("$PAR", str(n_channels)),
        ("$TOT", str(n_events)),
    ]
    for n in range(n_channels):
        pairs += [
            (f"$P{n + 1}N", pnn[n]),
            (f"$P{n + 1}B", str(all_bits[n])),
            (f"$P{n + 1}E", "0,0"),
            (f"$P{n + 1}R", _number(pnr[n])),
        ]
    pairs += list((keywords or {}).items())
    text_start = 256
    begin = 0
    for _ in range(4):  # offsets change the TEXT length; iterate to a fixed point
        extra = []
        if text_offsets:
            extra = [
                ("$BEGINDATA", str(begin)),
                ("$ENDDATA", str(begin + len(data) - 1 + end_error)),
            ]
            extra += [("$BEGINANALYSIS", "0"), ("$ENDANALYSIS", "0")]
            extra += [("$BEGINSTEXT", "0"), ("$ENDSTEXT", "0")]
        text = _text(extra + pairs, delimiter)
        new_begin = text_start + len(text)
        if new_begin == begin:
            break
        begin = new_begin
    end = begin + len(data) - 1 + end_error
    fields = [text_start, text_start + len(text) - 1]
    fields += [begin, end] if header_offsets else [0, 0]
    fields += [0, 0]
    header = f"FCS{version}    ".encode() + b"".join(f"{v:>8d}".encode() for v in fields)
    return header.ljust(text_start, b" ") + text + data


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _text(pairs: Sequence[tuple[str, str]], delimiter: bytes) -> bytes:
    escaped = delimiter * 2
    body = b"".join(
        delimiter
        + k.encode().replace(delimiter, escaped)
        + delimiter
        + v.encode().replace(delimiter, escaped)
        for k, v in pairs
    )
    return body + delimiter
