"""Ready-made search spaces, written with placeholders the way a user would write them.

Importing this package imports JAX and Flax (the spaces are built from the NNX modules of
:mod:`pliant.nn.layers`); ``import pliant`` does not import it.
"""

from pliant.spaces.library.mlp import mlp_param_cost, mlp_space
from pliant.spaces.library.mobile import mobile_space, scale_width

__all__ = ["mlp_param_cost", "mlp_space", "mobile_space", "scale_width"]
