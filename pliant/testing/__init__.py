"""Test helpers for pliant and for code built on it.

Nothing is imported here: `pliant.testing.strategies` needs hypothesis, which only tests need.
"""
