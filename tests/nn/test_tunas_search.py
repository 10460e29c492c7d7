"""weight_sharing_search end to end on sklearn digits, with a small hand-written MLP supernet.

The supernet here is a test double: two hidden layers allocated at the widest candidate and
masked to the chosen widths (TuNAS / TabNAS channel masking), called as ``net(x, dna)``.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pliant.algorithms.tunas import tunas
from pliant.nn.tunas import STRATEGIES, supernet_accuracy, weight_sharing_search
from pliant.spaces.dna import DNA, Slot, Space

WIDTHS = (8, 16, 32, 64)
SPACE = Space([Slot(f"hidden[{i}]", "choice", 4, literals=WIDTHS) for i in range(2)])
D_IN, CLASSES = 64, 10


class MaskedMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        top = max(WIDTHS)
        self.l1 = nnx.Linear(D_IN, top, rngs=rngs)
        self.l2 = nnx.Linear(top, top, rngs=rngs)
        self.out = nnx.Linear(top, CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array, dna: DNA) -> jax.Array:
        widths = jnp.asarray(WIDTHS)[dna.index]
        units = jnp.arange(max(WIDTHS))
        h = jax.nn.relu(self.l1(x)) * (units < widths[0])
        h = jax.nn.relu(self.l2(h)) * (units < widths[1])
        return self.out(h)


def params(dna: DNA) -> jax.Array:
    """Weights and biases of the child: multiplicative in the widths (TabNAS's cost)."""
    w = jnp.asarray(WIDTHS, jnp.float32)[dna.index]
    return (D_IN + 1) * w[0] + (w[0] + 1) * w[1] + (w[1] + 1) * CLASSES


@pytest.fixture(scope="module")
def digits() -> tuple:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order], y[order].astype(np.int32)
    return (x[:1200], y[:1200]), (x[1200:], y[1200:])


def test_tunas_search_end_to_end(digits: tuple, tmp_path) -> None:
    train, val = digits
    target = 2500.0  # between the 8-8 child (~690) and the 64-64 child (~9000)
    log = tmp_path / "tunas.json"
    seen = []
    result = weight_sharing_search(
        SPACE,
        train,
        val,
        net=MaskedMLP(nnx.Rngs(0)),
        cost=params,
        target=target,
        steps=400,
        log_every=100,
        log=log,
        progress=seen.append,
    )
    assert [h["step"] for h in result.history] == [100, 200, 300, 400]
    assert seen == result.history
    # The first 25 % of steps are the controller's delay (and the warm-up): still uniform.
    first = result.history[0]["probabilities"]
    assert all(np.allclose(p, 0.25, atol=1e-6) for p in first.values())
    assert result.history[-1]["val_accuracy"] > 0.8  # the shared weights learned digits
    # The controller's entropy falls as it concentrates (log 4 + log 4 at the start).
    assert result.history[-1]["entropy"] < result.history[0]["entropy"] < 2 * np.log(4) + 1e-3
    assert abs(result.cost / target - 1.0) <= 0.3, result.dna.to_list()
    SPACE.validate(SPACE.make_dna(np.asarray(result.dna.index)))
    assert result.value is None  # a bare Space has no symbolic value
    logged = json.loads(log.read_text())
    assert logged["strategy"] == "tunas" and len(logged["history"]) == 4
    probs = logged["history"][-1]["probabilities"]
    assert set(probs) == {"hidden[0]", "hidden[1]"}
    assert np.isclose(sum(probs["hidden[0]"]), 1.0)
    acc = supernet_accuracy(result.net, result.dna, val)
    assert 0.5 < acc <= 1.0


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "tunas"])
def test_other_strategies_train_the_supernet(digits: tuple, strategy: str) -> None:
    train, val = digits
    result = weight_sharing_search(
        SPACE,
        train,
        val,
        net=MaskedMLP(nnx.Rngs(0)),
        strategy=strategy,
        cost=params,
        target=5000.0,
        steps=200,
        log_every=50,
        num_candidates=8,
    )
    assert result.controller is None and "entropy" not in result.history[0]
    assert result.history[-1]["val_accuracy"] > 0.7
    assert result.cost <= 5000.0
    accs = supernet_accuracy(result.net, SPACE.make_dna(np.array([[0, 0], [3, 3]])), val)
    assert accs.shape == (2,) and np.all(accs > 0.3)


