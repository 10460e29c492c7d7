"""pliant: symbolic AutoML and neural architecture search, native to JAX, Flax and Optax.

Mark choices in ordinary model code with placeholders, and the code becomes a search space that
any search algorithm can explore through the DNA interface.

Importing pliant is cheap: JAX, Flax and the optional extras are imported where they are used.
"""

from pliant import algorithms
from pliant.flows import Feedback, Result, load_result, open_store, sample, search
from pliant.spaces import (
    DNA,
    DecisionHandle,
    Space,
    Traced,
    encode,
    floatv,
    intv,
    iterate,
    manyof,
    materialize,
    oneof,
    random_dna,
    random_sample,
    space,
    trace,
)
from pliant.symbolic import (
    KeyPath,
    Node,
    Symbolic,
    SymDict,
    SymList,
    freeze,
    from_json,
    get,
    load,
    query,
    replace,
    save,
    symbolize,
    to_json,
    traverse,
)

__version__ = "0.1.0.dev0"

__all__ = [
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
]


def __getattr__(name: str) -> object:
    # pl.nn imports JAX and Flax, so it loads on first use, not with pliant.
    if name == "nn":
        import importlib

        module = importlib.import_module("pliant.nn")
        globals()["nn"] = module
        return module
    raise AttributeError(f"module 'pliant' has no attribute {name!r}")
