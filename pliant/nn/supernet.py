"""One-shot supernets: every child of a search space in one NNX module, called as ``net(x, dna)``.

:func:`supernet` walks the compiled space (the plan of ``pl.space``) next to the symbolic value
and builds a *super* module for each weight-sharing block of :mod:`pliant.nn.layers`:

- a **width** decision (``in_features``/``out_features``/``expansion``/``hidden`` widths) is one
  layer allocated at the largest width; the chosen width becomes a prefix mask on the layer's
  output (after its BatchNorm), so narrower children share the leading channels (TuNAS, FBNetV2).
  Inactive channels are exact zeros, so they also get exact zero gradients, in the next layer's
  input weights too;
- an **op** decision (the depthwise kernel size, a choice between blocks such as
  ``oneof([InvertedBottleneck(...), Identity()])``) is a ``lax.switch`` over separately weighted
  branches with ``jax.checkpoint`` around each branch, so only the chosen branch runs and the
  backward pass keeps no residuals of the others (pitfall 15); under TuNAS's op warm-up
  (``net(x, dna, mixed)``) a flagged choice runs every branch and averages their outputs;
- a **depth** decision is a skip: a block choice with ``Identity()`` (a switch), or an MLP depth
  choice (a select between the layer's output and its input; the layers past the chosen depth
  still run, since an MLP layer is cheap, and their weights get zero gradient);
- BatchNorm always normalizes with the statistics of the current batch (no running averages
  shared between children) and is masked like the layer it follows.

Decisions are read from ``dna.index`` inside the graph, so one compilation of ``net(x, dna)``
serves every child and a DNA sampled inside ``jax.jit`` can drive it. :func:`extract` builds the
child ``pl.materialize(space_value, dna)`` describes, with its weights sliced from the supernet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pliant.nn import layers
from pliant.spaces.compiler import (
    _ChoicePlan,
    _Const,
    _IntPlan,
    _NodePlan,
    _SeqPlan,
    compile_space,
)
from pliant.spaces.dna import DNA, Space, register_pytree
from pliant.symbolic import KeyPath, Node, Symbolic, format_value

__all__ = ["Supernet", "extract", "supernet"]

_BN_EPSILON = 1e-5  # nnx.BatchNorm's default; the children use nnx.BatchNorm


# ----------------------------------------------------------------------------------------------
# Decisions read inside the graph.


class _Scalar:
    """A numeric argument: its possible values and, from a DNA, the position of the chosen one."""

    def __init__(
        self,
        values: Sequence[Any],
        position: Callable[[jax.Array], jax.Array] | None,
        slot: int | None = None,
    ):
        self.values = tuple(values)
        self._position = position
        self.slot = slot  # the slot of the outermost decision (None: fixed or an int range)

    @property
    def max(self) -> Any:
        return max(self.values)

    @property
    def fixed(self) -> bool:
        return len(self.values) == 1

    def position(self, index: jax.Array) -> jax.Array:
        if self._position is None:
            return jnp.zeros((), jnp.int32)
        return self._position(index)

    def value(self, index: jax.Array) -> jax.Array:
        if self.fixed:
            return jnp.asarray(self.values[0])
        return jnp.asarray(self.values)[self.position(index)]


def _scalar(plan: Any, where: KeyPath) -> _Scalar:
    if isinstance(plan, _Const) and _is_number(plan.value):
        return _Scalar([plan.value], None)
    if isinstance(plan, _IntPlan):
        slot = plan.slot
        return _Scalar(range(plan.lo, plan.hi + 1), lambda index: index[slot])
    if isinstance(plan, _ChoicePlan):
        cands = [_scalar(c, where) for c in plan.candidates]
        values = sorted({v for c in cands for v in c.values})
        remaps = [np.asarray([values.index(v) for v in c.values], np.int32) for c in cands]
        slot = plan.slot

        def position(index: jax.Array) -> jax.Array:
            each = jnp.stack([jnp.asarray(r)[c.position(index)] for r, c in zip(remaps, cands)])
            return each[index[slot]]

        return _Scalar(values, position, slot)
    raise ValueError(
        f"pl.nn.supernet: at path {str(where)!r}: expected an int or a choice of ints, got "
        f"{_describe(plan)}"
    )


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _describe(plan: Any) -> str:
    if isinstance(plan, _Const):
        return format_value(plan.value)
    if isinstance(plan, _NodePlan):
        return f"a {plan.spec.name}(...) holding choices"
    return f"a {type(plan).__name__.strip('_').replace('Plan', '').lower()} decision"


def _mask(width: _Scalar, size: int, index: jax.Array, dtype: Any) -> jax.Array | None:
    if width.fixed:
        return None
    return (jnp.arange(size) < width.value(index)).astype(dtype)


def _times(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    return x if mask is None else x * mask


def _run_op(
    fns: Sequence[Callable[[jax.Array], jax.Array]],
    position: jax.Array,
    average: jax.Array | None,
    x: jax.Array,
) -> jax.Array:
    """One op choice: ``fns[position](x)`` alone, or, where ``average`` holds, the mean of all.

    The single path is a ``lax.switch`` (only the chosen branch runs); the average (TuNAS's
    op warm-up: a uniform mask over the candidates) runs every branch. ``average`` is a traced
    bool, so one compiled program serves both, a ``lax.cond`` choosing at run time.
    """

    def single(x: jax.Array) -> jax.Array:
        return jax.lax.switch(position, list(fns), x)

    if average is None:
        return single(x)

    def mean(x: jax.Array) -> jax.Array:
        total = fns[0](x)
        for f in fns[1:]:
            total = total + f(x)
        return total / jnp.asarray(len(fns), total.dtype)

    return jax.lax.cond(average, mean, single, x)


def _averaged(mix: jax.Array | None, slot: int | None) -> jax.Array | None:
    return None if mix is None or slot is None else mix[slot]


def _node_args(plan: Any) -> tuple[Any, dict[str, Any]] | None:
    """The callable and argument plans of a node (defaults included), concrete or not."""
    if isinstance(plan, _NodePlan):
        spec, args = plan.spec, dict(plan.items)
    elif isinstance(plan, _Const) and isinstance(plan.value, Node):
        spec, args = plan.value.spec, {k: _Const(v) for k, v in plan.value.args.items()}
    else:
        return None
    fn = spec.fn
    for name, p in spec.signature.parameters.items():
        if name not in args and p.default is not p.empty:
            args[name] = _Const(p.default)
    return fn, args


def _fixed(args: dict[str, Any], name: str, where: KeyPath) -> Any:
    plan = args[name]
    if not isinstance(plan, _Const):
        raise ValueError(
            f"pl.nn.supernet: at path {str(where.child(name))!r}: {name} cannot be a choice "
            f"in a supernet, got {_describe(plan)}"
        )
    return plan.value


# ----------------------------------------------------------------------------------------------
# Super modules. Each has __call__(x, index) and load(child) (copy weights into a built child).


class _MaskedBatchNorm(nnx.Module):
    """BatchNorm on the batch's own statistics, its output multiplied by a channel mask."""

    def __init__(self, features: int):
        self.scale = nnx.Param(jnp.ones((features,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((features,), jnp.float32))

    def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axes)
        var = jnp.maximum((x * x).mean(axes) - mean * mean, 0.0)
        mul = jax.lax.rsqrt(var + _BN_EPSILON) * self.scale[...].astype(x.dtype)
        return _times((x - mean) * mul + self.bias[...].astype(x.dtype), mask)

    def load(self, child: nnx.BatchNorm) -> None:
        _copy(self.scale, child.scale)
        _copy(self.bias, child.bias)
        n = child.num_features
        child.mean.set_value(jnp.zeros((n,), jnp.float32))
        child.var.set_value(jnp.ones((n,), jnp.float32))


class _SuperConvBN(nnx.Module):
    def __init__(self, args: dict[str, Any], where: KeyPath, rngs: nnx.Rngs):
        self.cin = _scalar(args["in_features"], where.child("in_features"))
        self.cout = _scalar(args["out_features"], where.child("out_features"))
        k = _fixed(args, "kernel_size", where)
        stride = _fixed(args, "stride", where)
        self.act = layers._activation(_fixed(args, "activation", where), str(where))
        self.conv = nnx.Conv(
            self.cin.max, self.cout.max, (k, k), strides=stride, padding="SAME",
            use_bias=False, rngs=rngs,
        )  # fmt: skip
        self.bn = _MaskedBatchNorm(self.cout.max)

    def __call__(self, x: jax.Array, index: jax.Array, mix: jax.Array | None) -> jax.Array:
        mask = _mask(self.cout, self.cout.max, index, x.dtype)
        return self.act(self.bn(self.conv(x), mask))

    def load(self, child: Any) -> None:
        _copy(self.conv.kernel, child.conv.kernel)
        self.bn.load(child.bn)


class _SuperInvertedBottleneck(nnx.Module):
    def __init__(self, args: dict[str, Any], where: KeyPath, rngs: nnx.Rngs):
        self.cin = _scalar(args["in_features"], where.child("in_features"))
        self.cout = _scalar(args["out_features"], where.child("out_features"))
        self.kernel = _scalar(args["kernel_size"], where.child("kernel_size"))
        self.expansion = _scalar(args["expansion"], where.child("expansion"))
        self.stride = _fixed(args, "stride", where)
        self.residual = bool(_fixed(args, "residual", where))
        hidden = self.cin.max * self.expansion.max
        self.hidden = hidden
        self.expand = nnx.Conv(self.cin.max, hidden, (1, 1), use_bias=False, rngs=rngs)
        self.expand_bn = _MaskedBatchNorm(hidden)
        self.depthwise = nnx.List(
            [layers.DepthwiseConv(hidden, k, self.stride, rngs=rngs) for k in self.kernel.values]
        )
        self.depthwise_bn = _MaskedBatchNorm(hidden)
        self.project = nnx.Conv(hidden, self.cout.max, (1, 1), use_bias=False, rngs=rngs)
        self.project_bn = _MaskedBatchNorm(self.cout.max)

    def __call__(self, x: jax.Array, index: jax.Array, mix: jax.Array | None) -> jax.Array:
        if self.cin.fixed and self.expansion.fixed:
            hmask = None
        else:
            width = self.cin.value(index) * self.expansion.value(index)
            hmask = (jnp.arange(self.hidden) < width).astype(x.dtype)
        y = jax.nn.relu6(self.expand_bn(self.expand(x), hmask))
        kernels = [dw.kernel[...].astype(x.dtype) for dw in self.depthwise]
        if len(kernels) == 1:
            y = layers.depthwise_conv(y, kernels[0], self.stride)
        else:
            branches = [
                jax.checkpoint(lambda y, w=w: layers.depthwise_conv(y, w, self.stride))
                for w in kernels
            ]
            average = _averaged(mix, self.kernel.slot)
            y = _run_op(branches, self.kernel.position(index), average, y)
        y = jax.nn.relu6(self.depthwise_bn(y, hmask))
        y = self.project_bn(self.project(y), _mask(self.cout, self.cout.max, index, x.dtype))
        return x + y if self.residual else y

    def load(self, child: Any) -> None:
        _copy(self.expand.kernel, child.expand.kernel)
        self.expand_bn.load(child.expand_bn)
        dw = self.depthwise[self.kernel.values.index(child.kernel_size)]
        _copy(dw.kernel, child.depthwise.kernel)
        self.depthwise_bn.load(child.depthwise_bn)
        _copy(self.project.kernel, child.project.kernel)
        self.project_bn.load(child.project_bn)


class _SuperIdentity(nnx.Module):
    def __init__(self, args: dict[str, Any], where: KeyPath, rngs: nnx.Rngs):
        pass

    def __call__(self, x: jax.Array, index: jax.Array, mix: jax.Array | None) -> jax.Array:
        return x

    def load(self, child: Any) -> None:
        pass


class _Switch(nnx.Module):
    """An op choice between blocks: ``lax.switch`` over checkpointed branches."""

    def __init__(self, plan: _ChoicePlan, where: KeyPath, rngs: nnx.Rngs):
        self.slot = plan.slot
        self.where = str(where)
        self.branches = nnx.List(
            [
                _block(c, where.child("candidates").child(j), rngs)
                for j, c in enumerate(plan.candidates)
            ]
        )

    def __call__(self, x: jax.Array, index: jax.Array, mix: jax.Array | None) -> jax.Array:
        fns = [jax.checkpoint(lambda x, b=b: b(x, index, mix)) for b in self.branches]
        shapes = {jax.eval_shape(f, x).shape for f in fns}
        if len(shapes) > 1:
            raise ValueError(
                f"pl.nn.supernet: at path {self.where!r}: the candidates of this choice give "
                f"outputs of different shapes {sorted(shapes)}; an op choice needs candidates "
                f"with equal output shapes (e.g. a residual block and Identity())"
            )
        return _run_op(fns, index[self.slot], _averaged(mix, self.slot), x)

    def load(self, child: Any, index: np.ndarray) -> None:
        _load(self.branches[int(index[self.slot])], child, index)


class _SuperMobileNet(nnx.Module):
    def __init__(self, args: dict[str, Any], where: KeyPath, rngs: nnx.Rngs):
        self.stem = _block(args["stem"], where.child("stem"), rngs)
        blocks = args["blocks"]
        if isinstance(blocks, _Const):
            items: list[Any] = [_Const(b) for b in blocks.value]
        elif isinstance(blocks, _SeqPlan):
            items = list(blocks.plans)
        else:
            raise ValueError(
                f"pl.nn.supernet: at path {str(where.child('blocks'))!r}: expected a list of "
                f"blocks (each may be a choice), got {_describe(blocks)}"
            )
        self.blocks = nnx.List(
            [_block(b, where.child("blocks").child(i), rngs) for i, b in enumerate(items)]
        )
        self.head = _block(args["head"], where.child("head"), rngs)
        head_out = self.head.cout.max if isinstance(self.head, _SuperConvBN) else None
        if head_out is None:
            raise ValueError(
                f"pl.nn.supernet: at path {str(where.child('head'))!r}: expected a ConvBN"
            )
        self.classifier = nnx.Linear(head_out, _fixed(args, "num_classes", where), rngs=rngs)

    def __call__(self, x: jax.Array, index: jax.Array, mix: jax.Array | None) -> jax.Array:
        x = self.stem(x, index, mix)
        for block in self.blocks:
            x = block(x, index, mix)
        x = self.head(x, index, mix)
        return self.classifier(x.mean(axis=(1, 2)))

    def load(self, child: Any, index: np.ndarray) -> None:
        _load(self.stem, child.stem, index)
        for sb, cb in zip(self.blocks, child.blocks):
            _load(sb, cb, index)
        _load(self.head, child.head, index)
        _copy(self.classifier.kernel, child.classifier.kernel)
        _copy(self.classifier.bias, child.classifier.bias)


class _SuperMLP(nnx.Module):
    def __init__(self, args: dict[str, Any], where: KeyPath, rngs: nnx.Rngs):
        in_features = _fixed(args, "in_features", where)
        self.act = layers._activation(_fixed(args, "activation", where), str(where))
        hidden = args["hidden"]
        where_h = where.child("hidden")
        self.depth: _Scalar | None = None
        if isinstance(hidden, _ChoicePlan):
            lists = [_width_list(c, where_h.child("candidates").child(j)) for j, c in
                     enumerate(hidden.candidates)]  # fmt: skip
            lengths = [len(ws) for ws in lists]
            slot = hidden.slot
            self.depth = _Scalar(lengths, lambda index: index[slot])
            self.min_depth = min(lengths)
            widths = []
            for i in range(max(lengths)):
                per = [ws[i] if i < len(ws) else _Scalar([0], None) for ws in lists]
                widths.append(_choice_of(per, slot))
            # Skipped layers pass their input on, so all hidden layers share one width.
            size = max(w.max for w in widths)
            sizes = [size] * len(widths)
        else:
            widths = _width_list(hidden, where_h)
            sizes = [w.max for w in widths]
            self.min_depth = len(widths)
        self.widths = tuple(widths)
        ins = [in_features, *sizes[:-1]]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(ins, sizes)])
        self.sizes = tuple(sizes)
        self.classifier = nnx.Linear(sizes[-1], _fixed(args, "num_classes", where), rngs=rngs)

    def __call__(self, x: jax.Array, index: jax.Array, mix: jax.Array | None) -> jax.Array:
        # A depth choice stays single-path under op warm-up (``mix`` is not read): the
        # warm-up's uniform candidate trains instead of the average of all depths.
        for i, (layer, width, size) in enumerate(zip(self.layers, self.widths, self.sizes)):
            y = _times(self.act(layer(x)), _mask(width, size, index, x.dtype))
            if self.depth is not None and i >= self.min_depth:
                y = jnp.where(i < self.depth.value(index), y, x)
            x = y
        return self.classifier(x)

    def load(self, child: Any, index: np.ndarray) -> None:
        for sl, cl in zip(self.layers, child.layers):
            _copy(sl.kernel, cl.kernel)
            _copy(sl.bias, cl.bias)
        _copy(self.classifier.kernel, child.classifier.kernel)
        _copy(self.classifier.bias, child.classifier.bias)


