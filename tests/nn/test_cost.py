"""Hardware-in-the-loop cost: measured latency, XLA cost, per-op latency tables, multi-target."""

from __future__ import annotations

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import pliant as pl
from pliant.nn import cost as C
from pliant.nn import latency_table as T
from pliant.spaces.dna import DNA, Slot, Space, register_pytree
from pliant.spaces.sampling import random_dna

register_pytree()


class MLP(nnx.Module):
    def __init__(self, sizes: list[int], *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = nnx.relu(layer(x))
        return self.layers[-1](x)


# --------------------------------------------------------------------------- measured latency


def test_larger_model_costs_more_in_latency_flops_and_params():
    small = MLP([64, 32, 10], rngs=nnx.Rngs(0))
    large = MLP([64, 512, 512, 10], rngs=nnx.Rngs(0))
    kw = dict(input_shape=(64,), batch_size=64)
    lat_small = C.measure_latency(small, runs=10, number=5, **kw)
    lat_large = C.measure_latency(large, runs=10, **kw)
    # ~125x the FLOPs; even a busy 2-core machine shows far more than 3x in the medians.
    assert lat_large.median > 3 * lat_small.median
    flops_small, flops_large = C.xla_cost(small, **kw).flops, C.xla_cost(large, **kw).flops
    assert flops_large > 100 * flops_small
    assert C.param_count(large) > 100 * C.param_count(small)


def test_repeated_measurements_are_stable():
    # Two series of measurements of one model (every call compiles anew), in alternating
    # rounds so that the other processes of a shared 2-core machine load both alike: their pooled
    # medians agree within 1.5x (on an idle machine, within a few percent). Back-to-back
    # medians on a machine whose load changes between them varied up to 4x here.
    model = MLP([128, 256, 256, 10], rngs=nnx.Rngs(0))
    pools: list[list[float]] = [[], []]
    for _ in range(8):
        for pool in pools:
            pool.extend(C.measure_latency(model, input_shape=(128,), batch_size=32, runs=5).times)
    medians = [float(np.median(p)) for p in pools]
    assert max(medians) / min(medians) < 1.5
    lat = C.measure_latency(model, input_shape=(128,), batch_size=32, runs=7, warmup=1)
    assert lat.runs == len(lat.times) == 7
    assert lat.p10 <= lat.median <= lat.p90
    assert lat.compile_s > 0 and lat.spread >= 0


def test_measure_latency_of_a_plain_function_and_explicit_inputs():
    x = jnp.ones((32, 32))
    lat = C.measure_latency(jax.jit(lambda a: jnp.tanh(a @ a)), x, runs=5, number=3)
    assert lat.median > 0
    model = MLP([8, 4], rngs=nnx.Rngs(0))
    assert C.measure_latency(model, jnp.ones((2, 8)), runs=3).median > 0


def test_measure_latency_blocks_on_the_result():
    # A compiled call returns before the device finishes; without block_until_ready the time
    # of a 2048^2 matmul chain would be microseconds. Its analytic cost is 2 * 2048^3 * 4.
    x = jnp.ones((1024, 1024))

    def work(a):
        for _ in range(4):
            a = jnp.tanh(a @ a)
        return a

    lat = C.measure_latency(work, x, runs=3, warmup=1)
    # 8.6 GFLOP cannot run in under 5 ms on 2 CPU cores (that would be > 1.7 TFLOP/s).
    assert lat.median > 5e-3


@pytest.mark.parametrize("unroll", [False, True])
def test_op_latency_leaves_out_the_call_overhead(unroll):
    tiny = C.measure_latency(jnp.tanh, jnp.ones((4,)), runs=10)
    loops = (1, 5) if unroll else (1, 11)
    tiny_op = C.measure_op_latency(jnp.tanh, jnp.ones((4,)), runs=10, unroll=unroll, loops=loops)
    assert tiny_op.median < 0.5 * tiny.median  # a call costs tens of us; tanh of 4 floats, ns
    # A heavy op: one run in a loop costs about what one call does. Single calls of ~1 ms on a
    # busy 2-core machine range over 5x (p10 to p90), so the bound is a factor of 3.
    conv = nnx.Conv(32, 64, (3, 3), rngs=nnx.Rngs(0))
    kw = dict(input_shape=(16, 16, 32), batch_size=4, runs=15)
    op = C.measure_op_latency(conv, unroll=unroll, loops=loops, **kw)
    ratio = op.median / C.measure_latency(conv, **kw).median
    assert 1 / 3 < ratio < 3
    with pytest.raises(ValueError, match="n2 > n1 >= 1"):
        C.measure_op_latency(conv, input_shape=(16, 16, 32), loops=(3, 3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(), "no inputs"),
        (dict(args=(jnp.ones((1, 4)),), input_shape=(4,)), "one or the other"),
        (dict(input_shape=(4,), batch_size=0), "batch_size"),
        (dict(input_shape=(4,), runs=0), "runs must be"),
        (dict(input_shape=(4,), warmup=-1), "warmup must be"),
        (dict(input_shape=(4,), number=1.5), "number must be"),
    ],
)
def test_measure_latency_errors(kwargs, match):
    args = kwargs.pop("args", ())
    with pytest.raises(ValueError, match=match):
        C.measure_latency(MLP([4, 2], rngs=nnx.Rngs(0)), *args, **kwargs)