def test_errors(digits: tuple) -> None:
    train, val = digits
    net = MaskedMLP(nnx.Rngs(0))
    with pytest.raises(ValueError, match="strategy must be one of"):
        weight_sharing_search(SPACE, train, val, net=net, strategy="darts")
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        weight_sharing_search(SPACE, train, val, net=net, steps=0)
    with pytest.raises(ValueError, match="log_every must be an int >= 1, got 0"):
        weight_sharing_search(SPACE, train, val, net=net, log_every=0)
    with pytest.raises(ValueError, match="a cost model needs a target"):
        weight_sharing_search(SPACE, train, val, net=net, cost=params)
    with pytest.raises(
        ValueError, match="op_warmup must be 'average', 'sample' or None, got 'mean'"
    ):
        weight_sharing_search(SPACE, train, val, net=net, op_warmup="mean")
    with pytest.raises(ValueError, match="plans its schedule for 50 steps but the search runs 10"):
        weight_sharing_search(
            SPACE, train, val, net=net, steps=10, controller=tunas(params, 100.0, steps=50)
        )
    with pytest.raises(ValueError, match="pass controller= only with strategy='tunas'"):
        weight_sharing_search(SPACE, train, val, net=net, strategy="spos", controller=tunas())
    short = tunas(params, 100.0, steps=10, delay=0.1, warmup=0.1)
    with pytest.raises(ValueError, match=r"delay \(0.1 of the steps\) must be at least"):
        weight_sharing_search(SPACE, train, val, net=net, steps=10, controller=short)
    with pytest.raises(TypeError, match="must be a pair"):
        weight_sharing_search(SPACE, train[0], val, net=net)
    with pytest.raises(ValueError, match="has 1200 inputs and 5 labels"):
        weight_sharing_search(SPACE, (train[0], train[1][:5]), val, net=net)
    with pytest.raises(TypeError, match="labels must be integer class ids"):
        weight_sharing_search(SPACE, (train[0], train[0][:, 0]), val, net=net)
    with pytest.raises(ValueError, match="a bare Space has no layers"):
        weight_sharing_search(SPACE, train, val)


def test_search_over_a_symbolic_space_with_the_supernet(digits: tuple) -> None:
    import pliant as pl
    from pliant.spaces.library import mlp_space

    train, val = digits
    value = mlp_space(D_IN, CLASSES, widths=(8, 32), num_layers=(1, 2))
    space = pl.space(value)
    widths = jnp.asarray((8.0, 32.0))

    def cost(dna: DNA) -> jax.Array:  # first hidden layer's units (either depth)
        return jnp.where(dna.index[0] == 0, widths[dna.index[1]], widths[dna.index[2]])

    result = weight_sharing_search(
        value, train, val, cost=cost, target=8.0, steps=120, log_every=60
    )
    assert result.value == pl.materialize(value, result.dna)
    assert result.value.build(rngs=nnx.Rngs(0)).layers[0].out_features == 8
    assert result.cost == 8.0 and result.dna.space == space
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_faithful_preset_runs_on_the_same_code_path(digits: tuple) -> None:
    train, val = digits
    result = weight_sharing_search(
        SPACE,
        train,
        val,
        net=MaskedMLP(nnx.Rngs(0)),
        cost=params,
        target=2500.0,
        preset="faithful",
        batch_size=32,
        steps=20,
        log_every=10,
    )
    assert [h["step"] for h in result.history] == [10, 20]
    assert all(np.isfinite(h["loss"]) for h in result.history)
    # lr0 = 3e-4 * 32 / 256 during a 25 % delay: 5 controller updates at rate 0, then tiny ones.
    assert result.history[0]["entropy"] == pytest.approx(2 * np.log(4), abs=1e-3)


def test_checkpoint_resumes_exactly(digits: tuple, tmp_path) -> None:
    train, val = digits
    kwargs = dict(cost=params, target=2500.0, steps=40, log_every=10)

    def run(**more):
        return weight_sharing_search(
            SPACE, train, val, net=MaskedMLP(nnx.Rngs(0)), **{**kwargs, **more}
        )

    whole = run()

    class Died(Exception):
        pass

    def die_at_20(entry: dict) -> None:
        if entry["step"] == 20:
            raise Died

    with pytest.raises(Died):
        run(checkpoint=tmp_path / "ckpt", progress=die_at_20)
    resumed = run(checkpoint=tmp_path / "ckpt")
    assert [h["step"] for h in resumed.history] == [10, 20, 30, 40]
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["probabilities"].keys() == b["probabilities"].keys()
        for key, p in a["probabilities"].items():
            np.testing.assert_allclose(p, b["probabilities"][key], rtol=1e-5, err_msg=key)
    w1, w2 = nnx.state(whole.net, nnx.Param), nnx.state(resumed.net, nnx.Param)
    for x, y in zip(jax.tree.leaves(w1), jax.tree.leaves(w2), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="is of a search of 40 steps"):
        run(steps=50, checkpoint=tmp_path / "ckpt")
