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

from collections.abc import Sequence
from typing import Any

from pliant.nn import layers
from pliant.spaces.placeholders import oneof

__all__ = ["mlp_space"]

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
