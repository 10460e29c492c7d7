"""Symbolizing Flax modules: NNX classes built with ``rngs`` and Linen dataclass modules."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import pliant as pl


class Block(nnx.Module):
    def __init__(self, din: int, dout: int, act=jax.nn.relu, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(din, dout, rngs=rngs)
        self.act = act

    def __call__(self, x):
        return self.act(self.linear(x))


class Net(nnx.Module):
    def __init__(self, blocks, head_dim: int, *, rngs: nnx.Rngs):
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(blocks[-1].linear.out_features, head_dim, rngs=rngs)

    def __call__(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class MLP(nn.Module):
    layers: tuple
    activation: object = nn.relu

    @nn.compact
    def __call__(self, x):
        for layer in self.layers:
            x = self.activation(layer(x))
        return x


SymBlock, SymNet = pl.symbolize(Block), pl.symbolize(Net)
SymDense, SymMLP = pl.symbolize(nn.Dense), pl.symbolize(MLP)


def net_spec(act=jax.nn.gelu):
    return SymNet([SymBlock(3, 8), SymBlock(8, 8, act=act)], head_dim=2)


def kernels(model):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_nnx_rngs_is_a_runtime_argument_never_stored():
    spec = net_spec()
    assert "rngs" not in spec.args
    assert all("rngs" not in b.args for b in spec.blocks)
    assert repr(spec) == (
        "Net(blocks=[Block(din=3, dout=8), Block(din=8, dout=8, act=gelu)], head_dim=2)"
    )


def test_nnx_rngs_at_construction_raises():
    with pytest.raises(TypeError, match=r"Block\(\): 'rngs' is a runtime argument; .*build\(rngs="):
        SymBlock(3, 8, rngs=nnx.Rngs(0))


def test_nnx_build_passes_rngs_to_every_nested_module_and_runs():
    model = net_spec().build(rngs=nnx.Rngs(0))
    assert isinstance(model, Net) and all(isinstance(b, Block) for b in model.blocks)
    assert model.blocks[1].act is jax.nn.gelu
    y = model(jnp.ones((4, 3)))
    assert y.shape == (4, 2)
    assert bool(jnp.all(jnp.isfinite(y)))


def test_nnx_build_is_deterministic_for_a_seed():
    a = net_spec().build(rngs=nnx.Rngs(0))
    b = net_spec().build(rngs=nnx.Rngs(0))
    c = net_spec().build(rngs=nnx.Rngs(1))
    assert len(kernels(a)) == 6
    for x, y in zip(kernels(a), kernels(b)):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, z) for x, z in zip(kernels(a), kernels(c)))


def test_nnx_build_matches_the_plain_constructor():
    built = SymBlock(3, 4).build(rngs=nnx.Rngs(7))
    plain = Block(3, 4, rngs=nnx.Rngs(7))
    for x, y in zip(kernels(built), kernels(plain)):
        np.testing.assert_array_equal(x, y)


def test_nnx_class_is_unchanged_and_usable():
    assert SymBlock.target is Block and SymBlock.__wrapped__ is Block
    assert isinstance(Block(2, 2, rngs=nnx.Rngs(0)), nnx.Module)
    assert not hasattr(Block, "_spec")


def test_nnx_spec_round_trips_and_replace_changes_the_model():
    spec = net_spec()
    assert pl.from_json(pl.to_json(spec)) == spec
    wider = pl.replace(spec, {"blocks[1].dout": 16, "blocks[1].act": jax.nn.relu})
    model = wider.build(rngs=nnx.Rngs(0))
    assert model.head.kernel.shape == (16, 2)
    assert spec.blocks[1].dout == 8


def test_nnx_build_without_rngs_fails_in_the_module():
    with pytest.raises(TypeError, match="rngs"):
        SymBlock(3, 4).build()


def test_linen_dense():
    spec = SymDense(features=3, use_bias=False)
    layer = spec.build()
    assert isinstance(layer, nn.Dense) and layer.features == 3 and not layer.use_bias
    x = jnp.ones((2, 5))
    params = layer.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, params) == {"params": {"kernel": (5, 3)}}
    reference = nn.Dense(3, use_bias=False).init(jax.random.key(0), x)
    np.testing.assert_array_equal(params["params"]["kernel"], reference["params"]["kernel"])
    assert layer.apply(params, x).shape == (2, 3)


def test_linen_dense_is_unchanged():
    assert SymDense.target is nn.Dense and SymDense.__wrapped__ is nn.Dense
    assert isinstance(nn.Dense(4), nn.Dense)
    assert SymDense.target(4).features == 4


@pytest.mark.parametrize("bad", [dict(feature=3), dict()], ids=["typo", "missing"])
def test_linen_dense_argument_errors(bad):
    with pytest.raises(TypeError, match=r"Dense\(\): .*the signature is Dense\("):
        SymDense(**bad)


def test_linen_custom_module_with_nested_modules():
    spec = SymMLP(layers=[SymDense(4), SymDense(2)], activation=nn.tanh)
    model = spec.build()
    assert isinstance(model, MLP)
    x = jnp.ones((3, 5))
    params = model.init(jax.random.key(0), x)
    shapes = jax.tree.map(jnp.shape, params)["params"]
    assert shapes["layers_0"]["kernel"] == (5, 4) and shapes["layers_1"]["kernel"] == (4, 2)
    y = model.apply(params, x)
    assert y.shape == (3, 2)
    assert bool(jnp.all(jnp.abs(y) <= 1.0))


def test_linen_spec_round_trips():
    spec = SymMLP(layers=(SymDense(4), SymDense(2)))
    back = pl.from_json(pl.to_json(spec))
    assert back == spec and hash(back) == hash(spec)
    params = back.build().init(jax.random.key(0), jnp.ones((1, 3)))
    same = spec.build().init(jax.random.key(0), jnp.ones((1, 3)))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), params, same))
