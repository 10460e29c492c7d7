"""Nodes, symbolized callables and freeze: binding, building, equality, immutability, errors."""

import copy
import enum
import math
import types

import numpy as np
import pytest

import pliant as pl
from pliant.symbolic import CallableSpec, Node, SymDict, SymList, make_node

CALLS: list[tuple] = []


def dense(features, activation="relu", use_bias=True):
    """A plain function; symbolizing it must leave it as it is."""
    CALLS.append(("dense", features))
    return {"features": features, "activation": activation, "use_bias": use_bias}


Dense = pl.symbolize(dense)


class Counter:
    def __init__(self, start, step=1):
        self.start = start
        self.step = step


SymCounter = pl.symbolize(Counter)


@pl.symbolize
def concat(*parts, sep=""):
    return sep.join(parts)


@pl.symbolize
def options(name, **extra):
    return name, extra


@pl.symbolize
def posonly(a, /, b):
    return a - b


@pl.symbolize
def seq(layers, config):
    return layers, config


@pl.symbolize(runtime=("seed",))
def noisy(scale, seed):
    return scale * seed


@pl.symbolize(runtime="seed")
def noisy_one_name(scale, seed):
    return scale + seed


@pl.symbolize
def with_rngs(width, rngs=None):
    return width, rngs


@pl.symbolize
def rngs_first(rngs, width):
    return width, rngs


class Color(enum.Enum):
    RED = 1
    BLUE = 2


def test_calling_a_symbolized_function_runs_nothing():
    CALLS.clear()
    node = Dense(64, activation="gelu")
    assert CALLS == []
    assert isinstance(node, Node)
    assert node.build() == {"features": 64, "activation": "gelu", "use_bias": True}
    assert CALLS == [("dense", 64)]


def test_the_original_function_is_unchanged_and_usable():
    assert Dense.target is dense
    assert Dense.__wrapped__ is dense
    assert Dense.__name__ == "dense"
    assert Dense.__doc__ == dense.__doc__
    assert isinstance(dense, types.FunctionType)
    assert dense(3)["features"] == 3
    assert repr(Dense) == "pl.symbolize(dense)"


def test_symbolizing_a_class():
    node = SymCounter(5, step=2)
    built = node.build()
    assert type(built) is Counter
    assert (built.start, built.step) == (5, 2)
    assert SymCounter.target is Counter and SymCounter.__wrapped__ is Counter
    assert isinstance(Counter(1), Counter)
    assert node.spec.params == ("start", "step")


def test_arguments_are_attributes_and_a_read_only_mapping():
    node = Dense(64, use_bias=False)
    assert node.features == 64
    assert node.use_bias is False
    assert dict(node.args) == {"features": 64, "use_bias": False}
    assert node.fn is dense
    with pytest.raises(TypeError):
        node.args["features"] = 1  # type: ignore[index]


def test_repr_shows_the_given_arguments():
    assert repr(Dense(64)) == "dense(features=64)"
    expected = "seq(layers=[dense(features=1)], config={'a': (1,)})"
    assert repr(seq([Dense(1)], {"a": (1,)})) == expected


def test_containers_are_frozen_and_build_back_to_plain_ones():
    node = seq([1, [2]], {"k": (3, {"x": 4})})
    assert type(node.layers) is SymList and type(node.layers[1]) is SymList
    assert type(node.config) is SymDict and type(node.config["k"]) is tuple
    layers, config = node.build()
    assert layers == [1, [2]] and type(layers) is list and type(layers[1]) is list
    assert config == {"k": (3, {"x": 4})} and type(config) is dict
    assert type(config["k"][1]) is dict


def test_nested_nodes_build_depth_first():
    CALLS.clear()
    node = seq([Dense(1), Dense(2)], {"head": Dense(3)})
    layers, config = node.build()
    assert [c[1] for c in CALLS] == [1, 2, 3]
    assert layers[0]["features"] == 1 and config["head"]["features"] == 3


def test_var_positional_and_var_keyword():
    assert concat("a", "b", sep="-").build() == "a-b"
    assert concat("a", "b").parts == ("a", "b")
    node = options("n", x=1, y=[2])
    assert dict(node.args) == {"name": "n", "x": 1, "y": [2]}
    assert node.build() == ("n", {"x": 1, "y": [2]})


def test_positional_only_arguments_build_positionally():
    node = posonly(5, b=3)
    assert node.args["a"] == 5
    assert node.build() == 2


def test_equality_and_hash_are_structural():
    a, b = seq([Dense(1)], {"k": 1}), seq([Dense(1)], {"k": 1})
    assert a is not b
    assert a == b and hash(a) == hash(b)
    assert a != seq([Dense(2)], {"k": 1})
    assert Dense(1) != SymCounter(1)
    assert Dense(1) != 1 and Dense(1) != {"features": 1}


