"""Feature specification: what each domain's fields are, so models need no special cases.

A :class:`FeatureSpec` lists :class:`Field` objects.  Each field belongs to a
*domain* (``source``, ``target``, ``item``, ``treatment``, ``context``) and has
a kind:

- ``numeric``: a float column; NaN means missing.
- ``categorical``: a string/int column with a vocabulary learned in ``fit``;
  unseen and missing values map to index 0.
- ``multi``: a ``|``-separated string of integer tokens (multi-hot tags or a
  sequence, oldest first); ``""`` or NaN is empty.  ``fit`` learns a dense
  vocabulary of the tokens seen (at most ``VOCABULARY_LIMIT``, the most frequent
  first), so model sizes follow the number of distinct tokens, never the largest
  token: a lone token ``6000`` costs one embedding row, not 6,000.

A multi field may name a ``target``: the categorical field whose values are
tokens of the same vocabulary (a user's clicked categories and the candidate
item's category).  Models can then match the row's target value against the
field, as DIN's target attention does (see
:class:`predictors.torch.layers.SequenceMatch`).

Heterogeneous domains are simply different lists of fields.  The spec is
learned from a training frame (:meth:`FeatureSpec.infer` + :meth:`FeatureSpec.fit`)
and then turns any frame with the same columns into model inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

FieldKind = Literal["numeric", "categorical", "multi"]
MULTI_SEPARATOR = "|"
VOCABULARY_LIMIT = 1000
"""Most distinct tokens a multi field keeps (the most frequent); the rest share one id."""


@dataclass(frozen=True)
class Field:
    """One input field.

    ``vocab`` holds the categories of a categorical field (index 0 is reserved
    for unknown/missing) and ``tokens`` the known tokens of a multi field, increasing:
    token ``tokens[i]`` has id ``i + 1`` (0 is padding, so tokens ``0..N-1`` map to
    ``1..N``).  ``oov`` says the vocabulary was cut at ``VOCABULARY_LIMIT``: every
    other token then shares the out-of-vocabulary id ``N + 1``; without it an unknown
    token is padding (no row ever trained a vector for it).  :meth:`FeatureSpec.fit`
    fills them.  ``default`` is the value a frame without the column stands for (the
    sample columns of :mod:`predictors.torch.samples`); ``None``: frames need the column.
    """

    name: str
    kind: FieldKind
    domain: str
    vocab: tuple[str, ...] = ()
    tokens: tuple[int, ...] = ()
    oov: bool = False
    target: str | None = None  # multi fields: the categorical field holding the same tokens
    default: str | None = None  # what a frame without the column stands for

    def __post_init__(self) -> None:
        if self.target is not None and self.kind != "multi":
            raise ValueError(
                f"field {self.name!r}: only multi fields can name a target field, "
                f"but it is {self.kind}"
            )
        if np.any(np.diff(np.asarray(self.tokens, dtype=np.int64)) <= 0):
            raise ValueError(f"field {self.name!r}: tokens must be strictly increasing")

    @property
    def n_tokens(self) -> int:
        """Number of known tokens of a multi field (ids ``1..n_tokens``)."""
        return len(self.tokens)

    @property
    def n_ids(self) -> int:
        """Rows of an embedding table over the field's ids: padding, tokens, the oov id."""
        return self.n_tokens + 1 + int(self.oov)

    def token_ids(self, tokens: np.ndarray) -> np.ndarray:
        """Ids of int64 ``tokens``: ``i + 1`` for ``tokens[i]``, else the oov id or 0."""
        known = np.asarray(self.tokens, dtype=np.int64)
        values = np.asarray(tokens, dtype=np.int64)
        pos = np.searchsorted(known, values)
        hit = pos < known.size
        hit[hit] = known[pos[hit]] == values[hit]
        return np.where(hit, pos + 1, self.n_tokens + 1 if self.oov else 0).astype(np.int64)


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered collection of fields describing every domain's inputs."""

    fields: tuple[Field, ...]
    fitted: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        kinds = {f.name: f.kind for f in self.fields}
        for f in self.fields:
            if f.target is not None and kinds.get(f.target) != "categorical":
                found = kinds.get(f.target, "not in the spec")
                raise ValueError(
                    f"field {f.name!r} names target field {f.target!r}, which must be a "
                    f"categorical field of the same spec ({f.target!r} is {found})"
                )

    @classmethod
    def infer(
        cls,
        frame: pd.DataFrame,
        domains: Mapping[str, str],
        *,
        categorical: Iterable[str] = (),
        exclude: Iterable[str] = (),
        targets: Mapping[str, str] | None = None,
    ) -> FeatureSpec:
        """Infer fields from column names.

        ``domains`` maps a column-name prefix (e.g. ``"src_"``) or an exact column
        name to a domain.  Columns ending in ``_tags``/``_seq`` are multi fields,
        columns listed in ``categorical`` or of non-numeric dtype are categorical,
        the rest numeric.  Columns matching no entry of ``domains`` are ignored.
        ``targets`` maps a multi field to its target field (see :class:`Field`);
        entries whose columns are not both features are skipped.
        """
        categorical, exclude = set(categorical), set(exclude)
        targets = dict(targets or {})
        fields: list[Field] = []
        for name in frame.columns:
            if name in exclude:
                continue
            domain = domains.get(name) or next(
                (d for prefix, d in domains.items() if name.startswith(prefix)), None
            )
            if domain is None:
                continue
            if name.endswith(("_tags", "_seq")):
                kind: FieldKind = "multi"
            elif name in categorical or not pd.api.types.is_numeric_dtype(frame[name]):
                kind = "categorical"
            else:
                kind = "numeric"
            fields.append(Field(name=name, kind=kind, domain=domain))
        if not fields:
            raise ValueError(
                f"no feature columns matched {sorted(domains)}; columns were {list(frame.columns)}"
            )
        names = {f.name for f in fields}
        fields = [
            replace(f, target=targets[f.name])
            if f.kind == "multi" and targets.get(f.name) in names
            else f
            for f in fields
        ]
        return cls(fields=tuple(fields))

    def fit(self, *frames: pd.DataFrame, vocabulary_limit: int = VOCABULARY_LIMIT) -> FeatureSpec:
        """Return a copy with vocabularies learned from ``frames``.

        Each field learns from the first frame that has its column, so a spec of
        joined rows can learn from the tables they are joined from (users, items,
        coupon options) instead of from whichever rows a model trains on.  A multi
        field keeps the tokens it sees, at most ``vocabulary_limit`` of them (the
        most frequent; ties keep the smaller token).
        """
        if not frames:
            raise TypeError("fit needs at least one frame")
        if vocabulary_limit < 1:
            raise ValueError(f"vocabulary_limit must be >= 1, got {vocabulary_limit}")
        self.check_columns(*frames)
        fitted = []
        for f in self.fields:
            col = next(frame[f.name] for frame in frames if f.name in frame.columns)
            if f.kind == "categorical":
                values = sorted(col.dropna().astype(str).unique())
                fitted.append(replace(f, vocab=("<unk>", *values)))
            elif f.kind == "multi":
                fitted.append(_fit_tokens(f, split_tokens(col, field=f.name), vocabulary_limit))
            else:
                fitted.append(f)
        return FeatureSpec(fields=tuple(fitted), fitted=True)

    def select(self, keep: Callable[[Field], bool]) -> FeatureSpec:
        """The fields for which ``keep`` is true; a kept field whose target is dropped loses it."""
        kept = [f for f in self.fields if keep(f)]
        names = {f.name for f in kept}
        fields = tuple(
            f if f.target in names or f.target is None else replace(f, target=None) for f in kept
        )
        return FeatureSpec(fields=fields, fitted=self.fitted)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def of_domain(self, domain: str) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.domain == domain)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.domain for f in self.fields))

    def require_domains(self, domains: Iterable[str], *, model: str) -> None:
        """Raise a ValueError naming the first of ``domains`` without fields (``model`` needs it)."""
        for needed in domains:
            if not self.of_domain(needed):
                raise ValueError(
                    f"{model} needs fields of domain {needed!r}; the spec has domains {self.domains}"
                )

    def check_columns(self, *frames: pd.DataFrame) -> None:
        """Raise a ValueError naming every column that none of ``frames`` has."""
        missing = [n for n in self.names if not any(n in frame.columns for frame in frames)]
        if missing:
            raise ValueError(
                f"input frame lacks feature columns {missing}; "
                f"pass a frame with the columns the model was fitted on ({list(self.names)})"
            )

    def encode_categorical(self, f: Field, column: pd.Series) -> np.ndarray:
        """Codes of a categorical field, 0 for unknown or missing."""
        index = {v: i for i, v in enumerate(f.vocab)}
        return column.astype("string").map(index).fillna(0).to_numpy(dtype=np.int64)

    def to_dict(self) -> dict:
        """JSON-safe description, used when saving a model."""
        return {
            "fields": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "domain": f.domain,
                    "vocab": list(f.vocab),
                    "tokens": list(f.tokens),
                    "oov": f.oov,
                    "target": f.target,
                    "default": f.default,
                }
                for f in self.fields
            ],
            "fitted": self.fitted,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FeatureSpec:
        """Inverse of :meth:`to_dict`; an older description's ``n_tokens`` means tokens
        ``0..n_tokens-1``."""
        fields = tuple(
            Field(
                name=d["name"],
                kind=d["kind"],
                domain=d["domain"],
                vocab=tuple(d.get("vocab", ())),
                tokens=tuple(int(t) for t in d.get("tokens", range(int(d.get("n_tokens", 0))))),
                oov=bool(d.get("oov", False)),
                target=d.get("target"),
                default=d.get("default"),
            )
            for d in data["fields"]
        )
        return cls(fields=fields, fitted=bool(data.get("fitted", False)))


