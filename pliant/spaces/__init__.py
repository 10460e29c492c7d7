"""Search spaces: placeholders, the DNA layer, materialize/encode, and define-by-run tracing.

See ``pliant/spaces/README.md`` for the invariants.
"""

from pliant.spaces.compiler import (
    CompiledSpace,
    compile_space,
    encode,
    iterate,
    materialize,
    random_sample,
    space,
)
from pliant.spaces.dna import DNA, Group, Slot, Space
from pliant.spaces.placeholders import (
    FloatV,
    IntV,
    ManyOf,
    OneOf,
    Placeholder,
    floatv,
    intv,
    manyof,
    oneof,
)
from pliant.spaces.pyglove import (
    PyGloveSpace,
    from_dna_spec,
    from_pg_dna,
    pyglove_space,
    to_dna_spec,
    to_pg_dna,
)
from pliant.spaces.sampling import iterate_dna, random_dna
from pliant.spaces.tracing import DecisionHandle, Replay, Traced, trace

__all__ = [
    "DNA",
    "CompiledSpace",
    "DecisionHandle",
    "FloatV",
    "Group",
    "IntV",
    "ManyOf",
    "OneOf",
    "Placeholder",
    "PyGloveSpace",
    "Replay",
    "Slot",
    "Space",
    "Traced",
    "compile_space",
    "encode",
    "floatv",
    "from_dna_spec",
    "from_pg_dna",
    "intv",
    "iterate",
    "iterate_dna",
    "manyof",
    "materialize",
    "oneof",
    "pyglove_space",
    "random_dna",
    "random_sample",
    "space",
    "to_dna_spec",
    "to_pg_dna",
    "trace",
]