def _choice_of(cands: list[_Scalar], slot: int) -> _Scalar:
    values = sorted({v for c in cands for v in c.values})
    remaps = [np.asarray([values.index(v) for v in c.values], np.int32) for c in cands]

    def position(index: jax.Array) -> jax.Array:
        each = jnp.stack([jnp.asarray(r)[c.position(index)] for r, c in zip(remaps, cands)])
        return each[index[slot]]

    return _Scalar(values, position)


def _width_list(plan: Any, where: KeyPath) -> list[_Scalar]:
    if isinstance(plan, _Const) and isinstance(plan.value, tuple):
        items: list[Any] = [_Const(v) for v in plan.value]
    elif isinstance(plan, _SeqPlan):
        items = list(plan.plans)
    else:
        raise ValueError(
            f"pl.nn.supernet: at path {str(where)!r}: expected a list of widths or a choice "
            f"between such lists, got {_describe(plan)}"
        )
    if not items:
        raise ValueError(f"pl.nn.supernet: at path {str(where)!r}: an MLP needs a hidden layer")
    return [_scalar(p, where.child(i)) for i, p in enumerate(items)]


#: The blocks a supernet shares weights for, keyed by the class a symbolized node builds.
_SUPER: dict[Any, Any] = {
    _symbolic.target: cls
    for _symbolic, cls in [
        (layers.ConvBN, _SuperConvBN),
        (layers.InvertedBottleneck, _SuperInvertedBottleneck),
        (layers.Identity, _SuperIdentity),
        (layers.MobileNet, _SuperMobileNet),
        (layers.MLP, _SuperMLP),
    ]
    if isinstance(_symbolic, Symbolic)  # always; tells type checkers what the decorator made
}


