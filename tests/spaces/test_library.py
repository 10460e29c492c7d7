"""The ready-made spaces: random children materialize into NNX models that run forward."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import pliant as pl
from pliant.nn import layers
from pliant.spaces.library import mlp_space, mobile_space, scale_width


def test_mobile_children_build_and_run_on_8x8():
    value = mobile_space(input_size=8, in_channels=1, num_classes=10)
    space = pl.space(value)
    x = jnp.ones((2, 8, 8, 1))
    seen_identity = seen_block = False
    for seed in range(2):
        child = pl.materialize(value, pl.random_dna(space, seed))
        model = child.build(rngs=nnx.Rngs(seed))
        assert isinstance(model, layers.MobileNet.target)
        assert nnx.jit(lambda m, x: m(x))(model, x).shape == (2, 10)
        for b in model.blocks:
            seen_identity |= isinstance(b, layers.Identity.target)
            seen_block |= isinstance(b, layers.InvertedBottleneck.target)
        # Widths chain: every block reads what the one before it wrote.
        width = model.stem.out_features
        for b in model.blocks:
            if isinstance(b, layers.InvertedBottleneck.target):
                assert b.in_features == width
                width = b.out_features
        assert model.head.in_features == width
    assert seen_block


def test_mobile_space_decisions_and_scaling():
    value = mobile_space(input_size=8, in_channels=1, kernel_sizes=(3, 5), expansions=(3, 6))
    kinds = {s.id.rsplit(".", 1)[-1] for s in pl.space(value).slots}
    assert {"kernel_size", "expansion", "out_features"} <= kinds
    # Every skippable block's inner decisions hang on its skip choice.
    for s in pl.space(value).slots:
        if ".candidates[0]." in s.id:
            assert len(s.conditions) == 1
    small = pl.space(mobile_space(32)).size
    big = pl.space(mobile_space(224)).size
    assert big > small > pl.space(value).size
    fixed = mobile_space(8, 1, kernel_sizes=(3,), expansions=(6,), width_multipliers=(1.0,))
    assert all(s.id.endswith("]") for s in pl.space(fixed).slots)  # only the skip choices left
    assert scale_width(40, 0.625) == 24 and scale_width(16, 0.25) == 8


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stages": ()}, "at least one stage"),
        ({"stages": ((16, 0, 1),)}, r"stages\[0\]"),
        ({"kernel_sizes": ()}, "kernel_sizes"),
    ],
)
def test_mobile_space_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mobile_space(8, 1, **kwargs)


def test_mlp_children_build_and_run():
    value = mlp_space(64, 10, widths=(8, 16, 32), num_layers=(1, 2, 3))
    space = pl.space(value)
    depths = set()
    for seed in (0, 1, 3):
        dna = pl.random_dna(space, seed)
        child = pl.materialize(value, dna)
        model = child.build(rngs=nnx.Rngs(0))
        depths.add(len(model.layers))
        assert list(model.hidden) == list(child.hidden)
        out = model(jnp.ones((3, 64)))
        assert out.shape == (3, 10) and np.isfinite(np.asarray(out)).all()
    assert len(depths) > 1
    assert pl.space(mlp_space(64, 10, widths=(8, 16), num_layers=3)).size == 8


def test_mlp_space_errors():
    with pytest.raises(ValueError, match="widths"):
        mlp_space(4, 2, widths=())
    with pytest.raises(ValueError, match="num_layers"):
        mlp_space(4, 2, num_layers=0)
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        layers.MLP(4, [3], 2, activation="nope").build(rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="residual=True"):
        layers.InvertedBottleneck(8, 16, residual=True).build(rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    ("widths", "num_layers"), [((8, 16, 32), (1, 2, 3)), ((8, 16), 2), ((32,), (1, 2))]
)
def test_mlp_param_cost_equals_the_built_childs_parameter_count(widths, num_layers):
    import jax

    from pliant.nn import param_count
    from pliant.spaces.dna import register_pytree
    from pliant.spaces.library import mlp_param_cost

    register_pytree()  # a DNA passes through jax.jit as a pytree
    value = mlp_space(12, 3, widths=widths, num_layers=num_layers)
    space = pl.space(value)
    cost = mlp_param_cost(space, 12, 3, widths=widths, num_layers=num_layers)
    dnas = pl.random_dna(space, 0, 6)
    in_jit = jax.jit(cost)(dnas)
    for k, dna in enumerate(dnas):
        expected = param_count(pl.materialize(value, dna).build(rngs=nnx.Rngs(0)))
        assert float(cost(dna)) == expected
        assert float(in_jit[k]) == expected
