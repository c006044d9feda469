"""The compiled loops of `nightscore.treeshap` (numba; imported only when reasons are made).

Compiled on first use and cached on disk, so a task pays the compilation once per
machine, not once per process.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def leaf_table(value: float, z: np.ndarray) -> np.ndarray:
    """A leaf's 2^d x d contributions: entry mask * d + i is feature slot i's value for a
    row meeting exactly the conditions of the slots set in `mask`."""
    d = len(z)
    table = np.zeros((1 << d) * d)
    if d == 0:
        return table
    weight = np.empty(d)  # w(k, d) = k! (d - k - 1)! / d!
    for k in range(d):
        weight[k] = math.gamma(k + 1) * math.gamma(d - k) / math.gamma(d + 1)
    poly = np.empty(d)
    for mask in range(1 << d):
        for i in range(d):
            # coefficients of prod over j != i of (z_j + o_j t)
            poly[:] = 0.0
            poly[0] = 1.0
            degree = 0
            for j in range(d):
                if j == i:
                    continue
                if (mask >> j) & 1:
                    for k in range(degree + 1, 0, -1):
                        poly[k] = poly[k] * z[j] + poly[k - 1]
                    poly[0] *= z[j]
                    degree += 1
                else:
                    for k in range(degree + 1):
                        poly[k] *= z[j]
            total = 0.0
            for k in range(degree + 1):
                total += weight[k] * poly[k]
            o_i = 1.0 if (mask >> i) & 1 else 0.0
            table[mask * d + i] = value * (o_i - z[i]) * total
    return table


# Rows per block of the parallel loop.
BLOCK = 256


@numba.njit(cache=True, parallel=True)
def explain(
    rows, out, tree_node, tree_leaf, feature, threshold, default_left, is_cat, cat_start,
    cat_len, cat_flags, parent, is_left, parent_slot, leaf_node, slot_start, slot_count,
    slot_feature, table_start, table,
):  # fmt: skip
    """Add each row's feature contributions into `out` (the arrays of `treeshap.Tables`)."""
    n_trees = len(tree_node) - 1
    widest = 0
    for t in range(n_trees):
        widest = max(widest, tree_node[t + 1] - tree_node[t])
    n_rows = rows.shape[0]
    # Tree by tree over a block of rows, so that a tree's nodes and tables stay in cache.
    for block in numba.prange((n_rows + BLOCK - 1) // BLOCK):
        goes_left = np.empty(widest, dtype=np.bool_)
        # bit s set: the row fails the path's conditions on slot s's feature
        failed = np.empty(widest, dtype=np.int64)
        for t in range(n_trees):
            first = tree_node[t]
            for r in range(block * BLOCK, min(n_rows, (block + 1) * BLOCK)):
                row = rows[r]
                for local in range(tree_node[t + 1] - first):  # parents before children
                    node = first + local
                    up = parent[node]
                    if up < 0:
                        failed[local] = 0
                    elif goes_left[up] == is_left[node]:
                        failed[local] = failed[up]
                    else:
                        failed[local] = failed[up] | (1 << parent_slot[node])
                    if feature[node] < 0:  # a leaf
                        continue
                    value = row[feature[node]]
                    if np.isnan(value):
                        goes_left[local] = default_left[node]
                    elif is_cat[node]:
                        code = int(value)
                        if value < 0 or code >= cat_len[node]:
                            goes_left[local] = True
                        else:
                            goes_left[local] = not cat_flags[cat_start[node] + code]
                    else:
                        goes_left[local] = value < threshold[node]
                for leaf in range(tree_leaf[t], tree_leaf[t + 1]):
                    d = slot_count[leaf]
                    mask = ((1 << d) - 1) & ~failed[leaf_node[leaf]]
                    base = table_start[leaf] + mask * d
                    slots = slot_start[leaf]
                    for s in range(d):
                        out[r, slot_feature[slots + s]] += table[base + s]
