"""Feature specification: what each domain's fields are, so models need no special cases.

A :class:`FeatureSpec` lists :class:`Field` objects.  Each field belongs to a
*domain* (``source``, ``target``, ``item``, ``treatment``, ``context``) and has
a kind:

- ``numeric``: a float column; NaN means missing.
- ``categorical``: a string/int column with a vocabulary learned in ``fit``;
  unseen and missing values map to index 0.
- ``multi``: a ``|``-separated string of integer tokens (multi-hot tags or a
  sequence, oldest first); ``""`` or NaN is empty.

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


@dataclass(frozen=True)
class Field:
    """One input field.

    ``vocab`` holds the categories of a categorical field (index 0 is reserved
    for unknown/missing) and ``n_tokens`` the token count of a multi field
    (tokens are ``0..n_tokens-1``); both are filled by :meth:`FeatureSpec.fit`.
    """

    name: str
    kind: FieldKind
    domain: str
    vocab: tuple[str, ...] = ()
    n_tokens: int = 0
    target: str | None = None  # multi fields: the categorical field holding the same tokens

    def __post_init__(self) -> None:
        if self.target is not None and self.kind != "multi":
            raise ValueError(
                f"field {self.name!r}: only multi fields can name a target field, "
                f"but it is {self.kind}"
            )


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

    def fit(self, *frames: pd.DataFrame) -> FeatureSpec:
        """Return a copy with vocabularies and token counts learned from ``frames``.

        Each field learns from the first frame that has its column, so a spec of
        joined rows can learn from the tables they are joined from (users, items,
        coupon options) instead of from whichever rows a model trains on.
        """
        if not frames:
            raise TypeError("fit needs at least one frame")
        self.check_columns(*frames)
        fitted = []
        for f in self.fields:
            col = next(frame[f.name] for frame in frames if f.name in frame.columns)
            if f.kind == "categorical":
                values = sorted(col.dropna().astype(str).unique())
                fitted.append(replace(f, vocab=("<unk>", *values)))
            elif f.kind == "multi":
                tokens = split_tokens(col)
                fitted.append(replace(f, n_tokens=int(tokens.max()) + 1 if tokens.size else 1))
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
                    "n_tokens": f.n_tokens,
                    "target": f.target,
                }
                for f in self.fields
            ],
            "fitted": self.fitted,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FeatureSpec:
        fields = tuple(
            Field(
                name=d["name"],
                kind=d["kind"],
                domain=d["domain"],
                vocab=tuple(d.get("vocab", ())),
                n_tokens=int(d.get("n_tokens", 0)),
                target=d.get("target"),
            )
            for d in data["fields"]
        )
        return cls(fields=fields, fitted=bool(data.get("fitted", False)))


def split_tokens(column: pd.Series) -> np.ndarray:
    """All integer tokens of a ``|``-separated column, flattened (for vocabularies)."""
    text = column.fillna("").astype(str)
    joined = MULTI_SEPARATOR.join(t for t in text if t)
    if not joined:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(joined.split(MULTI_SEPARATOR), dtype=np.int64)


def multi_hot_counts(column: pd.Series, n_tokens: int) -> np.ndarray:
    """Token counts per row, shape ``(rows, n_tokens)``; tokens >= n_tokens are dropped."""
    text = column.fillna("").astype(str).to_numpy()
    lengths = np.fromiter(
        (0 if not t else t.count(MULTI_SEPARATOR) + 1 for t in text),
        dtype=np.int64,
        count=len(text),
    )
    out = np.zeros((len(text), n_tokens), dtype=np.float32)
    if lengths.sum() == 0:
        return out
    tokens = np.asarray(MULTI_SEPARATOR.join(t for t in text if t).split(MULTI_SEPARATOR), np.int64)
    rows = np.repeat(np.arange(len(text)), lengths)
    keep = tokens < n_tokens
    np.add.at(out, (rows[keep], tokens[keep]), 1.0)
    return out
