"""The compact row encoding of the online profile store: a few microseconds to decode a member.

A payload is ``null bitmap + packed numbers + JSON text``:

- columns of an integer, float or boolean dtype (numpy or pandas nullable) are packed
  little-endian as int64, float64 or bool, one bit of the bitmap marking each missing value;
  ``struct.unpack`` reads them back as Python ``int``, ``float`` and ``bool``, exactly;
- every other column (str, dates, object columns) is one element of a JSON array: each value
  keeps its own JSON type, and dates become ISO strings (``2024-01-31``, or
  ``2024-01-31T08:30:00`` when a time is set).

Missing values (None, NaN, pd.NA, NaT) decode as None. ``struct`` reads 150 numbers about
ten times faster than ``json.loads``; with the dict built, a member decodes in less than half
the time of a JSON array of the same values (``benchmarks/store.py`` measures both). The
column list is stored once per load (:meth:`ProfileCodec.to_json`), not in every row.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from nba.errors import DataError

CODEC_FORMAT: Final = 1
# struct code -> numpy dtype of the packed field
PACKED: Final[dict[str, str]] = {"q": "<i8", "d": "<f8", "?": "?"}
# object columns whose values pandas infers as one of these are accepted; others are refused early
TEXT_KINDS: Final = frozenset(
    {"string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "date", "datetime"}
)
INT64_MAX: Final = np.iinfo(np.int64).max


def column_code(series: pd.Series) -> str:
    """``q``, ``d`` or ``?`` for a column packed as a number; ``json`` for the others."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "?"
    if pd.api.types.is_integer_dtype(dtype):
        return "q"
    if pd.api.types.is_float_dtype(dtype):
        return "d"
    return "json"


class ProfileCodec:
    """Encodes feature frames into row payloads and decodes one payload into a dict."""

    def __init__(self, packed: Sequence[tuple[str, str]], text: Sequence[str]) -> None:
        self.packed = tuple((str(name), str(code)) for name, code in packed)
        self.text = tuple(str(name) for name in text)
        self.names = tuple(name for name, _ in self.packed) + self.text
        self._mask_bytes = (len(self.packed) + 7) // 8
        self._numbers = struct.Struct("<" + "".join(code for _, code in self.packed))
        self._text_offset = self._mask_bytes + self._numbers.size
        self._record = np.dtype(
            [("mask", "u1", (self._mask_bytes,))]
            + [(f"f{i}", PACKED[code]) for i, (_, code) in enumerate(self.packed)]
        )

    @classmethod
    def for_frame(cls, features: pd.DataFrame) -> ProfileCodec:
        """The codec of these feature columns; refuses names and values it cannot store."""
        _check_names(features.columns)
        packed: list[tuple[str, str]] = []
        text: list[str] = []
        for name in features.columns:
            code = column_code(features[name])
            _check_column(features[name], code)
            if code == "json":
                text.append(name)
            else:
                packed.append((name, code))
        return cls(packed, text)

    def to_json(self) -> str:
        return json.dumps({"format": CODEC_FORMAT, "packed": self.packed, "text": self.text})

    @classmethod
    def from_json(cls, stored: str) -> ProfileCodec:
        spec = json.loads(stored)
        if spec.get("format") != CODEC_FORMAT:
            raise DataError(
                f"online store codec format {spec.get('format')!r} is not supported; "
                f"expected {CODEC_FORMAT}: publish the profiles again with this version"
            )
        return cls([tuple(pair) for pair in spec["packed"]], spec["text"])

    def encode(self, features: pd.DataFrame) -> list[bytes]:
        """One payload per row of ``features`` (its columns are those of the codec)."""
        record = np.zeros(len(features), dtype=self._record)
        missing = np.zeros((len(features), len(self.packed)), dtype=bool)
        for i, (name, code) in enumerate(self.packed):
            record[f"f{i}"], missing[:, i] = _packed_values(features[name], code)
        record["mask"] = np.packbits(missing, axis=1, bitorder="little")
        size = record.dtype.itemsize
        flat = record.tobytes()
        heads = [flat[start : start + size] for start in range(0, len(flat), size)] if size else []
        heads = heads or [b""] * len(features)
        if not self.text:
            return heads
        columns = [_text_values(features[name], name) for name in self.text]
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        return [
            head + dumps(row).encode() for head, row in zip(heads, zip(*columns, strict=True), strict=True)
        ]

    def decode(self, payload: bytes) -> dict[str, object]:
        """The feature values of one payload, by column name (numbers first, then text)."""
        values: list[Any] = list(self._numbers.unpack_from(payload, self._mask_bytes))
        mask = int.from_bytes(payload[: self._mask_bytes], "little")
        while mask:
            lowest = mask & -mask
            values[lowest.bit_length() - 1] = None
            mask ^= lowest
        if self.text:
            values.extend(json.loads(payload[self._text_offset :]))
        return dict(zip(self.names, values, strict=False))  # same length by construction; strict costs 10%


def _check_names(columns: pd.Index) -> None:
    odd = [name for name in columns if not isinstance(name, str) or not name]
    if odd:
        raise DataError(
            f"profile feature columns must be named by non-empty strings; got {len(odd)} other names, "
            f"for example {odd[:3]!r}"
        )
    duplicated = sorted(set(columns[columns.duplicated()]))
    if duplicated:
        raise DataError(f"profile feature columns must be unique; got {duplicated[:3]!r} more than once")


def _check_column(series: pd.Series, code: str) -> None:
    if code == "q" and series.dtype.kind == "u" and len(series) and series.max() > INT64_MAX:
        raise DataError(
            f"column {series.name!r} holds integers above {INT64_MAX:,} (max {series.max():,}); "
            "expected values that fit in a signed 64-bit integer"
        )
    if code != "json" or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return
    kind = pd.api.types.infer_dtype(series.to_numpy(dtype=object), skipna=True)
    if kind.startswith("mixed"):
        _text_values(series, str(series.name))  # checks every value of a mixed column up front
    elif kind not in TEXT_KINDS:
        example = series.dropna().iloc[0]
        raise DataError(
            f"column {series.name!r} holds {kind} values such as {example!r} "
            f"({type(example).__name__}); expected int, float, bool, str or date values"
        )


def _packed_values(series: pd.Series, code: str) -> tuple[np.ndarray, np.ndarray]:
    """The column as a numpy array of the packed type (missing values as 0) and its missing mask."""
    if code == "d":
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return values, np.isnan(values)
    missing = series.isna().to_numpy()
    return series.to_numpy(dtype=PACKED[code], na_value=0), missing


def _text_values(series: pd.Series, column: str) -> list[object]:
    """The column as plain JSON-ready Python values, missing values as None."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _datetime_strings(series)
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        values[missing] = None
        return values.tolist()
    return [None if gone else _plain(value, column) for value, gone in zip(values, missing, strict=True)]


def _datetime_strings(series: pd.Series) -> list[object]:
    """ISO dates when every value is a midnight without a time zone, ISO datetimes otherwise."""
    present = series.dropna()
    dates_only = series.dt.tz is None and bool((present == present.dt.normalize()).all())
    text = series.dt.strftime("%Y-%m-%d") if dates_only else series.map(pd.Timestamp.isoformat)
    return [None if gone else value for value, gone in zip(text.tolist(), series.isna(), strict=True)]


def _plain(value: object, column: str) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    raise DataError(
        f"column {column!r} holds a {type(value).__name__} value ({value!r}); "
        "expected int, float, bool, str or date values"
    )
