"""The one interface every TradeGuard model speaks, and its snapshot format.

River's verbs in batch form: ``score_many`` (higher = more suspicious, always in [0, 1]) and
``learn_many``. The policy and the agents hold an ``OrderScorer`` and never care which model it is.
Each decision names ``version`` ("hst-v1+12034": model name, revision, vectors learned), and a model
is saved and restored with ``to_bytes`` / ``from_bytes``.

Snapshot layout: ``MAGIC | format (u16) | crc32 of body (u32) | body``, where body is a pickle of
``(model name, revision, model)``. The CRC turns a truncated or bit-flipped snapshot into a clear
``SnapshotError`` instead of a confusing unpickling failure. It is not a signature: pickle runs code
on load, so only load snapshots this service wrote itself.
"""

from __future__ import annotations

import abc
import pickle
import struct
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from tradeguard.models.squash import squash_codes, squash_matrix

__all__ = ["OrderScorer", "SnapshotError", "check_matrix"]

MAGIC = b"TGMODEL\x00"
FORMAT = 1
_HEADER = struct.Struct(">HI")


class SnapshotError(ValueError):
    """A snapshot that is foreign, corrupt, or for another model or revision."""


def check_matrix(X, columns: tuple[str, ...]) -> np.ndarray:
    """X as a float64 (n, F) array with no NaN, or a ValueError naming what is wrong."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(columns):
        raise ValueError(
            f"expected a (n, {len(columns)}) matrix with columns {list(columns)}, "
            f"got shape {X.shape}"
        )
    if np.isnan(X).any():
        bad = [columns[j] for j in np.flatnonzero(np.isnan(X).any(axis=0))]
        raise ValueError(f"NaN in feature columns {bad}")
    return X


class OrderScorer(abc.ABC):
    """Scores account feature vectors; higher means more likely a hijacked account.

    Subclasses set ``name`` and ``revision`` (bump the revision when the meaning of the learned
    state changes, so old snapshots are refused) and count ``n_learned``. Every model sees the
    features through the same fixed squash into [0, 1] (see ``squash``), set up here.
    """

    name: str
    revision: int
    n_learned: int

    def __init__(
        self, columns: Sequence[str], squash: Mapping[str, str | tuple[str, float]] | None = None
    ):
        self.columns = tuple(columns)
        if not self.columns or len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns must be distinct feature names, got {list(self.columns)}")
        self.squash = dict(squash or {})
        self._codes, self._halves = squash_codes(self.columns, self.squash)
        self.n_learned = 0

    @abc.abstractmethod
    def score_many(self, X: np.ndarray) -> np.ndarray:
        """Suspicion in [0, 1] per row of X (n, F), float64 of shape (n,)."""

    @abc.abstractmethod
    def learn_many(self, X: np.ndarray, y: np.ndarray | None = None) -> None:
        """Learn from the rows of X; y (bool per row) is used by supervised models only."""

    @property
    def version(self) -> str:
        """Stable model name, revision and vectors learned, e.g. ``"hst-v1+12034"``."""
        return f"{self.name}-v{self.revision}+{self.n_learned}"

    def squashed(self, X) -> np.ndarray:
        """X checked and mapped into [0, 1], as this model (and its River twin) sees it."""
        return squash_matrix(check_matrix(X, self.columns), self._codes, self._halves)

    def to_bytes(self) -> bytes:
        body = pickle.dumps((self.name, self.revision, self), protocol=pickle.HIGHEST_PROTOCOL)
        return MAGIC + _HEADER.pack(FORMAT, zlib.crc32(body)) + body

    @classmethod
    def from_bytes(cls, blob: bytes):
        """The model saved by ``to_bytes``; SnapshotError if blob is not one of ``cls``'s."""
        head = len(MAGIC) + _HEADER.size
        if not isinstance(blob, (bytes, bytearray)) or blob[: len(MAGIC)] != MAGIC:
            raise SnapshotError("not a TradeGuard model snapshot (bad magic header)")
        if len(blob) < head:
            raise SnapshotError("truncated TradeGuard model snapshot (header incomplete)")
        fmt, crc = _HEADER.unpack_from(blob, len(MAGIC))
        if fmt != FORMAT:
            raise SnapshotError(f"snapshot format {fmt} is not supported (expected {FORMAT})")
        body = bytes(blob[head:])
        if zlib.crc32(body) != crc:
            raise SnapshotError("corrupt TradeGuard model snapshot (checksum mismatch)")
        try:
            name, revision, model = pickle.loads(body)
        except Exception as exc:  # a class that no longer exists, a renamed module, ...
            raise SnapshotError(f"snapshot cannot be unpickled by this code: {exc!r}") from exc
        if not isinstance(model, cls):
            raise SnapshotError(
                f"snapshot holds {type(model).__name__} ({name}-v{revision}), expected {cls.__name__}"
            )
        if revision != model.revision:
            # The class attribute is this code's revision; the header says what wrote the state.
            raise SnapshotError(f"snapshot holds {name}-v{revision}, this code reads v{model.revision}")
        return model