def test_a_different_callable_with_the_same_name_is_not_equal():
    def dense(features, activation="relu", use_bias=True):
        return None

    assert pl.symbolize(dense)(1) != Dense(1)


def test_keyword_order_does_not_change_equality_or_hash():
    a, b = options("n", x=1, y=2), options("n", y=2, x=1)
    assert a == b
    assert hash(a) == hash(b)


def test_equal_hashes_after_hash_caching():
    a, b = Dense(1), Dense(2)
    hash(a), hash(b)
    assert a != b and a == Dense(1)


def test_symbolize_is_idempotent_and_works_as_decorator():
    assert pl.symbolize(Dense) is Dense
    deco = pl.symbolize(runtime=())
    assert isinstance(deco(dense), pl.Symbolic)
    assert pl.symbolize(dense) == Dense and hash(pl.symbolize(dense)) == hash(Dense)


def test_runtime_arguments_are_not_stored_and_go_to_every_accepting_node():
    node = seq([with_rngs(1), with_rngs(2)], {"n": noisy(3.0)})
    assert "rngs" not in node.layers[0].args
    layers, config = node.build(rngs="R", seed=2)
    assert layers == [(1, "R"), (2, "R")]
    assert config == {"n": 6.0}
    assert noisy_one_name(1).build(seed=2) == 3
    assert noisy(1.0).spec.runtime == frozenset({"seed"})


def test_runtime_default_is_rngs_only_where_accepted():
    assert with_rngs(1).spec.runtime == frozenset({"rngs"})
    assert Dense(1).spec.runtime == frozenset()
    assert with_rngs(1).build() == (1, None)


def test_freeze_numpy_scalars_become_python_numbers():
    frozen = pl.freeze([np.int64(3), np.float32(0.5), np.bool_(True)])
    assert frozen == [3, 0.5, True]
    assert [type(v) for v in frozen] == [int, float, bool]


def test_nan_in_trees_compares_equal_and_hashes_alike():
    a = pl.freeze({"lr": float("nan"), "xs": [np.float64("nan")]})
    b = pl.freeze({"lr": float("nan"), "xs": [float("nan")]})
    assert a == b and hash(a) == hash(b)
    assert math.isnan(a["lr"])
    assert Dense(float("nan")) == Dense(float("nan"))


def test_freeze_keeps_enums_functions_and_classes_by_reference():
    frozen = pl.freeze([Color.RED, dense, Counter, Dense, math.sqrt, np.add])
    assert frozen[0] is Color.RED and frozen[1] is dense and frozen[2] is Counter
    assert frozen[3] is Dense and frozen[4] is math.sqrt and frozen[5] is np.add


def test_freeze_is_idempotent():
    raw = {"a": [1, (2, {"b": None})], "c": Dense(1)}
    once = pl.freeze(raw)
    assert pl.freeze(once) is once
    assert pl.freeze(pl.freeze((1, [2]))) == pl.freeze((1, [2]))


def test_sym_list_and_sym_dict_equality():
    xs = pl.freeze([1, [2]])
    assert xs == [1, [2]] and xs != (1, (2,)) and xs != (1, [2])
    assert xs[:1] == [1] and type(xs[:1]) is SymList
    assert repr(xs) == "[1, [2]]"
    d = pl.freeze({"b": 1, "a": 2})
    assert d == {"a": 2, "b": 1} and d == pl.freeze({"a": 2, "b": 1})
    assert hash(d) == hash(pl.freeze({"a": 2, "b": 1}))
    assert d != [("b", 1)]
    assert d.a == 2
    assert list(d) == ["b", "a"]


@pytest.mark.parametrize("value", [Dense(1), pl.freeze({"a": 1}), noisy], ids=repr)
def test_symbolic_values_are_their_own_copies(value):
    assert copy.copy(value) is value
    assert copy.deepcopy(value) is value


def test_sym_list_copies_are_equal_sym_lists():
    xs = pl.freeze([1, [2]])
    assert copy.deepcopy(xs) == xs and type(copy.deepcopy(xs)) is SymList


# ---------------------------------------------------------------------------------------------
# Immutability


@pytest.mark.parametrize(
    ("value", "name"),
    [(Dense(1), "features"), (Dense(1), "other"), (pl.freeze({"a": 1}), "a")],
    ids=["node-arg", "node-new", "dict"],
)
def test_setattr_raises(value, name):
    with pytest.raises(AttributeError, match=r"symbolic values are immutable; use pl.replace"):
        setattr(value, name, 2)


def test_sym_list_cannot_be_mutated():
    xs = pl.freeze([1, 2])
    with pytest.raises(TypeError, match="does not support item assignment"):
        xs[0] = 3  # type: ignore[index]
    with pytest.raises(AttributeError, match="object has no attribute 'append'"):
        xs.append(3)  # type: ignore[attr-defined]


