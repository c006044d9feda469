"""Exact TreeSHAP for the champion's trees, fast enough to explain every flight of a night.

The values are XGBoost's `pred_contribs` (path-dependent TreeSHAP, Lundberg et al. 2018),
computed by the Fast TreeSHAP v2 method (Yang 2021). XGBoost's own algorithm costs
O(leaves x depth^2) per row and tree: about 420 us of CPU per flight for the benchmark's
70-tree depth-5 model, some 70 times the score itself; these tables take about 45 us
(docs/benchmarks.md).

v2 rests on one fact: for one leaf, what a row contributes depends only on which of the
leaf's path conditions the row meets. With the d distinct features on the path, that is
one of 2^d patterns, so every pattern's d values are computed once per model (`compile_booster`)
and a row costs a table look-up per leaf: O(leaves x depth). For a leaf with value v,
path features U (|U| = d), cover fractions z_j (the product of child cover / parent
cover over the splits on feature j) and o_j = 1 when the row meets every condition on j:

    phi_i += v (o_i - z_i) sum_k w(k, d) [t^k] prod_{j in U, j != i} (z_j + o_j t),
    w(k, d) = k! (d - k - 1)! / d!

and the bias is the base margin plus each tree's expectation, sum of v prod z over its
leaves. Rows follow XGBoost's own rules: float32 values, `x < split` goes left, a
missing value takes the default branch, a categorical code in the split's set goes right.

The tables hold sum over leaves of d 2^d numbers; deep models (depth 8 or more) can need
gigabytes, so `compile_booster` returns None past TABLE_BUDGET and the caller keeps XGBoost's own.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

# numba's default thread pool (workqueue) aborts the process when two Python threads run a
# parallel kernel at once; scoring calls it from one thread, and this keeps it so.
_KERNEL = threading.Lock()

# Table entries a model may take: 32M (128 MB in float32). A 70-tree depth-5 model needs
# about 0.3M; 200 trees of depth 7 about 20M.
TABLE_BUDGET = 32_000_000


@dataclass(frozen=True)
class Tables:
    """A model's trees and per-leaf tables, flattened for the kernel."""

    # per tree: its first node and first leaf in the flat arrays below
    tree_node: np.ndarray
    tree_leaf: np.ndarray
    # per node (tree-local ids offset by tree_node): split feature (-1: a leaf), threshold, default
    # left, categorical (then its category set in cat_flags[cat_start : cat_start + cat_len])
    feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    is_cat: np.ndarray
    cat_start: np.ndarray
    cat_len: np.ndarray
    cat_flags: np.ndarray
    # per node: its parent, whether it is the parent's left child, and the slot (the
    # position among the distinct features of the path so far) of the parent's feature
    parent: np.ndarray
    is_left: np.ndarray
    parent_slot: np.ndarray
    # per leaf: its node, its slots' features and its table of 2^d x d values
    leaf_node: np.ndarray
    slot_start: np.ndarray
    slot_count: np.ndarray
    slot_feature: np.ndarray
    table_start: np.ndarray
    table: np.ndarray
    bias: float
    n_features: int


def compile_booster(
    booster: Any, iteration_range: tuple[int, int], n_features: int, budget: int = TABLE_BUDGET
) -> Tables | None:
    """The tables for the trees `iteration_range` selects; None when they would exceed
    `budget` or the model is not a binary:logistic tree ensemble (XGBoost's own then)."""
    model = json.loads(bytes(booster.save_raw("json")))
    learner = model["learner"]
    gbtree = learner["gradient_booster"]
    if learner["objective"]["name"] != "binary:logistic" or gbtree.get("name") != "gbtree":
        return None
    trees = gbtree["model"]["trees"]
    per_round = int(gbtree["model"]["gbtree_model_param"].get("num_parallel_tree", "1"))
    first, last = iteration_range
    if last > 0:
        trees = trees[first * per_round : last * per_round]
    base = float(str(learner["learner_model_param"]["base_score"]).strip("[]").split(",")[0])
    return _compile(trees, n_features, math.log(base / (1.0 - base)), budget)


