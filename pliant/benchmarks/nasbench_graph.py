"""NAS-Bench-Graph (Qin et al., 2022) light tables from the ``nas-bench-graph`` wheel.

A GNN of 4 nodes: a *link* pattern (9 of them) says which earlier output feeds each node (0 is
the input, ``i`` the output of node ``i``), and each node applies one operation (``gat``,
``gcn``, ..., ``skip``). The 9 x 9^4 = 59,049 points of that space map, through the package's
own ``Arch(link, ops).valid_hash()`` (which merges isomorphic graphs), onto the 26,206 entries
of a table (2,021 for proteins, whose 5 operations give 5,625 points).

The 9 points whose 4 operations are all ``skip`` have no entry: the package's own driver
(``nas_bench_graph/runnni.py``) scores them 0, and so does this objective (validation and test
accuracy 0, so their regret is the best accuracy in the table). Values are deterministic.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pliant.benchmarks.base import TabularBenchmark
from pliant.spaces.placeholders import oneof

__all__ = ["DATASETS", "LINKS", "NOTE", "OPS", "OPS_PROTEINS", "load", "space_value"]

DATASETS = (
    "cora",
    "citeseer",
    "pubmed",
    "cs",
    "physics",
    "photo",
    "computers",
    "arxiv",
    "proteins",
)
LINKS = (
    (0, 0, 0, 0),
    (0, 0, 0, 1),
    (0, 0, 1, 1),
    (0, 0, 1, 2),
    (0, 0, 1, 3),
    (0, 1, 1, 1),
    (0, 1, 1, 2),
    (0, 1, 2, 2),
    (0, 1, 2, 3),
)
OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
OPS_PROTEINS = ("gcn", "sage", "arma", "fc", "skip")
NOTE = (
    "NAS-Bench-Graph: val regret = best validation accuracy in the table minus the "
    "incumbent's (the measure of search); test regret = best test accuracy minus the "
    "incumbent's test accuracy (what a user gets). The 9 all-skip points have no table "
    "entry and score 0, as in the package's own driver."
)
_MODULE = "nas_bench_graph"
_PIP = "nas-bench-graph==1.4.0"


def space_value(dataset: str = "cora") -> dict[str, Any]:
    """The NAS-Bench-Graph search space, written as a user would write it.

    Example:
        >>> import pliant as pl
        >>> pl.space(space_value()).size
        59049
    """
    ops = OPS_PROTEINS if dataset == "proteins" else OPS
    return {
        "link": oneof(list(LINKS)),
        "ops": [oneof(list(ops)) for _ in range(4)],
    }


def _package() -> Any:
    try:
        return importlib.import_module(f"{_MODULE}.architecture")
    except ImportError as e:
        raise ImportError(
            f"the NAS-Bench-Graph benchmarks read the tables of the package nas-bench-graph "
            f"(module {_MODULE!r}), which is not installed: pip install {_PIP} ({e})"
        ) from None


def load(dataset: str) -> TabularBenchmark:
    """The NAS-Bench-Graph benchmark on one data set (the table is read once per process).

    The objective returns ``{'val_acc': accuracy}`` (to maximize); ``regrets`` has the kinds
    ``'val'`` (the measure of search) and ``'test'``.

    Args:
        dataset: one of :data:`DATASETS`.

    Raises:
        ValueError: for an unknown data set, or a table missing an architecture of the space.
        ImportError: when nas-bench-graph is not installed.
        FileNotFoundError: when its data file is missing.

    Example:
        >>> import pliant as pl
        >>> bench = load("cora")
        >>> bench.num_points, bench.num_configs
        (59049, 26206)
        >>> bench.objective({"link": (0, 0, 0, 0), "ops": ["skip"] * 4})
        {'val_acc': 0.0}
    """
    if dataset not in DATASETS:
        raise ValueError(
            f"unknown NAS-Bench-Graph data set {dataset!r}; choose from {list(DATASETS)}"
        )
    arch = _package()
    ops = OPS_PROTEINS if dataset == "proteins" else OPS
    theirs = arch.gnn_list_proteins if dataset == "proteins" else arch.gnn_list
    if tuple(map(tuple, arch.link_list)) != LINKS or set(theirs) != set(ops):
        raise ValueError(
            f"nas-bench-graph's link_list/op lists differ from the ones this loader was written "
            f"for; install {_PIP}"
        )
    path = _data_dir() / f"{dataset}.bench"
    return _benchmark(dataset, str(path), ops)


def _data_dir() -> Path:
    return Path(str(_package().__file__)).parent / "light"


@functools.cache
def _hashes(ops: tuple[str, ...]) -> np.ndarray:
    """The package's ``valid_hash`` of every point (-1 for the all-skip ones); ~1.5 s, once."""
    arch = _package()
    out = []
    for link in LINKS:
        for choice in itertools.product(ops, repeat=4):
            if all(op == "skip" for op in choice):
                out.append(-1)
            else:
                out.append(int(arch.Arch(list(link), list(choice)).valid_hash()))
    result = np.asarray(out, np.int64)
    result.flags.writeable = False
    return result


@functools.cache
def _benchmark(dataset: str, path: str, ops: tuple[str, ...]) -> TabularBenchmark:
    table = _read_table(path)
    hashes = _hashes(ops)
    val = np.zeros(hashes.size, np.float64)
    test = np.zeros(hashes.size, np.float64)
    missing = 0
    for p, h in enumerate(hashes.tolist()):
        if h < 0:
            continue  # all skip: no entry, scored 0 as the package's driver does
        entry = table.get(h)
        if entry is None:
            missing += 1
            continue
        val[p] = float(entry["valid_perf"])
        test[p] = float(entry["perf"])
    if missing:
        raise ValueError(
            f"{path}: {missing} architectures of the space have no entry; the table does not "
            f"match nas-bench-graph's Arch.valid_hash (install {_PIP})"
        )
    link_index = {link: i for i, link in enumerate(LINKS)}
    op_index = {op: i for i, op in enumerate(ops)}
    n = len(ops)

    def point_of(config: Any) -> int:
        try:
            p = link_index[tuple(config["link"])]
            node_ops = list(config["ops"])
            if len(node_ops) != 4:
                raise KeyError(node_ops)
            for op in node_ops:
                p = p * n + op_index[op]
        except (KeyError, TypeError):
            raise ValueError(
                f"nasbench_graph/{dataset}: expected a config {{'link': one of {list(LINKS)}, "
                f"'ops': 4 of {list(ops)}}}, got {config!r}"
            ) from None
        return p

    return TabularBenchmark.from_arrays(
        f"nasbench_graph/{dataset}",
        space_value(dataset),
        metric="val_acc",
        direction="max",
        values=val[:, None],
        regrets={"val": val.max() - val, "test": test.max() - test},
        point_of=point_of,
        num_configs=len(table),
        note=NOTE,
    )


def _read_table(path: str) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"NAS-Bench-Graph table {path} is missing; it ships with the package "
            f"nas-bench-graph (reinstall it: pip install --force-reinstall {_PIP})"
        )
    # pickle is used only to read the package's own shipped data file, exactly as its
    # light_read() does; pliant never pickles its own state.
    with open(path, "rb") as f:
        return pickle.load(f)