def _block(plan: Any, where: KeyPath, rngs: nnx.Rngs) -> Any:
    if isinstance(plan, _ChoicePlan) and all(_node_args(c) is not None for c in plan.candidates):
        return _Switch(plan, where, rngs)
    node = _node_args(plan)
    if node is not None and node[0] in _SUPER:
        return _SUPER[node[0]](node[1], where, rngs)
    known = sorted(c.__name__ for c in _SUPER)
    what = _describe(plan) if node is None else f"a {getattr(node[0], '__name__', node[0])}(...)"
    raise ValueError(
        f"pl.nn.supernet: at path {str(where) or '<root>'!r}: cannot share weights for {what}; "
        f"a supernet is built from the blocks of pliant.nn.layers ({', '.join(known)}), with "
        f"choices in the arguments they document, or choices between such blocks"
    )


def _load(sup: Any, child: Any, index: np.ndarray) -> None:
    if isinstance(sup, _Switch | _SuperMobileNet | _SuperMLP):
        sup.load(child, index)
    else:
        sup.load(child)


def _copy(src: Any, dst: Any) -> None:
    """Writes the leading block of ``src`` (the shared prefix) with ``dst``'s shape into ``dst``."""
    shape = tuple(dst.get_value().shape)
    arr = src[...]
    dst.set_value(jnp.asarray(arr[tuple(slice(0, n) for n in shape)], dst.get_value().dtype))


