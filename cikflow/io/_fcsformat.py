"""Byte-level decoding of FCS 2.0/3.0/3.1/3.2 data sets: HEADER, TEXT and DATA.

Works on the bytes of a whole file and never touches the file system; :mod:`cikflow.io.fcs`
reads the file and wraps the result for flowkit.

Why a decoder of our own rather than flowio alone: flowio 1.4 reads integer DATA only
at 8, 16 and 32 bits (24-bit Cytek files fail), rejects an ``$ENDDATA`` that is off by
one and any HEADER/TEXT offset discrepancy, refuses files that hold several data sets,
sizes its reads from the declared offsets before comparing them with the file, and
raises builtin exceptions (``ValueError``, ``KeyError`` …) for malformed input. This
decoder checks every declared size against the bytes present *before* allocating,
repairs the known offset defects with a recorded warning (or refuses them in strict
mode), and raises a named :class:`~cikflow.exceptions.FcsReadError` subclass for
everything else. Decoded values equal flowio's and fcsparser's raw values, including
their ``$PnR`` bit masking of integer data (FCS 3.1 §3.2.20); the corpus tests check it.

References: Spidlen J. et al., "Data File Standard for Flow Cytometry, version FCS 3.1",
Cytometry A 77:97–100 (2010), and the FCS 2.0/3.0/3.2 specifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cikflow.events import finite_number as parse_number
from cikflow.exceptions import (
    FcsDataError,
    FcsHeaderError,
    FcsOffsetError,
    FcsReadError,
    FcsTextError,
    FcsTruncatedError,
    FcsUnsupportedError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["HEADER_BYTES", "DecodedFcs", "decode_fcs", "parse_number"]

#: length of the fixed HEADER: "FCSx.y", 4 spaces, six 8-byte ASCII offsets
HEADER_BYTES = 58
_VERSIONS = ("2.0", "3.0", "3.1", "3.2")
#: at most this many data sets are followed through $NEXTDATA
_MAX_DATA_SETS = 1000
#: longest decimal number accepted in TEXT (2**64 has 20 digits)
_MAX_DIGITS = 20
_BLANK = b" \x00\r\n\t"


@dataclass(frozen=True)
class DecodedFcs:
    """The first data set of an FCS file, decoded.

    Attributes
    ----------
    version : str
        FCS version from the HEADER ("2.0", "3.0", "3.1" or "3.2").
    keywords : dict of str to str
        Primary TEXT keywords in file order: lower case, without the leading ``$``;
        values exactly as stored, except that a parameter without ``$PnN`` gets the
        generated name ``Pn`` (with a warning).
    stored : numpy.ndarray
        Shape (n_events, n_channels): the values stored in the DATA segment in their
        stored type (float32, float64 or unsigned integers, either byte order; a
        read-only view of the file's bytes where no masking is needed; float64 for
        mixed-width integers), integers masked to the bits their ``$PnR`` allows. No
        gain, log or time step is applied.
    warnings : tuple of str
        Defects repaired while reading (each names the defect and what was done).
    data_sets : int
        Number of data sets in the file ($NEXTDATA chain); only the first is decoded.
    """

    version: str
    keywords: dict[str, str]
    stored: np.ndarray
    warnings: tuple[str, ...] = field(default_factory=tuple)
    data_sets: int = 1


@dataclass(frozen=True)
class _Header:
    version: str
    text: tuple[int, int]
    data: tuple[int | None, int | None]


class _Repairs:
    """Collects repair warnings, or raises them as errors in strict mode."""

    def __init__(self, name: str, *, strict: bool) -> None:
        self.name = name
        self.strict = strict
        self.messages: list[str] = []

    def __call__(self, message: str, error: type[FcsReadError]) -> None:
        if self.strict:
            raise error(f"{self.name}: {message} (strict reading refuses to repair it)")
        self.messages.append(message)


def _whole_number(text: str) -> int | None:
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_DIGITS:
        return None
    if not (stripped.isascii() and stripped.isdigit()):
        return None
    return int(stripped)


def _header_field(raw: bytes, pos: int) -> int | None:
    """An 8-byte HEADER offset: int, None when blank, -1 when not a number."""
    value = raw[pos : pos + 8].strip(_BLANK)
    if not value:
        return None
    if not value.isdigit():
        return -1
    return int(value)


def _read_header(raw: bytes, name: str, base: int) -> _Header:
    size = len(raw)
    head = raw[base : base + 6]
    if size - base < HEADER_BYTES or head[:3] != b"FCS":
        where = "" if base == 0 else f" at byte {base}"
        raise FcsHeaderError(
            f"{name}: not an FCS file (the header{where} does not start with 'FCS' followed "
            f"by a version; {size} bytes, starting {raw[base : base + 8]!r})"
        )
    version = head[3:].decode("latin-1")
    if version not in _VERSIONS:
        raise FcsUnsupportedError(
            f"{name}: FCS version {version!r} is not supported (only {', '.join(_VERSIONS)})"
        )
    fields = [_header_field(raw, base + 10 + 8 * i) for i in range(4)]
    text_start, text_end = fields[0], fields[1]
    if text_start is None or text_end is None or text_start < 0 or text_end < 0:
        raise FcsHeaderError(
            f"{name}: HEADER gives no valid TEXT segment offsets ({raw[base + 10 : base + 26]!r})"
        )
    if text_start < HEADER_BYTES or text_end <= text_start:
        raise FcsOffsetError(
            f"{name}: HEADER gives an impossible TEXT segment: bytes {text_start}–{text_end}"
        )
    if base + text_end >= size:
        raise FcsTruncatedError(
            f"{name}: truncated file: TEXT segment (bytes {text_start}–{text_end}) is "
            f"greater than file size ({size} bytes)"
        )
    data_start, data_end = (None if v is None or v < 0 else v for v in fields[2:])
    return _Header(version, (text_start, text_end), (data_start, data_end))


def _split_text(segment: bytes) -> list[bytes]:
    """Split a TEXT segment into alternating keywords and values.

    The first byte is the delimiter; a doubled delimiter is a literal delimiter inside
    a keyword or value (FCS 3.1 §3.2.9), read left to right.
    """
    delim = segment[:1]
    parts = segment[1:].split(delim)
    tokens: list[bytes] = []
    current = [parts[0]]
    k = 1
    while k < len(parts):
        if parts[k] == b"" and k + 1 < len(parts):  # two delimiters in a row: a literal one
            current += [delim, parts[k + 1]]
            k += 2
        else:
            tokens.append(b"".join(current))
            current = [parts[k]]
            k += 1
    tokens.append(b"".join(current))
    return tokens


def _trim(tokens: list[bytes]) -> list[bytes]:
    """Drop the empty token after the closing delimiter, or padding after it."""
    if len(tokens) % 2 == 1 and not tokens[-1].strip(_BLANK):
        tokens.pop()
    return tokens


def _decode_token(token: bytes) -> str:
    try:
        return token.decode("utf-8")
    except UnicodeDecodeError:
        return token.decode("latin-1")


def _parse_text(segment: bytes, name: str, repairs: _Repairs | None) -> dict[str, str]:
    if len(segment) < 2:
        raise FcsTextError(f"{name}: TEXT segment is {len(segment)} byte(s) long; no keywords")
    delim = segment[:1]
    tokens = _trim(_split_text(segment))
    if len(tokens) % 2 == 1 or any(delim in key for key in tokens[::2]):
        # some writers store an empty value as two delimiters in a row; read it that way
        # when the escaped reading leaves a keyword without a value or swallows a
        # delimiter into a keyword, and the plain reading pairs every keyword
        plain = _trim(segment[1:].split(delim))
        if len(plain) % 2 == 0 and all(key.strip(_BLANK) for key in plain[::2]):
            tokens = plain
    if len(tokens) % 2 == 1:
        dangling = _decode_token(tokens.pop())[:40]
        if repairs is not None:
            repairs(f"TEXT ends with {dangling!r}, which has no value; ignored", FcsTextError)
    keywords: dict[str, str] = {}
    for key, value in zip(tokens[::2], tokens[1::2], strict=True):
        text = _decode_token(key).strip().lower().lstrip("$")
        if text:
            keywords[text] = _decode_token(value)
    if not keywords:
        raise FcsTextError(f"{name}: TEXT segment holds no keywords")
    return keywords


def _required(keywords: Mapping[str, str], key: str, name: str) -> str:
    value = keywords.get(key)
    if value is None or not value.strip():
        raise FcsTextError(f"{name}: required keyword ${key.upper()} is missing")
    return value


def _required_int(keywords: Mapping[str, str], key: str, name: str) -> int:
    value = _required(keywords, key, name)
    number = _whole_number(value)
    if number is None:
        raise FcsTextError(f"{name}: ${key.upper()} is {value[:40]!r}, not a whole number")
    return number


def _byte_order(text: str, name: str) -> list[int]:
    """$BYTEORD as significance of each stored byte (0 = least significant)."""
    try:
        order = [int(v) for v in text.strip().split(",")]
    except ValueError:
        order = []
    if not order or sorted(order) != list(range(1, len(order) + 1)) or len(order) > 8:
        raise FcsTextError(f"{name}: $BYTEORD {text[:40]!r} is not a byte order")
    return [v - 1 for v in order]


def _mask_bits(pnr: float, width_bits: int) -> int:
    """Bits kept of an integer value: the next power of two at or above $PnR (FCS 3.1)."""
    top = int(np.ceil(pnr))
    return min((top - 1).bit_length(), width_bits)


def _data_layout(
    keywords: Mapping[str, str], name: str, repairs: _Repairs
) -> tuple[str, list[int], list[int], list[float]]:
    """$DATATYPE, per-channel widths (bytes), byte significance and $PnR.

    An integer $PnB that is not a whole number of bytes (10 bits on Beckman Coulter
    Cytomics FC500 list mode, ``.LMD``) is read as a word as wide as $BYTEORD
    (2 bytes for "1,2"), with a repair warning; :func:`_mask` then keeps the bits
    $PnR allows (10 for $PnR 1024).
    """
    mode = keywords.get("mode", "L").strip().upper() or "L"
    if mode in ("C", "U"):
        raise FcsUnsupportedError(
            f"{name}: $MODE {mode} (histogram data) is not supported; only list mode (L)"
        )
    if mode != "L":
        raise FcsTextError(f"{name}: $MODE is {mode[:20]!r}; expected L (list mode)")
    datatype = _required(keywords, "datatype", name).strip().upper()
    if datatype == "A":
        raise FcsUnsupportedError(f"{name}: $DATATYPE A (ASCII event values) is not supported")
    if datatype not in ("I", "F", "D"):
        raise FcsTextError(f"{name}: $DATATYPE is {datatype[:20]!r}; expected I, F or D")
    n_channels = _required_int(keywords, "par", name)
    if n_channels == 0 or n_channels > len(keywords):
        raise FcsTextError(
            f"{name}: $PAR={n_channels}, but TEXT holds {len(keywords)} keywords "
            "(each channel needs at least $PnB and $PnR)"
        )
    order = _byte_order(_required(keywords, "byteord", name), name)
    widths, ranges, packed = [], [], []
    for n in range(1, n_channels + 1):
        bits_text = _required(keywords, f"p{n}b", name)
        bits = _whole_number(bits_text)
        if datatype == "I":
            whole = bits is not None and 0 < bits <= 64 and bits % 8 == 0
            in_word = bits is not None and 0 < bits < 8 * len(order)
            if not (whole or in_word):
                raise FcsUnsupportedError(
                    f"{name}: $P{n}B={bits_text.strip()[:20]!r}: integer widths are read "
                    "in whole bytes from 8 to 64 bits, or in words as wide as $BYTEORD "
                    f"({len(order)} byte(s)) when $PnB is not a whole number of bytes"
                )
            if bits and bits % 8:
                packed.append(n)
                bits = 8 * len(order)  # the word the value sits in (FC500 list mode)
        elif bits != (32 if datatype == "F" else 64):
            raise FcsTextError(
                f"{name}: $P{n}B={bits_text.strip()[:20]!r}, but $DATATYPE {datatype} "
                f"stores {32 if datatype == 'F' else 64}-bit values"
            )
        pnr_text = _required(keywords, f"p{n}r", name)
        pnr = parse_number(pnr_text)
        if pnr is None:
            raise FcsTextError(f"{name}: $P{n}R is {pnr_text[:40]!r}, not a number")
        widths.append(int(bits) // 8)
        ranges.append(pnr)
    if packed:
        repairs(
            f"$PnB is not a whole number of bytes for {_channel_list(packed)} (e.g. "
            f"$P{packed[0]}B={keywords[f'p{packed[0]}b'].strip()}); read as "
            f"{8 * len(order)}-bit words (the width of $BYTEORD "
            f"{','.join(str(v + 1) for v in order)}), values masked to their $PnR",
            FcsUnsupportedError,
        )
    return datatype, widths, order, ranges


def _channel_list(numbers: list[int]) -> str:
    """Name parameters in a message: "parameter 3", "parameters 1–8", "parameters 1, 4"."""
    if len(numbers) == 1:
        return f"parameter {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"parameters {numbers[0]}–{numbers[-1]}"
    return "parameters " + ", ".join(str(n) for n in numbers)


def _name_parameters(keywords: dict[str, str], n_channels: int, repairs: _Repairs) -> None:
    """Give a parameter without $PnN the name "Pn" (unique among the file's names)."""
    missing = [n for n in range(1, n_channels + 1) if not (keywords.get(f"p{n}n") or "").strip()]
    if not missing:
        return
    taken = {keywords.get(f"p{n}n", "").strip() for n in range(1, n_channels + 1)}
    generated = []
    for n in missing:
        label = f"P{n}"
        while label in taken:
            label += "_"
        taken.add(label)
        keywords[f"p{n}n"] = label
        generated.append(label)
    repairs(
        f"$PnN is missing for {_channel_list(missing)}; named "
        f"{', '.join(repr(g) for g in generated)}",
        FcsTextError,
    )


def _direction(order: list[int]) -> str | None:
    if order == sorted(order):
        return "<"
    if order == sorted(order, reverse=True):
        return ">"
    return None


def _decode_values(
    buf: np.ndarray,
    *,
    n_events: int,
    datatype: str,
    widths: list[int],
    order: list[int],
    name: str,
) -> np.ndarray:
    """(n_events, n_channels) values from the DATA bytes (a uint8 view).

    Uniform widths give a view of the bytes in the stored type (no copy: a million
    14-channel events are read without doubling their memory); mixed widths give
    float64.
    """
    n_channels = len(widths)
    direction = _direction(order)
    uniform = len(set(widths)) == 1 and widths[0] in (1, 2, 4, 8)
    kind = "u" if datatype == "I" else "f"
    if uniform and (direction is not None or widths[0] == 1):
        dtype = np.dtype(f"{direction or '<'}{kind}{widths[0]}")
        return buf.view(dtype).reshape(n_events, n_channels)
    if direction is None and any(w != len(order) for w in widths):
        raise FcsUnsupportedError(
            f"{name}: $BYTEORD {','.join(str(v + 1) for v in order)} is neither ascending "
            f"nor descending and does not match the value width ({widths[0] * 8} bits)"
        )
    records = buf.reshape(n_events, sum(widths))
    out = np.empty((n_events, n_channels), dtype=np.float64)
    offset = 0
    for j, width in enumerate(widths):
        cols = records[:, offset : offset + width]
        offset += width
        padded = 1 << (width - 1).bit_length()  # 1, 2, 4 or 8 bytes
        little = np.zeros((n_events, padded), dtype=np.uint8)
        if direction == "<":
            little[:, :width] = cols
        elif direction == ">":
            little[:, :width] = cols[:, ::-1]
        else:  # a byte permutation of a value as wide as $BYTEORD (FCS 2.0/3.0)
            little[:, order] = cols
        out[:, j] = little.view(f"<{kind}{padded}").ravel()
    return out


def _mask(
    values: np.ndarray, ranges: list[float], widths: list[int], repairs: _Repairs
) -> np.ndarray:
    """Integer values bit-masked to the bits each $PnR allows (as flowio, fcsparser).

    Returns ``values`` itself when nothing is masked, else a masked copy.
    """
    masks: dict[int, int] = {}
    for j, (pnr, width) in enumerate(zip(ranges, widths, strict=True)):
        if pnr <= 0:
            repairs(f"$P{j + 1}R={pnr:g} is not positive; values left unmasked", FcsTextError)
            continue
        bits = _mask_bits(pnr, width * 8)
        if bits < width * 8:
            masks[j] = (1 << bits) - 1
    if not masks:
        return values
    out = values.astype(values.dtype.newbyteorder("="), copy=True)  # writable, native order
    for j, mask in masks.items():
        if out.dtype.kind == "u":
            out[:, j] &= out.dtype.type(mask)
        else:  # mixed widths, decoded to float64
            out[:, j] = (out[:, j].astype(np.uint64) & np.uint64(mask)).astype(np.float64)
    return out


def _data_candidates(
    header: _Header, keywords: Mapping[str, str], repairs: _Repairs
) -> list[tuple[str, int, int]]:
    candidates = []
    start, end = header.data
    if start is not None and end is not None and (start, end) != (0, 0):
        candidates.append(("HEADER", start, end))
    begin_text, end_text = keywords.get("begindata"), keywords.get("enddata")
    if begin_text is not None and end_text is not None:
        begin, finish = _whole_number(begin_text), _whole_number(end_text)
        if begin is None or finish is None:
            repairs(
                f"$BEGINDATA/$ENDDATA ({begin_text.strip()[:20]!r}, {end_text.strip()[:20]!r}) "
                "are not byte offsets; ignored",
                FcsTextError,
            )
        elif (begin, finish) != (0, 0):
            candidates.append(("TEXT", begin, finish))
    return candidates


def _locate_data(
    header: _Header,
    keywords: Mapping[str, str],
    *,
    text: tuple[int, int],
    n_events: int | None,
    event_bytes: int,
    available: int,
    name: str,
    repairs: _Repairs,
) -> tuple[int, int]:
    """(start, n_events) of the DATA segment, relative to the data set's first byte.

    ``available`` is the number of bytes from the data set's start to the end of the
    file. Among the HEADER and TEXT offsets, the pair whose segment holds exactly
    $TOT events wins; an end one byte off (a common export bug) or a segment longer
    than needed is accepted with a warning; a pair pointing into the HEADER or TEXT,
    or past the end of the file, is ruled out.
    """
    candidates = _data_candidates(header, keywords, repairs)
    if not candidates:
        raise FcsOffsetError(
            f"{name}: no DATA segment offsets (HEADER offsets blank or zero and "
            "$BEGINDATA/$ENDDATA absent)"
        )
    text_start, text_end = text
    ranked = []  # (rank, preference, label, start, end, n_events, note)
    for label, start, end in candidates:
        if start < HEADER_BYTES or text_start <= start <= text_end or end < start:
            continue  # points into the HEADER or TEXT, or backwards
        length = end - start + 1
        n = n_events if n_events is not None else length // event_bytes
        need = n * event_bytes
        if start + need > available:
            continue
        extra = length - need
        if extra == 0:
            rank, note = 0, ""
        elif (n_events is None and extra == 1) or (n_events is not None and abs(extra) == 1):
            rank = 1
            note = (
                f"$ENDDATA is off by one ({label} gives DATA end {end}; the declared events "
                f"end at byte {start + need - 1})"
            )
        elif n_events is not None and extra > 1:
            rank = 2
            note = (
                f"DATA segment ({label} bytes {start}–{end}) is {extra} bytes longer than "
                f"$TOT={n} events need; the extra bytes were ignored"
            )
        else:
            continue
        preference = 0 if (label == "TEXT") == (header.version != "2.0") else 1
        ranked.append((rank, preference, label, start, end, n, note))
    if not ranked:
        _raise_unlocated(candidates, text, n_events, event_bytes, available, name)
    ranked.sort()
    rank, _, label, start, end, n, note = ranked[0]
    if note:
        repairs(note, FcsOffsetError)
    others = [c for c in candidates if (c[1], c[2]) != (start, end)]
    for other_label, other_start, other_end in others:
        repairs(
            f"HEADER and TEXT disagree on the DATA segment: {other_label} gives bytes "
            f"{other_start}–{other_end}, {label} gives {start}–{end}; read {label}'s, which "
            f"holds {'exactly ' if rank == 0 else ''}the {n} events declared",
            FcsOffsetError,
        )
    return start, n


def _raise_unlocated(
    candidates: list[tuple[str, int, int]],
    text: tuple[int, int],
    n_events: int | None,
    event_bytes: int,
    available: int,
    name: str,
) -> None:
    described = ", ".join(f"{label} bytes {s}–{e}" for label, s, e in candidates)
    possible = [
        (s, e) for _, s, e in candidates if s >= HEADER_BYTES and not text[0] <= s <= text[1]
    ]
    if not possible:
        raise FcsOffsetError(
            f"{name}: DATA segment offsets ({described}) point into the HEADER or TEXT segment"
        )
    for start, end in possible:
        need = (n_events if n_events is not None else 0) * event_bytes
        if end >= available or start + need > available:
            raise FcsTruncatedError(
                f"{name}: truncated file: DATA segment ({described}) is greater than file "
                f"size ({available} bytes)"
            )
    if n_events is None:
        raise FcsDataError(
            f"{name}: DATA segment ({described}) is not a whole number of {event_bytes}-byte events"
        )
    raise FcsDataError(
        f"{name}: no DATA segment holds the declared events: $TOT={n_events} × "
        f"{event_bytes} bytes per event = {n_events * event_bytes} bytes; offsets: {described}"
    )


def _count_data_sets(raw: bytes, name: str, keywords: Mapping[str, str], repairs: _Repairs) -> int:
    """Data sets in the file: the first plus those its $NEXTDATA chain reaches."""
    count, base = 1, 0
    following = _whole_number((keywords.get("nextdata") or "0").strip() or "0")
    if following is None:
        repairs(f"$NEXTDATA {keywords['nextdata'][:20]!r} is not an offset; ignored", FcsTextError)
        return 1
    while following and count < _MAX_DATA_SETS:
        base += following
        try:
            header = _read_header(raw, name, base)
            start, end = header.text
            next_keywords = _parse_text(raw[base + start : base + end + 1], name, None)
        except FcsReadError as exc:
            repairs(
                f"$NEXTDATA points to byte {base}, where no readable data set starts "
                f"({type(exc).__name__}); ignored",
                FcsOffsetError,
            )
            break
        count += 1
        following = _whole_number((next_keywords.get("nextdata") or "0").strip() or "0") or 0
    return count


def decode_fcs(raw: bytes, *, name: str, strict: bool = False) -> DecodedFcs:
    """Decode the first data set of an FCS file.

    Parameters
    ----------
    raw : bytes
        The whole file.
    name : str
        File name used in messages.
    strict : bool
        Refuse (raise) instead of repairing: offsets off by one, HEADER/TEXT
        disagreement, extra DATA bytes, further data sets, dangling TEXT.

    Returns
    -------
    DecodedFcs

    Raises
    ------
    FcsReadError
        A subclass naming the file and the defect.
    """
    repairs = _Repairs(name, strict=strict)
    header = _read_header(raw, name, 0)
    text_start, text_end = header.text
    data_start = header.data[0]
    if data_start is not None and data_start == text_end and text_end > text_start + 1:
        repairs(
            f"HEADER TEXT end ({text_end}) is the DATA start; TEXT read to byte {text_end - 1}",
            FcsOffsetError,
        )
        text_end -= 1
    keywords = _parse_text(raw[text_start : text_end + 1], name, repairs)
    datatype, widths, order, ranges = _data_layout(keywords, name, repairs)
    _name_parameters(keywords, len(widths), repairs)
    event_bytes = sum(widths)
    n_events = None
    if keywords.get("tot", "").strip() or header.version != "2.0":
        n_events = _required_int(keywords, "tot", name)  # optional in FCS 2.0 only
    start, n_events = _locate_data(
        header,
        keywords,
        text=(text_start, text_end),
        n_events=n_events,
        event_bytes=event_bytes,
        available=len(raw),
        name=name,
        repairs=repairs,
    )
    if n_events == 0:
        raise FcsDataError(f"{name}: the file holds no events ($TOT=0)")
    # every size was checked against the file above, so this view cannot over-read
    buf = np.frombuffer(raw, dtype=np.uint8, count=n_events * event_bytes, offset=start)
    values = _decode_values(
        buf, n_events=n_events, datatype=datatype, widths=widths, order=order, name=name
    )
    if datatype == "I":
        values = _mask(values, ranges, widths, repairs)
    data_sets = _count_data_sets(raw, name, keywords, repairs)
    if data_sets > 1:
        repairs(
            f"the file holds {data_sets} data sets; read the first, skipped {data_sets - 1}",
            FcsUnsupportedError,
        )
    return DecodedFcs(
        version=header.version,
        keywords=keywords,
        stored=values,
        warnings=tuple(repairs.messages),
        data_sets=data_sets,
    )
