"""Supernet exactness: net(x, dna) is extract(net, dna)(x), gradients reach only the child."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import pliant as pl
from pliant.nn import layers
from pliant.spaces.library import mlp_space, mobile_space

RTOL, ATOL = 1e-5, 1e-5


@functools.cache
def mobile():
    # One stage of two blocks covers every kind of choice: width (stage0/width, which also sets
    # the head's and block 1's input width), kernel size, expansion, and the depth skip.
    value = mobile_space(
        8,
        1,
        num_classes=4,
        stages=((16, 2, 1),),
        kernel_sizes=(3, 5),
        expansions=(2, 3),
        width_multipliers=(0.5, 1.0),
        head_features=16,
    )
    net = pl.nn.supernet(value, rngs=nnx.Rngs(0))
    return value, net


@functools.cache
def mlp():
    value = mlp_space(6, 3, widths=(2, 5, 8), num_layers=(1, 2, 3))
    return value, pl.nn.supernet(value, rngs=nnx.Rngs(1))


forward = nnx.jit(lambda net, x, dna: net(x, dna))
module_call = nnx.jit(lambda block, x, index, mix: block(x, index, mix))  # a super module
child_forward = nnx.jit(lambda child, x: child(x))


def pairs(dna):
    return {(i, int(dna.index[i])) for i in range(dna.index.shape[-1]) if dna.active[i]}


def covering_dnas(space):
    """A few DNAs that, together, pick every candidate of every decision (greedy set cover)."""
    pool = [space.make_dna(d.index) for d in map(lambda s: pl.random_dna(space, s), range(300))]
    want = {(i, j) for i, n in enumerate(space.num_choices) for j in range(int(n))}
    out = []
    while want:
        best = max(pool, key=lambda d: len(pairs(d) & want))
        out.append(best)
        want -= pairs(best)
    return out


def assert_covers(space, dnas):
    seen = set().union(*map(pairs, dnas))
    want = {(i, j) for i, n in enumerate(space.num_choices) for j in range(int(n))}
    assert want <= seen, sorted(want - seen)


def params_of(model):
    return nnx.state(model, nnx.Param)


@pytest.mark.parametrize("which", ["mobile", "mlp"])
def test_forward_equals_extracted_child_and_structure_matches(which):
    value, net = mobile() if which == "mobile" else mlp()
    space = pl.space(value)
    shape = (4, 8, 8, 1) if which == "mobile" else (7, 6)
    x = jax.random.normal(jax.random.key(2), shape)
    dnas = covering_dnas(space)
    assert_covers(space, dnas)
    kinds = set()
    for dna in dnas:
        child = pl.nn.extract(net, dna)
        expected = pl.materialize(value, dna)
        built = nnx.eval_shape(lambda e=expected: e.build(rngs=nnx.Rngs(0)))
        assert nnx.graphdef(child) == nnx.graphdef(built)
        shapes = jax.tree.map(lambda a: (a.shape, a.dtype), nnx.state(child))
        assert shapes == jax.tree.map(lambda a: (a.shape, a.dtype), nnx.state(built))
        kinds.update(type(b).__name__ for b in getattr(child, "blocks", []))
        np.testing.assert_allclose(
            forward(net, x, dna), child_forward(child, x), rtol=RTOL, atol=ATOL
        )
    if which == "mobile":
        assert kinds == {"InvertedBottleneck", "Identity"}


@pytest.mark.parametrize("which", ["mobile", "mlp"])
def test_gradients_reach_only_the_child_and_equal_its_own(which):
    value, net = mobile() if which == "mobile" else mlp()
    space = pl.space(value)
    shape = (4, 8, 8, 1) if which == "mobile" else (7, 6)
    x = jax.random.normal(jax.random.key(3), shape)
    target = jax.random.normal(jax.random.key(4), (shape[0], 4 if which == "mobile" else 3))

    @nnx.jit
    def super_grads(net, x, dna):
        return nnx.grad(lambda n: jnp.sum(n(x, dna) * target))(net)

    @nnx.jit
    def child_grads(child, x):
        return nnx.grad(lambda c: jnp.sum(c(x) * target))(child)

    # Mobile: one DNA (each is a fresh compile of the child on 2 busy cores); MLP: two.
    for dna in covering_dnas(space)[-1 if which == "mobile" else -2 :]:
        grads = super_grads(net, x, dna)
        holder = nnx.clone(net)
        nnx.update(holder, grads)
        inside = params_of(pl.nn.extract(holder, dna))
        expected = child_grads(pl.nn.extract(net, dna), x)
        for a, b in zip(jax.tree.leaves(inside), jax.tree.leaves(expected)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        total = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads))
        kept = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(inside))
        assert kept > 0
        assert total == pytest.approx(kept, rel=1e-5)  # nothing outside the child's slices


def test_dna_sampled_inside_jit():
    value, net = mlp()
    space = pl.space(value)
    x = jax.random.normal(jax.random.key(5), (7, 6))

    @nnx.jit
    def sampled(net, x, key):
        return net(x, pl.random_dna(space, key))

    for seed in range(4):
        key = jax.random.key(seed)
        dna = pl.random_dna(space, key)
        np.testing.assert_allclose(
            sampled(net, x, key), pl.nn.extract(net, dna)(x), rtol=RTOL, atol=ATOL
        )


def test_supernet_errors_name_the_path():
    @pl.symbolize
    class Custom(nnx.Module):
        def __init__(self, width: int, *, rngs: nnx.Rngs):
            self.width = width

    bad_block = layers.MobileNet(
        stem=layers.ConvBN(1, 8),
        blocks=[layers.Identity(), Custom(pl.oneof([1, 2]))],
        head=layers.ConvBN(8, 8, kernel_size=1),
        num_classes=2,
    )
    with pytest.raises(ValueError, match=r"path 'blocks\[1\]'.*Custom"):
        pl.nn.supernet(bad_block, rngs=nnx.Rngs(0))
    float_width = layers.MLP(4, [pl.floatv(1.0, 8.0)], 2)
    with pytest.raises(ValueError, match=r"path 'hidden\[0\]'.*choice of ints"):
        pl.nn.supernet(float_width, rngs=nnx.Rngs(0))
    stride_choice = layers.MLP(4, [4], 2, activation=pl.oneof(["relu", "tanh"]))
    with pytest.raises(ValueError, match=r"path 'activation'.*cannot be a choice"):
        pl.nn.supernet(stride_choice, rngs=nnx.Rngs(0))


def test_call_and_extract_errors():
    value, net = mlp()
    other = pl.space(mlp_space(6, 3, widths=(2, 4)))
    x = jnp.ones((2, 6))
    with pytest.raises(ValueError, match="another space"):
        net(x, pl.random_dna(other, 0))
    with pytest.raises(ValueError, match="vmap"):
        net(x, pl.random_dna(pl.space(value), 0, n=2))
    with pytest.raises(TypeError, match=r"pl\.DNA"):
        net(x, [0, 1])
    with pytest.raises(TypeError, match="Supernet"):
        pl.nn.extract(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), pl.random_dna(pl.space(value), 0))


def test_switch_between_blocks_of_different_shapes_is_an_error():
    value = layers.MobileNet(
        stem=layers.ConvBN(1, 8),
        blocks=[pl.oneof([layers.InvertedBottleneck(8, 16, stride=2), layers.Identity()])],
        head=layers.ConvBN(16, 8, kernel_size=1),
        num_classes=2,
    )
    net = pl.nn.supernet(value, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"path 'blocks\[0\]'.*different shapes"):
        jax.eval_shape(
            lambda x, d: net(x, d), jnp.ones((1, 8, 8, 1)), pl.random_dna(pl.space(value), 0)
        )


def test_int_and_nested_width_choices():
    value = layers.MLP(5, [pl.intv(2, 6), pl.oneof([3, pl.oneof([4, 7])])], 2, activation="tanh")
    space = pl.space(value)
    net = pl.nn.supernet(value, rngs=nnx.Rngs(2))
    assert [layer.out_features for layer in net.body.layers] == [6, 7]
    x = jax.random.normal(jax.random.key(6), (3, 5))
    dnas = covering_dnas(space)
    assert_covers(space, dnas)
    for dna in dnas:
        child = pl.nn.extract(net, dna)
        assert list(child.hidden) == list(pl.materialize(value, dna).hidden)
        np.testing.assert_allclose(forward(net, x, dna), child(x), rtol=RTOL, atol=ATOL)


def test_op_warmup_averages_the_candidates_of_a_block_choice():
    _, net = mobile()
    switch = net.body.blocks[1]  # oneof([InvertedBottleneck(...), Identity()]), slot 3
    x = jax.random.normal(jax.random.key(7), (4, 8, 8, 16))
    index = jnp.asarray([1, 1, 1, 0, 1, 0])
    mix = jnp.zeros(6, bool).at[3].set(True)
    each = [module_call(switch, x, index.at[3].set(j), None) for j in range(2)]
    got = module_call(switch, x, index, mix)
    np.testing.assert_allclose(got, (each[0] + each[1]) / 2, rtol=RTOL, atol=ATOL)
    assert not np.allclose(each[0], each[1], atol=1e-3)  # the mean is not one of them
    # The same DNA, with its other slots flagged, stays on the single path.
    single = module_call(switch, x, index, jnp.zeros(6, bool).at[1].set(True))
    np.testing.assert_allclose(single, each[0], rtol=RTOL, atol=ATOL)


def test_op_warmup_averages_the_kernel_sizes_of_a_block():
    _, net = mobile()
    block = net.body.blocks[0]  # kernel_size oneof([3, 5]) at slot 1, stride 1
    x = jax.random.normal(jax.random.key(8), (4, 8, 8, block.cin.max))
    index = jnp.asarray([1, 0, 1, 0, 0, 0])
    got = module_call(block, x, index, jnp.zeros(6, bool).at[1].set(True))
    # Depthwise convolution is linear in its kernel, and a 3x3 kernel is the 5x5 kernel with a
    # zero border (SAME padding, stride 1): the average of the two branches is one 5x5 branch
    # whose kernel is the average of the padded 3x3 and the 5x5.
    w3, w5 = (dw.kernel[...] for dw in block.depthwise)
    merged = nnx.clone(block)
    merged.depthwise[1].kernel.set_value((jnp.pad(w3, ((1, 1), (1, 1), (0, 0))) + w5) / 2)
    want = module_call(merged, x, index.at[1].set(1), None)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert not np.allclose(got, module_call(block, x, index, None), atol=1e-3)


def test_mixed_mask_errors():
    _, net = mobile()
    x = jnp.ones((2, 8, 8, 1))
    dna = net.space.make_dna(np.array([1, 0, 1, 0, 1, 0]))
    with pytest.raises(ValueError, match=r"mixed must be a bool array of shape \[6\]"):
        net(x, dna, np.zeros(5, bool))
    with pytest.raises(ValueError, match="mixed must be a bool"):
        net(x, dna, np.zeros(6, np.int32))


@pytest.mark.slow  # three compilations of the whole supernet (about a minute on 2 busy CPUs)
def test_mixed_mask_in_the_supernet_call():
    _, net = mobile()
    space = net.space
    x = jax.random.normal(jax.random.key(9), (4, 8, 8, 1))
    dna = space.make_dna(np.array([1, 0, 1, 0, 1, 0]))
    call = nnx.jit(lambda net, x, dna, mixed: net(x, dna, mixed))
    none = np.zeros(space.num_slots, bool)
    np.testing.assert_allclose(call(net, x, dna, none), forward(net, x, dna), rtol=RTOL, atol=ATOL)

    @nnx.jit
    def grads_of(net, mixed):
        return nnx.grad(lambda n: jnp.sum(n(x, dna, mixed) ** 2))(net)

    def kernel_grads(mixed):
        dw = grads_of(net, none if mixed is None else mixed).body.blocks[0].depthwise
        return [float(jnp.abs(dw[i].kernel[...]).sum()) for i in range(2)]

    single, mixed = kernel_grads(None), kernel_grads(jnp.asarray(none).at[1].set(True))
    assert single[0] > 0 and single[1] == 0  # only the chosen 3x3 trains
    assert mixed[0] > 0 and mixed[1] > 0  # under op warm-up both kernels train
