"""What `import pliant` exposes, and what it costs."""

from __future__ import annotations

import subprocess
import sys

import pliant

PUBLIC = {
    "DNA",
    "DecisionHandle",
    "Feedback",
    "KeyPath",
    "Node",
    "Result",
    "Space",
    "SymDict",
    "SymList",
    "Symbolic",
    "Traced",
    "__version__",
    "algorithms",
    "encode",
    "floatv",
    "freeze",
    "from_json",
    "get",
    "intv",
    "iterate",
    "load",
    "load_result",
    "manyof",
    "materialize",
    "oneof",
    "open_store",
    "query",
    "random_dna",
    "random_sample",
    "replace",
    "sample",
    "save",
    "search",
    "space",
    "symbolize",
    "to_json",
    "trace",
    "traverse",
}


def test_public_names_are_pinned():
    assert set(pliant.__all__) == PUBLIC
    for name in pliant.__all__:
        assert hasattr(pliant, name), name


def test_no_public_name_shadows_a_builtin():
    import builtins

    assert not {n for n in pliant.__all__ if hasattr(builtins, n)}


def test_import_is_light():
    heavy = ["jax", "flax", "optax", "pyglove", "optuna", "pandas", "matplotlib", "sklearn"]
    code = f"import sys, pliant; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import pliant imported {out.stdout.strip()}"