# ----------------------------------------------------------------------------------------------
# Public API.


class Supernet(nnx.Module):
    """A weight-sharing supernet over a search space; call it as ``net(x, dna[, mixed])``.

    Attributes:
        space: the :class:`~pliant.spaces.Space` whose DNAs the supernet reads.
        space_value: the symbolic search space it was built from.
        body: the super module of the space's root node.
    """

    def __init__(self, space_value: Any, *, rngs: nnx.Rngs):
        compiled = compile_space(space_value)
        self.space_value = compiled.value
        self.space: Space = compiled.space
        register_pytree()
        self.body = _block(compiled.plan, KeyPath(), rngs)

    def __call__(self, x: jax.Array, dna: DNA, mixed: Any = None) -> jax.Array:
        index = _index(self.space, dna)
        return self.body(x, index, _mixed(self.space, mixed))


def _mixed(space: Space, mixed: Any) -> jax.Array | None:
    if mixed is None:
        return None
    mix = jnp.asarray(mixed)
    if mix.shape != (space.num_slots,) or mix.dtype != jnp.bool_:
        raise ValueError(
            f"pl.nn.supernet: mixed must be a bool array of shape [{space.num_slots}] (one flag "
            f"per slot, e.g. from pl.algorithms.sharing.warmup_path), got {mix.dtype}"
            f"{list(mix.shape)}"
        )
    return mix


