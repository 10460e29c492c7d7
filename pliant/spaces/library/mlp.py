"""A TabNAS-style MLP search space: the number of hidden layers and the width of each.

Structure: ``MLP(in_features, hidden, num_classes, activation)`` from :mod:`pliant.nn.layers`,
where ``hidden`` is a list of ``oneof(widths)`` decisions, one per layer (slot ids
``hidden[0]``, ``hidden[1]``, ...). With several depths, ``hidden`` is itself
``oneof([[w0], [w0, w1], ...])``: the depth decision is slot ``hidden`` and the widths of
candidate ``d`` (slot ids ``hidden.candidates[d][i]``) are active only when depth candidate
``d`` is chosen. A supernet shares the leading units of layer ``i`` across all depths and widths.

Example:
    >>> import pliant as pl
    >>> from pliant.spaces.library import mlp_space
    >>> pl.space(mlp_space(64, 10, widths=(8, 16), num_layers=2)).size
    4
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pliant.nn import layers
from pliant.spaces.dna import DNA, Space
from pliant.spaces.placeholders import oneof

__all__ = ["mlp_param_cost", "mlp_space"]

# The symbolized module (typed Any: type checkers do not see what a class decorator returns).
MLP: Any = layers.MLP


def mlp_space(
    in_features: int,
    num_classes: int,
    *,
    widths: Sequence[int] = (8, 16, 32, 64, 128),
    num_layers: int | Sequence[int] = 2,
    activation: str = "relu",
) -> Any:
    """An MLP space: ``num_layers`` hidden layers (or a choice of depths), each width a choice.

    Args:
        in_features: input features.
        num_classes: classifier outputs.
        widths: candidate widths of every hidden layer.
        num_layers: the number of hidden layers, or the candidate depths (each ≥ 1).
        activation: a name from ``pliant.nn.layers.ACTIVATIONS``.

    Returns:
        A symbolic ``MLP(...)`` value holding placeholders.

    Raises:
        ValueError: for empty ``widths`` or a depth below 1.

    Example:
        >>> import pliant as pl
        >>> value = mlp_space(64, 10, widths=(8, 16), num_layers=(1, 2))
        >>> pl.space(value).size
        6
    """
    widths = list(dict.fromkeys(widths))
    if not widths:
        raise ValueError("mlp_space(widths=()): give at least one candidate width")
    depths = [num_layers] if isinstance(num_layers, int) else list(dict.fromkeys(num_layers))
    if not depths or any(not isinstance(d, int) or d < 1 for d in depths):
        raise ValueError(f"mlp_space: num_layers must be ints >= 1, got {num_layers!r}")

    def width() -> Any:
        return widths[0] if len(widths) == 1 else oneof(widths)

    lists = [[width() for _ in range(d)] for d in depths]
    hidden = lists[0] if len(lists) == 1 else oneof(lists)
    return MLP(in_features, hidden, num_classes, activation=activation)


def mlp_param_cost(
    space: Space,
    in_features: int,
    num_classes: int,
    *,
    widths: Sequence[int] = (16, 32, 64),
    num_layers: int | Sequence[int] = 2,
) -> Any:
    """The parameter count (weights and biases) of the child a DNA of ``mlp_space`` selects.

    Pass the ``pl.space`` of ``mlp_space(in_features, num_classes, widths=widths,
    num_layers=num_layers)`` and the same arguments. The returned ``cost(dna)`` is written in
    ``jax.numpy``, so it runs inside ``jax.jit`` (a TuNAS or TabNAS cost model) as well as on the
    host.

    Example:
        >>> import pliant as pl
        >>> space = pl.space(mlp_space(64, 10, widths=(8, 16), num_layers=(1, 2)))
        >>> cost = mlp_param_cost(space, 64, 10, widths=(8, 16), num_layers=(1, 2))
        >>> dna = space.from_list([1, None, 1, 0])  # two layers: 16 units, then 8
        >>> int(cost(dna))  # (64 + 1) * 16 + (16 + 1) * 8 + (8 + 1) * 10
        1266
    """
    import jax.numpy as jnp

    widths = list(dict.fromkeys(widths))
    depths = [num_layers] if isinstance(num_layers, int) else list(dict.fromkeys(num_layers))
    ids = {s.id: i for i, s in enumerate(space.slots)}
    units_of = jnp.asarray(widths, jnp.float32)

    def slot(d: int, i: int) -> str:
        return f"hidden[{i}]" if len(depths) == 1 else f"hidden.candidates[{d}][{i}]"

    def cost(dna: DNA) -> Any:
        total = jnp.zeros(dna.index.shape[:-1], jnp.float32)  # one per DNA of a batch
        for d, depth in enumerate(depths):
            units = [
                units_of[0] if len(widths) == 1 else units_of[dna.index[..., ids[slot(d, i)]]]
                for i in range(depth)
            ]
            sizes: list[Any] = [float(in_features), *units, float(num_classes)]
            n = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
            if len(depths) == 1:
                return total + n
            total = total + jnp.where(dna.index[..., ids["hidden"]] == d, n, 0.0)
        return total

    return cost
