"""Weight-sharing aware Flax NNX building blocks: ordinary modules a supernet knows how to share.

Every class here (except :class:`DepthwiseConv`) is symbolized: calling it returns a symbolic
:class:`~pliant.symbolic.Node` whose arguments may hold placeholders, and ``node.build(rngs=...)``
returns the ordinary NNX module (``ConvBN.target`` is the class itself). :func:`pliant.nn.supernet`
turns a space written with these classes into one supernet; :func:`pliant.nn.extract` builds the
child with exactly these modules and copies its weights from the supernet.

Structure (class, arguments; ``*`` marks the arguments that may hold a choice in a supernet):

- ``ConvBN(in_features*, out_features*, kernel_size=3, stride=1, activation="relu6")``:
  ``conv`` (``nnx.Conv``, no bias, SAME padding) → ``bn`` (``nnx.BatchNorm``) → activation.
- ``InvertedBottleneck(in_features*, out_features*, kernel_size*=3, expansion*=6, stride=1,
  residual=False)`` (MobileNetV2): ``expand`` (1×1 ConvBN to ``in_features * expansion``
  channels, ReLU6) → ``depthwise`` (:class:`DepthwiseConv` ``kernel_size``, ``stride``) →
  ``depthwise_bn`` → ReLU6 → ``project`` (1×1 ConvBN to ``out_features``, no activation), plus the
  input when ``residual`` (which needs ``stride == 1`` and ``in_features == out_features``).
- ``Identity()``: returns its input; the "skip this block" candidate of a depth choice.
- ``MobileNet(stem, blocks, head, num_classes)``: ``stem`` (a ConvBN) → each of ``blocks*`` (a
  list whose items may be a choice between blocks, e.g. ``pl.oneof([block, Identity()])``) →
  ``head`` (a 1×1 ConvBN) → global average pooling → ``classifier`` (``nnx.Linear``). Inputs are
  NHWC.
- ``MLP(in_features, hidden*, num_classes, activation="relu")``: one ``nnx.Linear`` per entry of
  ``hidden`` (in ``layers``) with the activation, then ``classifier``. ``hidden`` is a list of
  widths, each of which may be a choice, or a choice between such lists (a depth choice).

Example:
    >>> import pliant as pl
    >>> from flax import nnx
    >>> from pliant.nn import layers
    >>> net = layers.MLP(in_features=4, hidden=[8, 8], num_classes=3).build(rngs=nnx.Rngs(0))
    >>> [layer.out_features for layer in net.layers]
    [8, 8]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from pliant.symbolic import symbolize

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ConvBN",
    "DepthwiseConv",
    "Identity",
    "InvertedBottleneck",
    "MobileNet",
    "depthwise_conv",
    "same_padding",
]

#: Activations by name (a name keeps the symbolic value JSON-friendly).
ACTIVATIONS: dict[str, Any] = {
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "hard_swish": jax.nn.hard_swish,
    "tanh": jnp.tanh,
    "none": lambda x: x,
}


def _activation(name: str, where: str) -> Any:
    if name not in ACTIVATIONS:
        raise ValueError(
            f"{where}: unknown activation {name!r}; expected one of {list(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]


def _positive_int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise ValueError(f"{what} must be a positive int, got {x!r}")
    return x


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow-style SAME padding (low, high) of one spatial axis.

    Example:
        >>> same_padding(8, 3, 2)
        (0, 1)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
    """Depthwise convolution (SAME padding) as a sum of k² shifted slices times the kernel.

    XLA's grouped convolution is very slow on CPU, above all its gradient inside ``lax.switch``
    (pitfall 14 in the specs); this form gives the same result and is much faster there.

    Args:
        x: NHWC input.
        kernel: ``(k, k, C)`` per-channel weights.
        stride: spatial stride.

    Example:
        >>> import jax.numpy as jnp
        >>> depthwise_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2)))[0, :, :, 0]
        Array([[4., 6., 6., 4.],
               [6., 9., 9., 6.],
               [6., 9., 9., 6.],
               [4., 6., 6., 4.]], dtype=float32)
    """
    k = kernel.shape[0]
    h, w = x.shape[1], x.shape[2]
    ph, pw = same_padding(h, k, stride), same_padding(w, k, stride)
    xp = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
    ho, wo = -(-h // stride), -(-w // stride)
    out = None
    span_h, span_w = (ho - 1) * stride + 1, (wo - 1) * stride + 1
    for i in range(k):
        for j in range(k):
            piece = xp[:, i : i + span_h : stride, j : j + span_w : stride]
            term = piece * kernel[i, j]
            out = term if out is None else out + term
    assert out is not None
    return out


class DepthwiseConv(nnx.Module):
    """A depthwise convolution (no bias, SAME padding) computed by :func:`depthwise_conv`.

    Example:
        >>> from flax import nnx
        >>> DepthwiseConv(4, 3, rngs=nnx.Rngs(0)).kernel.shape
        (3, 3, 4)
    """

    def __init__(self, features: int, kernel_size: int, stride: int = 1, *, rngs: nnx.Rngs):
        self.features = _positive_int(features, "DepthwiseConv features")
        self.kernel_size = _positive_int(kernel_size, "DepthwiseConv kernel_size")
        self.stride = _positive_int(stride, "DepthwiseConv stride")
        init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=(0, 1))
        shape = (kernel_size, kernel_size, features)
        self.kernel = nnx.Param(init(rngs.params(), shape, jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return depthwise_conv(x, self.kernel[...].astype(x.dtype), self.stride)


@symbolize
class ConvBN(nnx.Module):
    """Convolution (no bias) → BatchNorm → activation.

    Example:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> m = ConvBN(3, 8, kernel_size=3, stride=2).build(rngs=nnx.Rngs(0))
        >>> m(jnp.ones((2, 8, 8, 3))).shape
        (2, 4, 4, 8)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: str = "relu6",
        *,
        rngs: nnx.Rngs,
    ):
        self.in_features = _positive_int(in_features, "ConvBN in_features")
        self.out_features = _positive_int(out_features, "ConvBN out_features")
        self.kernel_size = _positive_int(kernel_size, "ConvBN kernel_size")
        self.stride = _positive_int(stride, "ConvBN stride")
        self.activation = activation
        self.act = _activation(activation, "ConvBN")
        self.conv = nnx.Conv(
            in_features,
            out_features,
            (kernel_size, kernel_size),
            strides=stride,
            padding="SAME",
            use_bias=False,
            rngs=rngs,
        )
        self.bn = nnx.BatchNorm(out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.act(self.bn(self.conv(x)))


@symbolize
class InvertedBottleneck(nnx.Module):
    """MobileNetV2's inverted bottleneck: 1×1 expand, depthwise k×k, 1×1 project.

    Example:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> spec = InvertedBottleneck(8, 8, kernel_size=5, expansion=3, residual=True)
        >>> m = spec.build(rngs=nnx.Rngs(0))
        >>> m.depthwise.kernel.shape, m(jnp.ones((2, 4, 4, 8))).shape
        ((5, 5, 24), (2, 4, 4, 8))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int = 3,
        expansion: int = 6,
        stride: int = 1,
        residual: bool = False,
        *,
        rngs: nnx.Rngs,
    ):
        self.in_features = _positive_int(in_features, "InvertedBottleneck in_features")
        self.out_features = _positive_int(out_features, "InvertedBottleneck out_features")
        self.kernel_size = _positive_int(kernel_size, "InvertedBottleneck kernel_size")
        self.expansion = _positive_int(expansion, "InvertedBottleneck expansion")
        self.stride = _positive_int(stride, "InvertedBottleneck stride")
        if residual and (stride != 1 or in_features != out_features):
            raise ValueError(
                "InvertedBottleneck(residual=True) needs stride 1 and in_features == "
                f"out_features, got stride={stride!r}, in_features={in_features!r}, "
                f"out_features={out_features!r}"
            )
        self.residual = bool(residual)
        hidden = in_features * expansion
        self.expand = nnx.Conv(in_features, hidden, (1, 1), use_bias=False, rngs=rngs)
        self.expand_bn = nnx.BatchNorm(hidden, rngs=rngs)
        self.depthwise = DepthwiseConv(hidden, kernel_size, stride, rngs=rngs)
        self.depthwise_bn = nnx.BatchNorm(hidden, rngs=rngs)
        self.project = nnx.Conv(hidden, out_features, (1, 1), use_bias=False, rngs=rngs)
        self.project_bn = nnx.BatchNorm(out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu6(self.expand_bn(self.expand(x)))
        y = jax.nn.relu6(self.depthwise_bn(self.depthwise(y)))
        y = self.project_bn(self.project(y))
        return x + y if self.residual else y


@symbolize
class Identity(nnx.Module):
    """Returns its input: the "skip" candidate of a depth choice.

    Example:
        >>> Identity().build()(3)
        3
    """

    def __init__(self) -> None:
        pass

    def __call__(self, x: Any) -> Any:
        return x


@symbolize
class MobileNet(nnx.Module):
    """Stem, a list of blocks, a 1×1 head, global average pooling and a linear classifier.

    Example:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> spec = MobileNet(
        ...     stem=ConvBN(1, 8),
        ...     blocks=[InvertedBottleneck(8, 16, stride=2), Identity()],
        ...     head=ConvBN(16, 32, kernel_size=1),
        ...     num_classes=10,
        ... )
        >>> spec.build(rngs=nnx.Rngs(0))(jnp.ones((2, 8, 8, 1))).shape
        (2, 10)
    """

    def __init__(
        self,
        stem: Any,
        blocks: Sequence[Any],
        head: Any,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
    ):
        self.stem = stem
        self.blocks = nnx.List(list(blocks))
        self.head = head
        self.num_classes = _positive_int(num_classes, "MobileNet num_classes")
        self.classifier = nnx.Linear(head.out_features, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        x = self.head(x)
        return self.classifier(x.mean(axis=(1, 2)))


@symbolize
class MLP(nnx.Module):
    """A feed-forward classifier: hidden ``nnx.Linear`` layers with an activation, then a head.

    Example:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> MLP(4, [16, 8], 3).build(rngs=nnx.Rngs(0))(jnp.ones((2, 4))).shape
        (2, 3)
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        activation: str = "relu",
        *,
        rngs: nnx.Rngs,
    ):
        self.in_features = _positive_int(in_features, "MLP in_features")
        self.hidden = tuple(_positive_int(h, f"MLP hidden[{i}]") for i, h in enumerate(hidden))
        self.num_classes = _positive_int(num_classes, "MLP num_classes")
        self.activation = activation
        self.act = _activation(activation, "MLP")
        sizes = [in_features, *self.hidden]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])
        self.classifier = nnx.Linear(sizes[-1], num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = self.act(layer(x))
        return self.classifier(x)


# Doctest does not look inside the symbolized wrappers; run their examples explicitly.
__test__ = {
    sym.__name__: sym.__doc__ or ""
    for sym in (ConvBN, InvertedBottleneck, Identity, MobileNet, MLP)
}
