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

__all__ = [
    "FUZZ_KEYWORDS",
    "FUZZ_OPS",
    "FUZZ_VALUES",
    "build_fcs",
    "encode_values",
    "fuzz_seeds",
    "mutate_fcs",
]


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
    pnn: Sequence[str | None],
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
    pnn : sequence of str or None
        $PnN per channel; None leaves the keyword out.
    datatype : {"I", "F", "D"}
        $DATATYPE.
    bits : int or sequence of int
        $PnB (one for all channels or one per channel). A width that is not a whole
        number of bytes (10 on the Beckman Coulter FC500) is stored in words as wide
        as ``byteord``.
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
    word = len(_order(byteord))  # bytes holding a value whose $PnB is not whole bytes
    widths = [b // 8 if b % 8 == 0 else word for b in all_bits]
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
        if pnn[n] is not None:
            pairs.append((f"$P{n + 1}N", pnn[n]))
        pairs += [
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


# --- mutations for fuzzing ---------------------------------------------------------------------

#: the mutation operators of :func:`mutate_fcs`
FUZZ_OPS = (
    "header_field",
    "keyword",
    "overwrite",
    "insert",
    "delete",
    "truncate",
    "data_xor",
    "append",
)
#: TEXT keywords whose values :func:`mutate_fcs` rewrites ("n" = a channel number)
FUZZ_KEYWORDS = (
    "$TOT",
    "$PAR",
    "$DATATYPE",
    "$BYTEORD",
    "$MODE",
    "$NEXTDATA",
    "$BEGINDATA",
    "$ENDDATA",
    "$TIMESTEP",
    "$PnB",
    "$PnR",
    "$PnE",
    "$PnG",
    "$PnN",
)
#: values worth trying in a keyword or a HEADER offset
FUZZ_VALUES = (
    b"",
    b" ",
    b"0",
    b"1",
    b"-1",
    b"2",
    b"7",
    b"8",
    b"16",
    b"24",
    b"32",
    b"64",
    b"65",
    b"99999999",
    b"4294967296",
    b"18446744073709551617",
    b"9" * 30,
    b"1e308",
    b"nan",
    b"inf",
    b"-inf",
    b"0.5",
    b"4,0",
    b"4,1,2",
    b"x,y",
    b"I",
    b"F",
    b"D",
    b"A",
    b"C",
    b"U",
    b"L",
    b"1,2,3,4",
    b"4,3,2,1",
    b"3,4,1,2",
    b"1,1",
    b"1,2,3,4,5,6,7,8,9",
    b"\xff\xfe",
    b"/",
    b"//",
    b"\\",
    b"\x00" * 4,
)


def _text_span(raw: bytes) -> tuple[int, int] | None:
    try:
        start, end = int(raw[10:18]), int(raw[18:26])
    except ValueError:
        return None
    if 0 < start < end < len(raw):
        return start, end
    return None


def mutate_fcs(raw: bytes, op: str, *, at: float, data: bytes, channel: int = 1) -> bytes:
    """One mutation of an FCS file's bytes.

    Parameters
    ----------
    raw : bytes
        The file.
    op : str
        One of :data:`FUZZ_OPS`: rewrite a HEADER offset field (``header_field``) or a
        TEXT keyword's value (``keyword``, the keyword picked by ``at`` from
        :data:`FUZZ_KEYWORDS`), overwrite / insert / delete bytes, truncate the file,
        xor bytes of its second half (mostly DATA), or append bytes.
    at : float
        Relative position in [0, 1) (of the file, or of the list of fields/keywords).
    data : bytes
        The bytes written (for ``delete``, its length is the number of bytes removed).
    channel : int
        Channel number substituted for ``n`` in ``$PnB`` etc.

    Returns
    -------
    bytes
    """
    at = min(max(at, 0.0), 0.999999)
    size = len(raw)
    pos = int(at * size)
    if op == "header_field":
        field = 10 + 8 * int(at * 6)
        return raw[:field] + data[:8].rjust(8)[:8] + raw[field + 8 :]
    if op == "keyword":
        span = _text_span(raw)
        if span is None:
            return raw + data
        delim = raw[span[0] : span[0] + 1]
        key = FUZZ_KEYWORDS[int(at * len(FUZZ_KEYWORDS))].replace("n", str(channel))
        token = delim + key.encode() + delim
        i = raw.find(token, span[0], span[1] + 1)
        if i < 0:
            return raw[: span[1]] + token + data + raw[span[1] :]
        j = raw.find(delim, i + len(token), span[1] + 1)
        j = span[1] if j < 0 else j
        return raw[: i + len(token)] + data + raw[j:]
    if op == "overwrite":
        return raw[:pos] + data + raw[pos + len(data) :]
    if op == "insert":
        return raw[:pos] + data + raw[pos:]
    if op == "delete":
        return raw[:pos] + raw[pos + max(len(data), 1) :]
    if op == "truncate":
        return raw[:pos]
    if op == "data_xor":
        start = size // 2 + int(at * (size - size // 2))
        chunk = bytes(a ^ b for a, b in zip(raw[start : start + len(data)], data, strict=False))
        return raw[:start] + chunk + raw[start + len(chunk) :]
    if op == "append":
        return raw + data
    msg = f"unknown mutation {op!r}"
    raise ValueError(msg)


def fuzz_seeds() -> list[bytes]:
    """Small valid FCS files of every layout the reader supports, to mutate."""
    import io

    import flowio

    rng = np.random.default_rng(0)
    ints = rng.integers(0, 1024, size=(40, 4))
    pnn = ["FSC-A", "SSC-A", "FL1-A", "Time"]
    seeds = [
        build_fcs(ints, pnn=pnn, bits=16),
        build_fcs(ints, pnn=pnn, bits=24, byteord="4,3,2,1", pnr=[1024] * 4),
        build_fcs(
            ints, pnn=pnn, bits=[8, 16, 32, 16], byteord="4,3,2,1", keywords={"$TIMESTEP": "0.1"}
        ),
        build_fcs(ints, pnn=pnn, bits=32, byteord="3,4,1,2", version="3.0"),
        build_fcs(ints / 3.0, pnn=pnn, datatype="F", bits=32, byteord="4,3,2,1"),
        build_fcs(ints / 3.0, pnn=pnn, datatype="D", bits=64),
        build_fcs(ints, pnn=pnn, bits=16, byteord="2,1", version="2.0", text_offsets=False),
        build_fcs(ints, pnn=pnn, bits=16, keywords={"$SRC": "", "$P3S": "CD3", "$P2E": "4,1"}),
        build_fcs(ints, pnn=pnn, bits=16, end_error=1) + b"\x00",
        build_fcs(ints, pnn=pnn, bits=16, delimiter=b"\x0c", keywords={"$CYT": "a\x0cb"}),
    ]
    first = build_fcs(ints, pnn=pnn, bits=16, keywords={"$NEXTDATA": "X" * 10})
    first = first.replace(b"X" * 10, f"{len(first):010d}".encode())
    seeds.append(first + build_fcs(ints[:5], pnn=pnn, bits=16))
    handle = io.BytesIO()
    flat = (ints * 1.5).astype("<f4").ravel().tolist()
    flowio.create_fcs(handle, flat, pnn, opt_channel_names=["", "", "CD3", ""])
    seeds.append(handle.getvalue())
    return seeds