def test_sym_dict_cannot_be_mutated():
    d = pl.freeze({"a": 1})
    with pytest.raises(TypeError, match="does not support item assignment"):
        d["a"] = 2  # type: ignore[index]


# ---------------------------------------------------------------------------------------------
# Errors


def test_missing_dict_key_attribute_raises():
    with pytest.raises(AttributeError, match=r"symbolic dict has no key 'b'; keys: \['a'\]"):
        pl.freeze({"a": 1}).b  # noqa: B018


def test_missing_node_argument_attribute_raises():
    with pytest.raises(AttributeError, match=r"dense node has no argument 'width'; it holds"):
        Dense(1).width  # noqa: B018


@pytest.mark.parametrize("fn", [min, range, getattr], ids=repr)
def test_unreadable_signature_raises(fn):
    with pytest.raises(TypeError, match=r"cannot symbolize .*: its signature cannot be read"):
        pl.symbolize(fn)


def test_unknown_runtime_name_raises():
    def f(x):
        return x

    with pytest.raises(ValueError, match=r"runtime arguments \['seed'\] are not parameters of f"):
        pl.symbolize(f, runtime=("seed",))


def test_runtime_name_accepted_through_var_keyword():
    def f(x, **kw):
        return x, kw

    assert pl.symbolize(f, runtime=("seed",))(1).build(seed=2) == (1, {"seed": 2})


@pytest.mark.parametrize("not_callable", [3, "dense", [dense]])
def test_symbolize_non_callable_raises(not_callable):
    with pytest.raises(TypeError, match="symbolize\\(\\) takes a function or class, got"):
        pl.symbolize(not_callable)


def test_wrong_argument_name_raises():
    with pytest.raises(TypeError, match=r"dense\(\): got an unexpected keyword argument 'width'"):
        Dense(width=3)


def test_too_many_positional_arguments_raises():
    with pytest.raises(TypeError, match=r"dense\(\): too many positional arguments; the signature"):
        Dense(1, 2, 3, 4)


def test_positional_only_passed_by_keyword_raises():
    with pytest.raises(TypeError, match=r"posonly\(\): .*positional"):
        posonly(a=1, b=2)


@pytest.mark.parametrize(
    ("make", "missing"),
    [(lambda: Dense(), "features"), (lambda: SymCounter(step=1), "start")],
)
def test_missing_required_argument_raises(make, missing):
    with pytest.raises(TypeError, match=rf"missing required argument\(s\) \['{missing}'\]"):
        make()


@pytest.mark.parametrize(
    ("make", "name"),
    [(lambda: with_rngs(1, rngs=3), "rngs"), (lambda: noisy(1.0, seed=3), "seed")],
)
def test_runtime_argument_at_construction_raises(make, name):
    with pytest.raises(TypeError, match=rf"'{name}' is a runtime argument; .*node.build\({name}="):
        make()


@pytest.mark.parametrize(
    ("make", "name"),
    [(lambda: with_rngs(1, 3), "rngs"), (lambda: rngs_first(3, 1), "rngs")],
)
def test_runtime_argument_passed_positionally_raises(make, name):
    with pytest.raises(TypeError, match=rf"'{name}' is a runtime argument and was passed posit"):
        make()


def test_unused_runtime_argument_at_build_raises():
    with pytest.raises(TypeError, match=r"no node in this tree accepts the runtime argument\(s\)"):
        Dense(1).build(rngs=0)


def test_building_a_tree_with_a_placeholder_raises():
    class Hole(Node):
        abstract = True

    hole = make_node(CallableSpec(dense), {"features": 1}, Hole)
    tree = seq([Dense(1), hole], {})
    assert not tree.is_concrete and Dense(1).is_concrete
    with pytest.raises(ValueError, match=r"placeholder sits at path 'layers\[1\]'"):
        tree.build()


@pytest.mark.parametrize(
    ("value", "where"),
    [({1: "a"}, "'layers'"), ({"a": {None: 1}}, "'layers.a'"), ([{(1, 2): 3}], "'layers\\[0\\]'")],
)
def test_non_str_dict_keys_raise(value, where):
    with pytest.raises(TypeError, match=rf"seq\(\): argument {where}: dict keys .* must be str"):
        seq(value, {})


def test_non_str_dict_key_in_freeze_names_the_path():
    with pytest.raises(TypeError, match=r"at path 'a\[0\]': dict keys in a symbolic value must"):
        pl.freeze({"a": [{1: 2}]})


@pytest.mark.parametrize(
    "value",
    [np.zeros(3), np.complex64(1j), object(), {1, 2}, b"bytes", 1j, [1, 2].__iter__()],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_leaf_raises(value):
    with pytest.raises(TypeError, match=r"seq\(\): argument 'layers\[0\]': unsupported value"):
        seq([value], {})