def test_measure_latency_rejects_non_callables():
    with pytest.raises(TypeError, match=r"function of arrays or a flax\.nnx\.Module"):
        C.measure_latency(42, jnp.ones(3))


# ------------------------------------------------------------------------------- XLA and params


@pytest.mark.parametrize(("batch", "d_in", "d_out"), [(4, 16, 8), (32, 64, 10)])
def test_xla_flops_of_a_dense_layer_equal_the_analytic_count(batch, d_in, d_out):
    # XLA counts 2 FLOPs per multiply-add of the matmul and one per element of the bias add.
    with_bias = nnx.Linear(d_in, d_out, rngs=nnx.Rngs(0))
    no_bias = nnx.Linear(d_in, d_out, use_bias=False, rngs=nnx.Rngs(0))
    kw = dict(input_shape=(d_in,), batch_size=batch)
    assert C.xla_cost(no_bias, **kw).flops == 2 * batch * d_in * d_out
    assert C.xla_cost(with_bias, **kw).flops == 2 * batch * d_in * d_out + batch * d_out
    cost = C.xla_cost(with_bias, **kw)
    # At least the input, the kernel, the bias and the output are touched, in float32.
    assert cost.bytes_accessed >= 4 * (batch * d_in + d_in * d_out + d_out + batch * d_out)
    assert cost.raw["flops"] == cost.flops


def test_param_count():
    assert C.param_count(nnx.Linear(16, 8, rngs=nnx.Rngs(0))) == 16 * 8 + 8
    assert C.param_count(MLP([4, 5, 3], rngs=nnx.Rngs(0))) == (4 * 5 + 5) + (5 * 3 + 3)
    bn = nnx.BatchNorm(6, rngs=nnx.Rngs(0))
    assert C.param_count(bn) == 12  # scale and bias; the running stats are not parameters
    assert C.param_count(bn, ...) == 24
    with pytest.raises(TypeError, match=r"flax\.nnx\.Module"):
        C.param_count(lambda x: x)


# --------------------------------------------------------------------------- multi-hardware


def test_measure_targets_batch_sizes_and_precisions():
    model = MLP([128, 512, 10], rngs=nnx.Rngs(0))
    targets = [
        C.Target("b1"),
        C.Target("b256", batch_size=256),
        C.Target("b256_bf16", batch_size=256, dtype="bfloat16"),
    ]
    out = C.measure_targets(model, (128,), targets, runs=7)
    assert list(out) == ["b1", "b256", "b256_bf16"]
    assert out["b256"].median > out["b1"].median
    assert all(v.median > 0 for v in out.values())
    with pytest.raises(ValueError, match="repeated"):
        C.measure_targets(model, (128,), [C.Target("a"), C.Target("a")])
    with pytest.raises(ValueError, match="at least one"):
        C.measure_targets(model, (128,), [])


def test_normalized_cost_and_constraints():
    costs = {"cpu": 3.0, "gpu": 1.0}
    refs = {"cpu": 2.0, "gpu": 2.0}
    assert C.normalized_cost(costs, refs) == pytest.approx(1.0)
    assert C.normalized_cost(costs, refs, reduce="max") == pytest.approx(1.5)
    lat = C.Latency(1.0, 0.9, 1.1, 1.0, 3, 0.1, (1.0, 1.0, 1.0))
    assert C.normalized_cost({"cpu": lat}, {"cpu": 4.0}) == 0.25
    with pytest.raises(ValueError, match="same targets"):
        C.normalized_cost(costs, {"cpu": 1.0})
    with pytest.raises(ValueError, match="'mean' or 'max'"):
        C.normalized_cost(costs, refs, reduce="sum")
    with pytest.raises(ValueError, match="positive number"):
        C.normalized_cost({"cpu": -1.0}, {"cpu": 1.0})
    assert C.target_constraints({"cpu": 0.5}) == {"latency/cpu": ("<=", 0.5)}