def _index(space: Space, dna: Any) -> jax.Array:
    if not isinstance(dna, DNA):
        raise TypeError(f"pl.nn.supernet: expected a pl.DNA of the supernet's space, got {dna!r}")
    if dna.space != space:
        raise ValueError(
            "pl.nn.supernet: the DNA belongs to another space (fingerprint "
            f"{dna.space.fingerprint!r}, the supernet's is {space.fingerprint!r}); make it with "
            "pl.space(space_value) of the value the supernet was built from"
        )
    index = jnp.asarray(dna.index)
    if index.ndim != 1:
        raise ValueError(
            f"pl.nn.supernet: expected one DNA (index of shape [{space.num_slots}]), got shape "
            f"{tuple(index.shape)}; run several architectures with a Python loop or lax.map, "
            "not vmap (a vmapped switch runs every branch)"
        )
    return index


def supernet(space_value: Any, *, rngs: nnx.Rngs) -> Supernet:
    """Builds the weight-sharing supernet of a search space written with :mod:`pliant.nn.layers`.

    Args:
        space_value: a symbolic value whose root is a ``MobileNet`` or ``MLP`` node (e.g. from
            :func:`pliant.spaces.library.mobile_space`), with choices in the arguments
            :mod:`pliant.nn.layers` documents and choices between blocks.
        rngs: initializes the shared weights.

    Returns:
        A :class:`Supernet`: ``net(x, dna)`` runs the child ``dna`` selects (``dna`` from
        ``pl.space(space_value)``, concrete or traced under ``jax.jit``).
        ``net(x, dna, mixed)``, with ``mixed`` a bool ``[num_slots]`` mask (TuNAS's op
        warm-up, from :func:`pliant.algorithms.sharing.warmup_path`), replaces the output of
        each flagged op choice (a choice between blocks, a kernel size) by the mean of all its
        candidates' outputs; an MLP depth choice ignores the flag.

    Raises:
        ValueError: naming the key path of a node or choice the supernet cannot share weights for.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import pliant as pl
        >>> from pliant.spaces.library import mlp_space
        >>> value = mlp_space(4, 3, widths=(2, 8), num_layers=(1, 2))
        >>> net = pl.nn.supernet(value, rngs=nnx.Rngs(0))
        >>> dna = pl.random_dna(pl.space(value), 0)
        >>> net(jnp.ones((5, 4)), dna).shape
        (5, 3)
    """
    return Supernet(space_value, rngs=rngs)