def _compile(trees: list[dict], n_features: int, base_margin: float, budget: int) -> Tables | None:
    walks = [_walk(tree) for tree in trees]
    entries = sum(
        (1 << len(slots)) * len(slots) for _, leaves in walks for _, _, slots, _ in leaves
    )
    if entries > budget:
        return None

    from nightscore import treeshap_kernel

    nodes: dict[str, list] = {
        k: []
        for k in ("feature", "threshold", "default_left", "is_cat", "parent", "is_left", "slot")
    }
    cats: dict[str, list] = {"start": [], "len": [], "flags": []}
    tree_node, tree_leaf = [0], [0]
    leaf_node: list[int] = []
    slot_feature: list[int] = []
    slot_start: list[int] = []
    slot_count: list[int] = []
    table_parts, table_start, offset = [], [], 0
    bias = base_margin
    for tree, (links, leaves) in zip(trees, walks, strict=True):
        _append_nodes(tree, links, nodes, cats)
        for node, value, slots, fractions in leaves:
            leaf_node.append(node)
            slot_start.append(len(slot_feature))
            slot_count.append(len(slots))
            slot_feature.extend(slots)
            z = np.asarray(fractions, dtype=np.float64)
            table_start.append(offset)
            table_parts.append(treeshap_kernel.leaf_table(value, z))
            offset += (1 << len(slots)) * len(slots)
            bias += value * float(np.prod(z))
        tree_node.append(len(nodes["feature"]))
        tree_leaf.append(len(leaf_node))

    def ints(values: list) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)

    def flags(values: list) -> np.ndarray:
        return np.asarray(values, dtype=np.bool_)

    return Tables(
        tree_node=ints(tree_node),
        tree_leaf=ints(tree_leaf),
        feature=ints(nodes["feature"]),
        threshold=np.asarray(nodes["threshold"], dtype=np.float32),
        default_left=flags(nodes["default_left"]),
        is_cat=flags(nodes["is_cat"]),
        cat_start=ints(cats["start"]),
        cat_len=ints(cats["len"]),
        cat_flags=flags(cats["flags"]),
        parent=ints(nodes["parent"]),
        is_left=flags(nodes["is_left"]),
        parent_slot=ints(nodes["slot"]),
        leaf_node=ints(leaf_node),
        slot_start=ints(slot_start),
        slot_count=ints(slot_count),
        slot_feature=ints(slot_feature),
        table_start=ints(table_start),
        # float32 like XGBoost's own arithmetic: half the cache; rows still sum in float64
        table=np.concatenate(table_parts).astype(np.float32)
        if table_parts
        else np.zeros(0, np.float32),
        bias=bias,
        n_features=n_features,
    )


def _walk(tree: dict) -> tuple[dict[int, tuple[int, bool, int]], list]:
    """One tree, root to leaves: each node's (parent, is its left child, slot of the
    parent's feature), and each leaf's (node, value, slot features, cover fractions).

    Slots number the distinct features of a path in the order they first appear, so a
    node's slot depends on its ancestors alone; a feature met again on the same path is
    the same player and its fractions multiply."""
    left, right = tree["left_children"], tree["right_children"]
    split, cover = tree["split_indices"], tree["sum_hessian"]
    values = tree["split_conditions"]  # a leaf keeps its value here
    links: dict[int, tuple[int, bool, int]] = {}
    leaves = []
    stack: list[tuple[int, list[int], list[float]]] = [(0, [], [])]
    while stack:
        node, slots, fractions = stack.pop()
        if left[node] == -1:
            leaves.append((node, float(values[node]), slots, fractions))
            continue
        feature = split[node]
        for child, goes_left in ((left[node], True), (right[node], False)):
            if child <= node:
                raise ValueError(f"tree node {child} precedes its parent {node}")
            ratio = cover[child] / cover[node] if cover[node] > 0 else 0.0
            if feature in slots:
                slot = slots.index(feature)
                child_fractions = list(fractions)
                child_fractions[slot] *= ratio
                stack.append((child, slots, child_fractions))
            else:
                slot = len(slots)
                stack.append((child, [*slots, feature], [*fractions, ratio]))
            links[child] = (node, goes_left, slot)
    return links, leaves


def _append_nodes(
    tree: dict, links: dict[int, tuple[int, bool, int]], nodes: dict[str, list], cats: dict
) -> None:
    """One tree's nodes onto the flat arrays; node ids stay tree-local in `parent`."""
    n = len(tree["left_children"])
    split_type = tree.get("split_type", [0] * n)
    categories: dict[int, list[int]] = {}
    segments, sizes = tree.get("categories_segments", []), tree.get("categories_sizes", [])
    for node, begin, size in zip(tree.get("categories_nodes", []), segments, sizes, strict=True):
        categories[node] = tree["categories"][begin : begin + size]
    for node in range(n):
        parent, is_left, slot = links.get(node, (-1, False, 0))
        nodes["parent"].append(parent)
        nodes["is_left"].append(is_left)
        nodes["slot"].append(slot)
        leaf = tree["left_children"][node] == -1
        nodes["feature"].append(-1 if leaf else tree["split_indices"][node])
        nodes["threshold"].append(tree["split_conditions"][node])
        nodes["default_left"].append(bool(tree["default_left"][node]))
        is_cat = split_type[node] == 1 and not leaf
        nodes["is_cat"].append(is_cat)
        # the categories that go right, as flags indexed by category code
        going_right = categories.get(node, []) if is_cat else []
        width = max(going_right) + 1 if going_right else 0
        flags = [False] * width
        for code in going_right:
            flags[code] = True
        cats["start"].append(len(cats["flags"]))
        cats["len"].append(width)
        cats["flags"].extend(flags)


def contributions(tables: Tables, matrix: np.ndarray) -> np.ndarray:
    """One row per input row: each feature's contribution, then the bias (log-odds)."""
    from nightscore import treeshap_kernel

    rows = np.ascontiguousarray(matrix, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != tables.n_features:
        raise ValueError(f"input of shape {rows.shape} for a model of {tables.n_features} features")
    out = np.zeros((len(rows), tables.n_features + 1), dtype=np.float64)
    t = tables
    with _KERNEL:
        treeshap_kernel.explain(
            rows, out, t.tree_node, t.tree_leaf, t.feature, t.threshold, t.default_left,
            t.is_cat, t.cat_start, t.cat_len, t.cat_flags, t.parent, t.is_left, t.parent_slot,
            t.leaf_node, t.slot_start, t.slot_count, t.slot_feature, t.table_start, t.table,
        )  # fmt: skip
    out[:, -1] = tables.bias
    return out
