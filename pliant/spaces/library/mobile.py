"""A MobileNetV2 / ProxylessNAS-style search space over Flax NNX modules (TuNAS §1.1, scaled).

The space is written the way a user would write it: the symbolized modules of
:mod:`pliant.nn.layers` with placeholders in their arguments. Its structure (what the per-op
latency tables and the supernet key on):

- ``MobileNet(stem, blocks, head, num_classes)``, NHWC inputs.
- ``stem``: ``ConvBN(in_features=in_channels, out_features=stem_features, kernel_size=3,
  stride=stem_stride, activation="relu6")``; no choice.
- ``blocks``: for each stage ``s`` given as ``(base_width, num_blocks, stride)``:

  - block 0: ``InvertedBottleneck(in_features=<width of stage s-1, or stem_features>,
    out_features=<width of stage s>, kernel_size=oneof(kernel_sizes),
    expansion=oneof(expansions), stride=stride, residual=False)``;
  - blocks 1..n-1: ``oneof([InvertedBottleneck(in_features=<width s>, out_features=<width s>,
    kernel_size=oneof(...), expansion=oneof(...), stride=1, residual=True), Identity()])``, the
    depth choice (candidate 1 skips the block; the block's decisions are then inactive).

  ``<width of stage s>`` is one decision named ``stage{s}/width`` (shared by every place that
  uses it): ``oneof`` over ``base_width × width_multipliers`` rounded half up to a multiple of
  8 (at least 8), duplicates removed. With one multiplier it is a plain int.
- ``head``: ``ConvBN(in_features=<width of the last stage>, out_features=head_features,
  kernel_size=1, activation="relu6")``, then global average pooling and ``nnx.Linear`` to
  ``num_classes``.

Slot ids follow key paths: ``blocks[3]`` (skip choice), ``blocks[3].candidates[0].kernel_size``,
``blocks[0].expansion``; the widths are listed by name (``stage0/width``).

Example:
    >>> import pliant as pl
    >>> from pliant.spaces.library import mobile_space
    >>> space_value = mobile_space(input_size=8, in_channels=1, num_classes=10)
    >>> [s.name or s.id for s in pl.space(space_value).slots][:4]
    ['stage0/width', 'blocks[0].kernel_size', 'blocks[0].expansion', 'blocks[1]']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pliant.nn import layers
from pliant.spaces.placeholders import oneof

__all__ = ["DEFAULT_STAGES", "mobile_space", "scale_width"]

# The symbolized modules (typed Any: type checkers do not see what a class decorator returns).
ConvBN: Any = layers.ConvBN
Identity: Any = layers.Identity
InvertedBottleneck: Any = layers.InvertedBottleneck
MobileNet: Any = layers.MobileNet

#: Stages ``(base_width, num_blocks, first_stride)`` per input size, scaled down from
#: ProxylessNAS-Mobile (widths 16, 32, 40, 80, 96, 192, 320 in blocks of 1, 4, 4, 4, 4, 4, 1).
DEFAULT_STAGES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "tiny": ((16, 2, 1), (24, 2, 2)),  # 8×8 inputs (digits on a CPU)
    "small": ((16, 1, 1), (24, 2, 2), (40, 2, 2), (80, 2, 2)),  # 32×32 (CIFAR-sized)
    "imagenet": (
        (16, 1, 1),
        (32, 4, 2),
        (40, 4, 2),
        (80, 4, 2),
        (96, 4, 1),
        (192, 4, 2),
        (320, 1, 1),
    ),
}


def scale_width(base: int, multiplier: float, divisor: int = 8) -> int:
    """``base × multiplier`` rounded half up to a multiple of ``divisor`` (at least ``divisor``).

    Example:
        >>> scale_width(40, 0.625), scale_width(16, 0.5)
        (24, 8)
    """
    return max(divisor, int(base * multiplier / divisor + 0.5) * divisor)


def _default_stages(input_size: int) -> tuple[tuple[int, int, int], ...]:
    if input_size <= 16:
        return DEFAULT_STAGES["tiny"]
    if input_size <= 64:
        return DEFAULT_STAGES["small"]
    return DEFAULT_STAGES["imagenet"]


def mobile_space(
    input_size: int = 32,
    in_channels: int = 3,
    num_classes: int = 10,
    *,
    stages: Sequence[tuple[int, int, int]] | None = None,
    kernel_sizes: Sequence[int] = (3, 5, 7),
    expansions: Sequence[int] = (3, 6),
    width_multipliers: Sequence[float] = (0.5, 0.75, 1.0),
    stem_features: int | None = None,
    stem_stride: int | None = None,
    head_features: int | None = None,
) -> Any:
    """A MobileNetV2 / ProxylessNAS-like search space (see the module docstring for its layout).

    Args:
        input_size: input height and width; picks the default ``stages`` (≤16: two stages of
            two blocks; ≤64: four stages; larger: the seven ProxylessNAS stages) and the stem
            stride (1 below 64, else 2).
        in_channels: input channels (1 for digits, 3 for RGB).
        num_classes: classifier outputs.
        stages: ``(base_width, num_blocks, first_stride)`` per stage.
        kernel_sizes: depthwise kernel candidates of every block.
        expansions: expansion ratio candidates (hidden width = input width × ratio).
        width_multipliers: candidates for each stage's output width, relative to its base width.
        stem_features: stem output width (default 16, 8 for inputs ≤ 16).
        stem_stride: stem stride (default from ``input_size``).
        head_features: 1×1 head width (default 4 × the last base width, at most 1280).

    Returns:
        A symbolic ``MobileNet(...)`` value holding placeholders; ``pl.materialize(value, dna)``
        gives a concrete one, and ``.build(rngs=nnx.Rngs(0))`` the NNX model.

    Raises:
        ValueError: for an empty stage list, a stage that is not three positive ints, or empty
            candidate lists.

    Example:
        >>> import pliant as pl
        >>> from flax import nnx
        >>> value = mobile_space(input_size=8, in_channels=1)
        >>> child = pl.materialize(value, pl.random_dna(pl.space(value), 0))
        >>> type(child.build(rngs=nnx.Rngs(0))).__name__
        'MobileNet'
    """
    stages = tuple(_default_stages(input_size) if stages is None else stages)
    if not stages:
        raise ValueError("mobile_space(stages=()): give at least one stage")
    for i, st in enumerate(stages):
        ok = len(tuple(st)) == 3 and all(isinstance(v, int) and v > 0 for v in st)
        if not ok:
            raise ValueError(
                f"mobile_space: stages[{i}] must be (base_width, num_blocks, stride) of "
                f"positive ints, got {st!r}"
            )
    for name, cands in (
        ("kernel_sizes", kernel_sizes),
        ("expansions", expansions),
        ("width_multipliers", width_multipliers),
    ):
        if not cands:
            raise ValueError(f"mobile_space({name}=()): give at least one candidate")
    if stem_features is None:
        stem_features = 8 if input_size <= 16 else 16
    if stem_stride is None:
        stem_stride = 1 if input_size <= 64 else 2
    if head_features is None:
        head_features = min(1280, 4 * stages[-1][0])

    def choice(cands: Sequence[Any], name: str | None = None) -> Any:
        cands = list(dict.fromkeys(cands))
        return cands[0] if len(cands) == 1 else oneof(cands, name=name)

    stem = ConvBN(in_channels, stem_features, kernel_size=3, stride=stem_stride)
    blocks: list[Any] = []
    prev: Any = stem_features
    for s, (base, num_blocks, stride) in enumerate(stages):
        widths = sorted({scale_width(base, m) for m in width_multipliers})
        width = choice(widths, name=f"stage{s}/width")
        for b in range(num_blocks):
            block = InvertedBottleneck(
                in_features=prev if b == 0 else width,
                out_features=width,
                kernel_size=choice(kernel_sizes),
                expansion=choice(expansions),
                stride=stride if b == 0 else 1,
                residual=b > 0,
            )
            blocks.append(block if b == 0 else oneof([block, Identity()]))
        prev = width
    head = ConvBN(prev, head_features, kernel_size=1)
    return MobileNet(stem=stem, blocks=blocks, head=head, num_classes=num_classes)