def extract(net: Supernet, dna: DNA) -> nnx.Module:
    """The standalone child a DNA selects, with weights copied (sliced) from the supernet.

    The child is ``pl.materialize(net.space_value, dna).build(...)``: the same modules and
    structure, and in training mode (BatchNorm on batch statistics, fresh running averages) it
    computes what ``net(x, dna)`` computes.

    Args:
        net: a :class:`Supernet`.
        dna: a concrete DNA of ``net.space``.

    Returns:
        The child NNX module (its arrays are copies; training it leaves the supernet unchanged).

    Example:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from flax import nnx
        >>> import pliant as pl
        >>> from pliant.spaces.library import mlp_space
        >>> value = mlp_space(4, 3, widths=(2, 8), num_layers=(1, 2))
        >>> net = pl.nn.supernet(value, rngs=nnx.Rngs(0))
        >>> dna = pl.random_dna(pl.space(value), 1)
        >>> child = pl.nn.extract(net, dna)
        >>> x = jnp.ones((5, 4))
        >>> bool(np.allclose(child(x), net(x, dna), atol=1e-6))
        True
    """
    from pliant.spaces.compiler import materialize

    if not isinstance(net, Supernet):
        raise TypeError(f"pl.nn.extract: expected a pl.nn.Supernet, got {type(net).__name__}")
    _index(net.space, dna)
    index = np.asarray(dna.index)
    host = net.space.make_dna(index, np.asarray(dna.value))
    value = materialize(net.space_value, host)
    child = nnx.eval_shape(lambda: value.build(rngs=nnx.Rngs(0)))
    _load(net.body, child, index)
    missing = [
        ".".join(map(str, p))
        for p, v in nnx.to_flat_state(nnx.state(child))
        if isinstance(v.get_value(), jax.ShapeDtypeStruct)
    ]
    if missing:  # a block whose load() forgot a variable; a bug in this module, not user error
        raise RuntimeError(f"pl.nn.extract: no weights copied for {missing}")
    return child