# ------------------------------------------------------------------------------ latency tables


def mobile_like_space() -> Space:
    """Three layers: fixed, skippable (kernel/expansion conditional on not skipping), and one
    whose cost depends on two searched widths (TuNAS's coupled in/out-width term)."""
    return Space(
        [
            Slot("w0", "choice", 2, literals=(8, 16)),
            Slot("b0.k", "choice", 3, literals=(3, 5, 7)),
            Slot("b0.e", "choice", 2, literals=(3, 6)),
            Slot("b1", "choice", 2, literals=("ibn", "skip")),
            Slot("b1.k", "choice", 3, literals=(3, 5, 7), conditions=((3, 0),)),
            Slot("b1.e", "choice", 2, literals=(3, 6), conditions=((3, 0),)),
            Slot("w1", "choice", 3, literals=(16, 24, 32)),
            Slot("b2.k", "int", 3, lo=1, hi=3),
        ]
    )


TERMS = {
    "b0": ("w0", "b0.k", "b0.e"),
    "b1": ("w0", "b1", "b1.k", "b1.e"),
    "b2": ("w0", "w1", "b2.k"),
}


def true_table(space: Space, seed: int = 0) -> T.LatencyTable:
    rng = np.random.default_rng(seed)
    terms = [
        T.Term(name, slots, rng.uniform(0.5, 2.0, [space.slots[i].num_choices + 1 for i in idx]))
        for name, slots in TERMS.items()
        for idx in [[[s.id for s in space.slots].index(sid) for sid in slots]]
    ]
    return T.make_table(space, terms, bias=0.3)


def brute_force(table: T.LatencyTable, dna: DNA) -> float:
    ids = [s.id for s in table.space.slots]
    total = table.bias
    for term in table.terms:
        state = []
        for sid in term.slots:
            i = ids.index(sid)
            active = bool(dna.active[i])
            state.append(int(dna.index[i]) if active else table.space.slots[i].num_choices)
        total += term.costs[tuple(state)]
    return total


def test_predict_is_the_sum_of_lookups_on_host():
    space = mobile_like_space()
    table = true_table(space)
    dnas = random_dna(space, 1, n=50)
    got = T.predict(table, dnas)
    assert got.shape == (50,)
    np.testing.assert_allclose(got, [brute_force(table, d) for d in dnas], rtol=1e-12)
    assert float(T.predict(table, dnas[3])) == pytest.approx(brute_force(table, dnas[3]))


def test_predict_in_jit_equals_host_single_and_batched():
    space = mobile_like_space()
    table = true_table(space)
    dnas = random_dna(space, jax.random.key(0), n=64)
    host = T.predict(
        table, DNA(space, *(np.asarray(a) for a in (dnas.index, dnas.value, dnas.active)))
    )
    jitted = jax.jit(lambda d: T.predict(table, d))
    np.testing.assert_allclose(np.asarray(jitted(dnas)), host, rtol=1e-6)
    batched = jitted(
        DNA(space, *(a.reshape(8, 8, -1) for a in (dnas.index, dnas.value, dnas.active)))
    )
    np.testing.assert_allclose(np.asarray(batched).ravel(), host, rtol=1e-6)
    single = jitted(dnas[5])
    assert float(single) == pytest.approx(float(host[5]), rel=1e-6)
    # vmap over single DNAs gives the same numbers as the batched gather
    vmapped = jax.vmap(lambda d: T.predict(table, d))(dnas)
    np.testing.assert_allclose(np.asarray(vmapped), host, rtol=1e-6)


def test_latency_table_json_round_trip(tmp_path):
    space = mobile_like_space()
    table = true_table(space)
    costs = table.terms[1].costs.copy()
    costs[1, 1, 0, 0] = np.nan  # an unknown entry survives as null
    table = table._replace(
        terms=(table.terms[0], table.terms[1]._replace(costs=costs), table.terms[2])
    )
    text = table.to_json()
    assert "NaN" not in text and json.loads(text)["terms"][1]["costs"].count(None) == 1
    back = T.LatencyTable.from_json(text)
    assert back.space == space and back.bias == table.bias and back.unit == "s"
    for a, b in zip(back.terms, table.terms):
        assert a.name == b.name and a.slots == b.slots
        np.testing.assert_array_equal(a.costs, b.costs)  # NaN positions equal too
    path = tmp_path / "table.json"
    table.save(str(path))
    dnas = random_dna(space, 2, n=20)
    dnas = space.stack(
        [d for d in dnas if not (d.to_dict().get("b1") == "skip" and d.to_dict()["w0"] == 16)]
    )
    np.testing.assert_array_equal(
        T.predict(T.LatencyTable.load(str(path)), dnas), T.predict(table, dnas)
    )


