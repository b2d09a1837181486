"""AccountAnomaly: unsupervised suspicion of an account's order, learned online from traffic.

River's ``HalfSpaceTrees`` learns from a deterministic sample of the traffic (every k-th vector)
and stays the source of truth; scoring runs on a Numba copy of its trees (``hst_numba``) that is
bit-for-bit equal to River's ``score_one``. Inputs are squashed into [0, 1] by fixed per-column
transforms (``squash``) rather than a drifting ``MinMaxScaler``.

Choice by measurement (``python tests/models/bench_models.py anomaly``): progressive ROC-AUC
(score, then learn, one vector at a time) on three seeded synthetic streams of 30,000 account
vectors, 1% takeovers of which half are stealthy, with travelling customers, sell-everything
rebalances and small-cap news rushes among the normal ones; AUC over vectors 8,000..30,000.

=========================  ===================  =====================
model (River defaults)     AUC, seeds 0 / 1 / 2  score+learn, µs/order
=========================  ===================  =====================
HalfSpaceTrees, squashed   0.983 0.982 0.979     17
MinMaxScaler | HST, raw    0.986 0.984 0.984
LODA, squashed             0.992 0.991 0.989     167
OneClassSVM(nu=.2), sq.    0.979 0.975 0.975
HST 25 trees / height 10   0.984 / 0.980 (seed 0)  43 / 32
AccountAnomaly k=1/4/16    0.981 / 0.981 / 0.981 (mean; batches of 64)
=========================  ===================  =====================

LODA ranks about 0.01 better here but costs ten times as much per order in River and has no exact
port; HST's score is a walk over integer masses that ports to Numba exactly, and its fixed window
forgets old traffic by design. MinMax on raw inputs is marginally better on this stream, but its
limits move with every outlier, so squashed HST is the choice. Sampling every k-th vector costs no
AUC up to k=16; the default k=4 keeps a window of 1,000 orders.

Speed (``python tests/models/bench_models.py speed``, 10 trees, height 8, one core of the dev box):

==============  ======================  =============================
batch size      score_many (Numba)      River score_one loop
==============  ======================  =============================
1               3.4 µs/order            12.5 µs/order
64              0.24 µs/order           9.6 µs/order
1024            0.19 µs/order           9.9 µs/order
==============  ======================  =============================

``learn_many`` in batches of 64: 8.6 µs/order at k=1, 2.8 at k=4, 1.4 at k=16 (only the sampled
vectors reach River). At batch 1 most of the 3.4 µs is the input check and two Numba dispatches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from tradeguard.models.base import OrderScorer
from tradeguard.models.hst_numba import copy_trees, hst_score_batch, refresh_masses

if TYPE_CHECKING:
    from river.anomaly import HalfSpaceTrees

__all__ = ["AccountAnomaly"]


class AccountAnomaly(OrderScorer):
    """River's HalfSpaceTrees over squashed account features, scored by a Numba port.

    Parameters
    ----------
    columns
        Feature names, in the column order of every X this model will see.
    squash
        Squash kind per column name ("flag", "ratio", "seconds"; see ``squash``); unnamed columns
        are "ratio". Fixed for the model's life, so scores stay comparable across snapshots.
    n_trees, height, window_size, seed
        HalfSpaceTrees' own parameters. Scores are 0 until the first window has been learned.
    learn_every
        Learn one vector in every ``learn_every`` offered (by global position, so the same stream
        teaches the same model however it is batched). Halves-to-quarters the learning cost with
        no measurable loss of ranking (see the measurements above); the window then spans
        ``window_size * learn_every`` orders.

    Examples
    --------
    >>> import numpy as np
    >>> columns = ("secs_since_login", "new_device", "liquidation_ratio")
    >>> model = AccountAnomaly(columns, {"secs_since_login": "seconds", "new_device": "flag"},
    ...                        window_size=50, learn_every=1)
    >>> rng = np.random.default_rng(0)
    >>> usual = np.column_stack([rng.uniform(3e3, 1e5, 500), np.zeros(500), rng.uniform(0, .1, 500)])
    >>> model.learn_many(usual)
    >>> model.version
    'hst-v1+500'
    >>> takeover = np.array([[30.0, 1.0, 1.0]])
    >>> bool(model.score_many(takeover)[0] > model.score_many(usual[:100]).max())
    True
    """

    name = "hst"
    revision = 1

    def __init__(
        self,
        columns: Sequence[str],
        squash: Mapping[str, str | tuple[str, float]] | None = None,
        *,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        learn_every: int = 4,
        seed: int = 42,
    ):
        super().__init__(columns, squash)
        if learn_every < 1:
            raise ValueError(f"learn_every must be >= 1, got {learn_every}")
        self.learn_every = learn_every
        # River, and the SciPy its anomaly package pulls in (seconds), is imported when the
        # first model is built: a worker builds one while its consumer joins the group.
        from river.anomaly import HalfSpaceTrees

        self._hst = HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        self.n_offered = 0
        self._arrays = None  # the Numba copy of River's trees, made on first learning

    @property
    def river(self) -> HalfSpaceTrees:
        """The River model that learns; the source of truth the Numba port copies."""
        return self._hst

    def score_many(self, X) -> np.ndarray:
        return self._score_squashed(self.squashed(X))

    def _score_squashed(self, Xs: np.ndarray) -> np.ndarray:
        hst = self._hst
        if self.n_learned < hst.window_size:  # River scores 0 until a reference window exists
            return np.zeros(len(Xs))
        a = self._arrays
        return hst_score_batch(
            Xs, a.feature, a.threshold, a.r_mass, hst.height, hst.size_limit, float(hst._max_score)
        )

    @property
    def windows(self) -> int:
        """Reference windows learned so far: the part of the state that scores depend on."""
        return self.n_learned // self._hst.window_size

    def score_learn_many(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Score each row with the model as it was just before it, then learn it.

        Scores only change when a window rolls over, so the batch is cut right
        after each row whose learning completes a window: every row gets the
        score it would get one at a time, however the stream is batched.
        Returns the scores and, per row, the ``windows`` count that scored it.
        """
        # Checked and squashed once for both (a paced worker calls this with one row).
        X = self.squashed(X)
        n, k, size = len(X), self.learn_every, self._hst.window_size
        positions = self.n_offered + np.arange(n)
        learned = positions % k == 0
        learned_so_far = self.n_learned + np.cumsum(learned)
        rolls = np.flatnonzero(learned & (learned_so_far % size == 0))
        scores, windows = np.empty(n), np.empty(n, dtype=np.int64)
        start = 0
        for stop in list(rolls + 1) + [n]:
            if stop > start:
                scores[start:stop] = self._score_squashed(X[start:stop])
                windows[start:stop] = self.windows
                self._learn_squashed(X[start:stop])
            start = stop
        return scores, windows

    def learn_many(self, X, y=None) -> None:
        """Learn every ``learn_every``-th row (by global position); y is ignored."""
        self._learn_squashed(self.squashed(X))

    def _learn_squashed(self, Xs: np.ndarray) -> None:
        first = -self.n_offered % self.learn_every  # first row whose global index is a multiple
        rows = Xs[first :: self.learn_every]
        for row in rows:
            self._hst.learn_one(dict(zip(self.columns, row.tolist())))
        windows_before = self.n_learned // self._hst.window_size
        self.n_offered += len(Xs)
        self.n_learned += len(rows)
        if self._arrays is None and self.n_learned:
            self._arrays = copy_trees(self._hst, self.columns)
        elif self.n_learned // self._hst.window_size != windows_before:
            refresh_masses(self._arrays)

    def __getstate__(self):
        # The arrays are derived from River's trees; a snapshot keeps only the source of truth.
        return {**self.__dict__, "_arrays": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.n_learned:
            self._arrays = copy_trees(self._hst, self.columns)
