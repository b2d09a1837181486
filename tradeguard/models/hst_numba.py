"""HalfSpaceTrees scoring as one Numba call per batch, read from River's live trees.

River's ``HalfSpaceTrees`` stays the source of truth: it learns, and this module only copies its
trees into flat NumPy arrays and walks them. Each tree of height h is complete, so it is stored in
heap order (children of node i at 2i+1 and 2i+2), one row per tree. The split features and
thresholds never change after River builds the trees; the reference masses (``r_mass``) that a
score reads change only when River's window rolls over, so ``refresh_masses`` is all that runs
after learning. ``hst_score_batch`` reproduces ``HalfSpaceTrees.score_one`` bit for bit (the masses
are integers, so every partial sum is exact); tests/models hold the two equal on random inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np

if TYPE_CHECKING:
    from river.anomaly import HalfSpaceTrees

__all__ = ["HSTArrays", "copy_trees", "hst_score_batch", "refresh_masses"]


class HSTArrays(NamedTuple):
    """River's HST as arrays of shape (n_trees, 2**(height+1) - 1), heap order."""

    feature: np.ndarray  # int64 column index of each split; -1 at leaves
    threshold: np.ndarray  # float64 split point: x < threshold goes left
    r_mass: np.ndarray  # int64 reference-window mass, what scoring reads
    nodes: list  # River's node objects, same order, so masses can be re-read cheaply


def copy_trees(hst: HalfSpaceTrees, columns: tuple[str, ...]) -> HSTArrays:
    """Flatten hst's trees (built by its first learn_one) with features as indices into columns."""
    from river.tree.padded import PaddedBranch  # River is loaded by now: hst is one of its

    n_nodes = 2 ** (hst.height + 1) - 1
    shape = (hst.n_trees, n_nodes)
    feature = np.full(shape, -1, dtype=np.int64)
    threshold = np.zeros(shape)
    nodes = []
    index = {name: j for j, name in enumerate(columns)}
    for t, root in enumerate(hst.trees):
        row = [None] * n_nodes
        stack = [(root, 0)]
        while stack:
            node, i = stack.pop()
            row[i] = node
            if isinstance(node, PaddedBranch):
                feature[t, i] = index[node.feature]
                threshold[t, i] = node.threshold
                stack += [(node.children[0], 2 * i + 1), (node.children[1], 2 * i + 2)]
        nodes.extend(row)
    arrays = HSTArrays(feature, threshold, np.zeros(shape, dtype=np.int64), nodes)
    refresh_masses(arrays)
    return arrays


def refresh_masses(arrays: HSTArrays) -> None:
    """Re-read every node's r_mass from River (after its window rolled over)."""
    masses = np.fromiter((node.r_mass for node in arrays.nodes), np.int64, len(arrays.nodes))
    arrays.r_mass[...] = masses.reshape(arrays.r_mass.shape)


@numba.njit(cache=True)
def hst_score_batch(X, feature, threshold, r_mass, height, size_limit, max_score):
    """Walk every row of X (n, F, already in [0, 1]) down every tree, summing r_mass * 2**depth
    until a node's r_mass drops below size_limit, as River's _walk_score; 1 - sum / max_score."""
    n = X.shape[0]
    n_trees = feature.shape[0]
    out = np.empty(n)
    for i in range(n):
        total = 0.0
        for t in range(n_trees):
            node = 0
            depth_pow = 1
            score = 0.0
            for depth in range(height + 1):
                r = r_mass[t, node]
                score += r * depth_pow
                if depth == height or r < size_limit:  # a leaf, or too few reference points
                    break
                if X[i, feature[t, node]] < threshold[t, node]:
                    node = 2 * node + 1
                else:
                    node = 2 * node + 2
                depth_pow <<= 1
            total += score
        out[i] = 1.0 - total / max_score
    return out