def test_unknown_entries_raise_on_host_and_give_nan_in_jit():
    space = Space([Slot("a", "choice", 2, literals=("x", "y")), Slot("b", "choice", 2)])
    table = T.make_table(
        space, [T.Term("ab", ("a", "b"), np.array([[1.0, 2.0, 0], [np.nan, 4.0, 0], [0, 0, 0]]))]
    )
    bad = space.from_dict({"a": "y", "b": 0})
    with pytest.raises(ValueError, match=r"term 'ab' has no cost for \{'a': 'y', 'b': 0\}"):
        T.predict(table, bad)
    batch = space.stack([space.from_dict({"a": "x", "b": 1}), bad])
    with pytest.raises(ValueError, match=r"\(DNA \[1\]\)"):
        T.predict(table, batch)
    jitted = jax.jit(lambda d: T.predict(table, d))(space.make_dna(jnp.asarray(batch.index)))
    assert float(jitted[0]) == 2.0 and math.isnan(float(jitted[1]))


def test_measure_table_visits_each_consistent_state_once():
    space = mobile_like_space()
    calls = []

    def cost(term, choice):
        calls.append((term, tuple(sorted(choice.items()))))
        return 1.0 + sum(v for v in choice.values() if v is not None)

    table = T.measure_table(space, {"b1": TERMS["b1"]}, cost, bias=0.25, unit="ms")
    assert len(calls) == len(set(calls))
    # w0: 2 widths; b1 either ibn with 3x2 (kernel, expansion) or skip with both inactive.
    assert len(calls) == 2 * (3 * 2 + 1)
    skip = [c for t, c in calls if dict(c)["b1"] == 1]
    assert all(dict(c)["b1.k"] is None and dict(c)["b1.e"] is None for c in skip)
    dna = space.from_dict(
        {"w0": 16, "b0.k": 3, "b0.e": 3, "b1": "ibn", "b1.k": 7, "b1.e": 6, "w1": 16, "b2.k": 1}
    )
    assert float(T.predict(table, dna)) == 0.25 + 1.0 + 1 + 0 + 2 + 1
    assert table.unit == "ms"


def test_fit_recovers_known_costs_from_whole_model_sums():
    space = mobile_like_space()
    truth = true_table(space)
    train = random_dna(space, 3, n=400)
    test = random_dna(space, 4, n=100)
    y = T.predict(truth, train)
    for method in ("lstsq", "nnls"):
        fitted = T.fit_table(space, TERMS, train, y, method=method)
        np.testing.assert_allclose(T.predict(fitted, test), T.predict(truth, test), rtol=1e-6)
    # Sums cannot tell a term's costs from those of another term shifted the other way by any
    # function of the slots they share (here w0), so compare differences between the entries of
    # a term at one state of w0 (every reachable entry was seen in 400 samples).
    fitted = T.fit_table(space, TERMS, train, y, method="lstsq")
    for got, want in zip(fitted.terms, truth.terms):
        assert got.slots[0] == "w0" and (~np.isnan(got.costs)).sum() >= 6
        for w0 in range(2):
            seen = ~np.isnan(got.costs[w0])
            g, w = got.costs[w0][seen], want.costs[w0][seen]
            np.testing.assert_allclose(g - g[0], w - w[0], atol=1e-8)
    assert all(
        (np.nan_to_num(t.costs) >= 0).all() for t in T.fit_table(space, TERMS, train, y).terms
    )


def test_fit_with_noise_still_ranks_well():
    space = mobile_like_space()
    truth = true_table(space, seed=5)
    rng = np.random.default_rng(0)
    train, test = random_dna(space, 6, n=300), random_dna(space, 7, n=100)
    noisy = T.predict(truth, train) * rng.lognormal(0.0, 0.03, 300)
    fitted = T.fit_table(space, TERMS, train, noisy)
    q = T.prediction_quality(T.predict(fitted, test), T.predict(truth, test))
    assert q.spearman > 0.95 and q.mean_relative_error < 0.03 and q.n == 100