def _fit_tokens(f: Field, tokens: np.ndarray, limit: int) -> Field:
    """``f`` with the vocabulary of ``tokens``: every distinct one, or the ``limit`` most frequent.

    A field without any token keeps token 0, so its sizes (and a log of its size) stay defined.
    """
    values, counts = np.unique(tokens, return_counts=True)  # increasing tokens
    if not values.size:
        return replace(f, tokens=(0,), oov=False)
    if values.size <= limit:
        return replace(f, tokens=tuple(values.tolist()), oov=False)
    order = np.argsort(-counts, kind="stable")[:limit]  # most frequent, smaller token first
    return replace(f, tokens=tuple(np.sort(values[order]).tolist()), oov=True)


def split_tokens(column: pd.Series, *, field: str = "multi field") -> np.ndarray:
    """All integer tokens of a ``|``-separated column, flattened (for vocabularies).

    Empty tokens (``"1||2"``) are skipped; a token that is not an integer or does not
    fit int64 raises a ValueError naming ``field`` and the row.
    """
    text = column.fillna("").astype(str).to_numpy()
    tokens, _ = parse_tokens(text, field)
    return tokens


def parse_tokens(text: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
    """``(tokens, rows)``: every token of an array of ``|``-strings and the row it came from.

    Vectorised for clean text; empty tokens are dropped and a token that is not an
    integer (or lies beyond int64) raises a ValueError naming ``field``, row and token.
    """
    n = len(text)
    nonempty = np.fromiter((len(t) > 0 for t in text), dtype=bool, count=n)
    if not nonempty.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    counts[nonempty] = np.char.count(text[nonempty].astype(str), MULTI_SEPARATOR) + 1
    parts = MULTI_SEPARATOR.join(text[nonempty]).split(MULTI_SEPARATOR)
    rows = np.repeat(np.arange(n), counts)
    try:
        return np.asarray(parts, dtype=np.int64), rows
    except (ValueError, OverflowError):
        return _parse_tokens_slowly(field, parts, rows)


def _parse_tokens_slowly(
    field: str, parts: list[str], rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Token parsing that drops empty tokens (``"1||2"``, trailing ``|``) and names bad ones."""
    stripped = [p.strip() for p in parts]
    values = np.zeros(len(parts), dtype=np.int64)
    keep = np.ones(len(parts), dtype=bool)
    for i, token in enumerate(stripped):
        if not token:
            keep[i] = False
            continue
        number = _integer(token)
        if number is None or not _INT64_MIN <= number <= _INT64_MAX:
            raise ValueError(
                f"multi field {field!r}: row {int(rows[i])} holds token {parts[i]!r}; "
                f"tokens must be integers (within int64) separated by {MULTI_SEPARATOR!r}"
            )
        values[i] = number
    return values[keep], rows[keep]


_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def _integer(token: str) -> int | None:
    """The integer a token spells (``"7"``, ``"7.0"``, ``"7e0"``), or None."""
    try:
        return int(token)
    except ValueError:
        pass
    try:
        number = float(token)
    except ValueError:
        return None
    return int(number) if np.isfinite(number) and number.is_integer() else None


def multi_hot_counts(f: Field, column: pd.Series) -> np.ndarray:
    """Token counts per row, shape ``(rows, n_tokens + oov)`` float32, in id order.

    Known tokens count in their column; with ``f.oov`` the last column counts every
    other token; without it unknown tokens are dropped.
    """
    text = column.fillna("").astype(str).to_numpy()
    out = np.zeros((len(text), f.n_tokens + int(f.oov)), dtype=np.float32)
    tokens, rows = parse_tokens(text, f.name)
    ids = f.token_ids(tokens)
    keep = ids > 0
    np.add.at(out, (rows[keep], ids[keep] - 1), 1.0)
    return out
