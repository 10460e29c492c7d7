"""Flax integration: cost of JAX models (latency, XLA cost, per-op tables) and weight sharing.

``import pliant`` does not import this package (it imports JAX and Flax); ``pl.nn`` loads it on
first use.
"""

__all__: list[str] = []