def test_prediction_quality_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    m = rng.integers(1, 6, 40).astype(float)  # ties
    p = m + rng.normal(0, 1.0, 40)
    q = T.prediction_quality(p, m)
    assert q.spearman == pytest.approx(spearmanr(p, m).statistic)
    assert q.mean_relative_error == pytest.approx(np.mean(np.abs(p - m) / m))
    assert q.max_relative_error == pytest.approx(np.max(np.abs(p - m) / m))
    with pytest.raises(ValueError, match="at least 2"):
        T.prediction_quality([1.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        T.prediction_quality([1.0, 2.0], [0.0, 2.0])


def test_table_errors():
    space = mobile_like_space()
    fl = Space([Slot("lr", "float", 0, lo=0.1, hi=1.0)])
    with pytest.raises(ValueError, match="'nope' is not in the space"):
        T.measure_table(space, {"x": ["nope"]}, lambda t, c: 1.0)
    with pytest.raises(ValueError, match="float slot"):
        T.measure_table(fl, {"x": ["lr"]}, lambda t, c: 1.0)
    with pytest.raises(ValueError, match="must be finite"):
        T.measure_table(space, {"b0": TERMS["b0"]}, lambda t, c: float("nan"))
    with pytest.raises(ValueError, match=r"expected \(3, 4, 3\)"):
        T.make_table(space, [T.Term("b0", TERMS["b0"], np.zeros((2, 3, 2)))])
    with pytest.raises(ValueError, match="not the table's"):
        T.predict(true_table(space), Space([Slot("a", "choice", 2)]).from_list([0]))
    with pytest.raises(ValueError, match="not a latency table"):
        T.LatencyTable.from_json('{"format": "other"}')
    with pytest.raises(ValueError, match="'nnls' or 'lstsq'"):
        T.fit_table(space, TERMS, random_dna(space, 0, n=3), [1.0, 2.0, 3.0], method="ridge")
    with pytest.raises(ValueError, match="2 latencies for 3"):
        T.fit_table(space, TERMS, random_dna(space, 0, n=3), [1.0, 2.0])


def test_terms_by_prefix_on_a_compiled_space():
    value = {
        "blocks": [
            {"k": pl.oneof([3, 5]), "e": pl.oneof([3, 6])},
            pl.oneof([{"k": pl.oneof([3, 5])}, None]),
        ]
    }
    space = pl.space(value)
    terms = T.terms_by_prefix(space, ["blocks[0]", "blocks[1]", "head"])
    assert list(terms) == ["blocks[0]", "blocks[1]"]
    assert len(terms["blocks[0]"]) == 2 and terms["blocks[1]"][0] == "blocks[1]"


# ------------------------------------------- multi-hardware objectives in a multi-objective search


def test_multi_hardware_search_with_constraints_and_pareto(tmp_path):
    """Two targets priced by two tables: one normalized objective, one constraint per target."""
    import matplotlib

    matplotlib.use("Agg")
    value = {
        "w0": pl.oneof([8, 16]),
        "b0": {"k": pl.oneof([3, 5, 7]), "e": pl.oneof([3, 6])},
        "b1": pl.oneof([{"k": pl.oneof([3, 5, 7]), "e": pl.oneof([3, 6])}, "skip"]),
    }
    space = pl.space(value)
    terms = T.terms_by_prefix(space, ["b0", "b1"])
    terms = {k: (space.slots[0].id, *v) for k, v in terms.items()}
    rng = np.random.default_rng(0)
    tables = {
        name: T.fit_table(space, terms, dnas, scale * rng.uniform(1, 2, 200), method="nnls")
        for name, scale in (("cpu", 1e-3), ("gpu", 1e-4))
        for dnas in [random_dna(space, 11, n=200)]
    }
    references = {"cpu": 2e-3, "gpu": 2e-4}

    def evaluate(example):
        dna = pl.encode(value, example)
        latency = {k: float(T.predict(t, dna)) for k, t in tables.items()}
        quality = example["w0"] / 16 + (0.1 if example["b1"] != "skip" else 0.0)
        return {
            "accuracy": quality,
            "cost": C.normalized_cost(latency, references, reduce="max"),
            **{f"latency/{k}": v for k, v in latency.items()},
        }

    result = pl.search(
        value,
        evaluate,
        pl.algorithms.nsga2(population_size=8),
        budget=24,
        objectives={"accuracy": "max", "cost": "min"},
        constraints=C.target_constraints({"cpu": 1.9e-3, "gpu": 1.9e-4}),
        store=str(tmp_path / "trials.db"),
    )
    statuses = {r.status for r in result.records}
    assert "complete" in statuses
    for r in result.completed:
        assert r.metrics["latency/cpu"] <= 1.9e-3 and r.metrics["latency/gpu"] <= 1.9e-4
    assert result.pareto_front()
    fig = result.plot_pareto(path=str(tmp_path / "pareto.png"))
    assert fig is not None and (tmp_path / "pareto.png").exists()
