"""JSON round trips, the file format, and loading that never imports or runs what it must not."""

import enum
import json
import math
import os
import sys

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

import pliant as pl
from pliant.symbolic import CallableSpec, KeyPath, Node, make_node
from pliant.symbolic.serialization import _Decoder


@pl.symbolize
def conv(features, kernel=3, act="relu"):
    return ("conv", features, kernel, act)


@pl.symbolize
def stack(*layers, **extra):
    return layers, extra


@pl.symbolize(runtime=("seed",))
def noisy(scale, seed):
    return scale * seed


@pl.symbolize
def with_rngs(width, rngs=None):
    return width


class Color(enum.Enum):
    RED = 1
    GREEN = 2


def relu_like(x):
    return x


def renamed(x):
    return x


renamed.__qualname__ = "not_here"


def positive(x):
    """A pliant-style factory: loading rebuilds its nodes through it, so it checks them."""
    if x <= 0:
        raise ValueError(f"x must be positive, got {x}")
    return make_node(_POSITIVE, {"x": x})


positive.__pliant_node_class__ = Node  # type: ignore[attr-defined]
_POSITIVE = CallableSpec(positive)


def doc(value):
    return json.dumps({"__pliant__": 1, "value": value})


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        -0.0,
        "text",
        "",
        [],
        {},
        (),
        [1, [2, (3, {"a": None})]],
        (1,),
        {"__x": 1, "__call__": [2], "plain": 3},
        {"inf": math.inf, "-inf": -math.inf},
        conv(16, act="gelu"),
        stack(conv(1), conv(2), drop=0.5, name="s"),
        {"net": [conv(1), (conv(2), {"k": conv(3)})]},
    ],
    ids=repr,
)
def test_round_trip(value):
    frozen = pl.freeze(value)
    back = pl.from_json(pl.to_json(value))
    assert back == frozen and frozen == back
    assert type(back) is type(frozen)
    if isinstance(frozen, Node | pl.SymList | pl.SymDict | tuple):
        assert hash(back) == hash(frozen)
    assert pl.to_json(back) == pl.to_json(value)


def test_round_trip_keeps_tuples_lists_and_the_sign_of_zero():
    back = pl.from_json(pl.to_json({"t": (1, [2]), "z": -0.0}))
    assert type(back["t"]) is tuple and type(back["t"][1]) is pl.SymList
    assert math.copysign(1.0, back["z"]) == -1.0


def test_nan_round_trips_to_an_equal_tree():
    value = pl.freeze({"lr": float("nan"), "xs": [float("nan")]})
    back = pl.from_json(pl.to_json(value))
    assert back == value and hash(back) == hash(value)
    assert math.isnan(back["lr"])


def test_format():
    assert pl.to_json(conv(1)) == (
        '{"__pliant__": 1, "value": {"__call__": "test_serialization:conv", '
        '"args": {"features": 1}}}'
    ).replace("test_serialization", conv.__module__)
    assert pl.to_json([math.nan, math.inf, (1,), {"__a": 1}]) == doc(
        [{"__float__": "nan"}, {"__float__": "inf"}, {"__tuple__": [1]}, {"__dict__": {"__a": 1}}]
    )
    assert "\n" in pl.to_json([1], indent=2)


def test_references_enums_and_symbolized_callables_round_trip():
    value = pl.freeze([Color.GREEN, relu_like, conv, jax.nn.relu, optax.adam, nn.Dense])
    back = pl.from_json(pl.to_json(value), allowed=[Color, relu_like])
    assert back == value
    assert back[0] is Color.GREEN and back[1] is relu_like and back[3] is jax.nn.relu
    assert isinstance(back[2], pl.Symbolic) and back[2].target is conv.target
    assert back[4] is optax.adam and back[5] is nn.Dense


def test_loading_a_symbolized_reference_keeps_the_runtime_names():
    pl.from_json(pl.to_json([noisy]))
    assert pl.from_json(pl.to_json(noisy(2.0))).build(seed=3) == 6.0
    assert pl.from_json(pl.to_json([noisy]))[0](2.0).build(seed=3) == 6.0


@pytest.mark.parametrize(
    "allowed",
    [
        lambda m: [relu_like],
        lambda m: [m],
        lambda m: f"{m}:relu_like",
        lambda m: [f"{m}:relu_like"],
        lambda m: m.split(".")[0],
    ],
    ids=["object", "module", "path", "paths", "package"],
)
def test_allowed_by_object_by_module_or_by_exact_path(allowed):
    text = pl.to_json([relu_like])
    assert pl.from_json(text, allowed=allowed(relu_like.__module__)) == [relu_like]


def test_safe_modules_load_references_without_allowed():
    assert pl.from_json(doc({"__ref__": "optax._src.alias:sgd"})) is optax.sgd
    assert pl.from_json(doc({"__ref__": "flax.linen:relu"})) is jax.nn.relu


def test_bytes_input():
    assert pl.from_json(pl.to_json([1]).encode()) == [1]


def test_save_and_load(tmp_path):
    path = tmp_path / "net.json"
    value = {"net": conv(3), "lr": math.nan}
    pl.save(value, path)
    assert pl.load(path) == pl.freeze(value)
    pl.save([1], str(path))
    assert pl.load(str(path)) == [1]
    assert os.listdir(tmp_path) == ["net.json"]


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "v.json"
    pl.save([1], path)
    with pytest.raises(TypeError, match="unsupported value"):
        pl.save([np.zeros(2)], path)
    assert pl.load(path) == [1]
    assert os.listdir(tmp_path) == ["v.json"]


def test_load_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        pl.load(tmp_path / "missing.json")


def test_load_error_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(ValueError, match=r"bad.json: malformed JSON"):
        pl.load(path)


# ---------------------------------------------------------------------------------------------
# to_json errors


def test_unsupported_leaf_raises_at_freeze():
    with pytest.raises(TypeError, match=r"at path 'a\[0\]': unsupported value"):
        pl.to_json({"a": [np.arange(3)]})


def test_unencodable_value_in_an_unchecked_node_raises():
    node = make_node(CallableSpec(conv.target), {"features": np.arange(2)})
    with pytest.raises(TypeError, match=r"value at path 'x.features' of type ndarray cannot be"):
        pl.to_json({"x": node})


def local_factory():
    def local(x):
        return x

    return local


@pytest.mark.parametrize("fn", [lambda x: x, local_factory()], ids=["lambda", "local function"])
def test_lambda_or_local_function_raises(fn):
    with pytest.raises(TypeError, match=r"callable at path 'act\[1\]' .* is a lambda or a local"):
        pl.to_json({"act": [1, fn]})


def test_local_symbolized_function_raises():
    @pl.symbolize
    def local(x):
        return x

    with pytest.raises(TypeError, match=r"callable at path '' .*local.* is a lambda or a local"):
        pl.to_json(local(1))


def test_unreachable_callable_raises():
    with pytest.raises(TypeError, match=r"callable at path '\[0\]' is not reachable as '.*:not_"):
        pl.to_json([renamed])


# ---------------------------------------------------------------------------------------------
# from_json errors


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{'a': 1}", '{"__pliant__": 1, "value": 1'])
def test_malformed_json_raises(text):
    with pytest.raises(ValueError, match="malformed JSON: "):
        pl.from_json(text)


def test_json_nested_too_deeply_for_the_parser_raises():
    with pytest.raises(ValueError, match="malformed JSON: nested too deeply"):
        pl.from_json('{"__pliant__": 1, "value": ' + "[" * 100_000 + "]" * 100_000 + "}")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_raise(constant):
    with pytest.raises(ValueError, match=rf"malformed JSON: {constant} is not valid JSON"):
        pl.from_json(f'{{"__pliant__": 1, "value": [{constant}]}}')


@pytest.mark.parametrize("text", ["[1]", "1", '{"value": 1}', '{"__pliant__": 1}', "null", '"a"'])
def test_not_a_pliant_document_raises(text):
    with pytest.raises(ValueError, match=r"not a pliant symbolic value: expected an object"):
        pl.from_json(text)


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_unsupported_version_raises(version):
    text = json.dumps({"__pliant__": version, "value": 1})
    with pytest.raises(ValueError, match=rf"unsupported format version {version!r}; this pliant"):
        pl.from_json(text)


@pytest.mark.parametrize("depth", [202, 400, 900])
def test_too_deep_nesting_raises(depth):
    with pytest.raises(ValueError, match=r"at path '(\[0\])+': nested deeper than 200 levels"):
        pl.from_json(doc(json.loads("[" * depth + "]" * depth)))


@pytest.mark.parametrize("wrap", [lambda v: [v], lambda v: {"k": v}, lambda v: {"__tuple__": [v]}])
def test_deepest_allowed_nesting_loads(wrap):
    value = 1
    for _ in range(200):
        value = wrap(value)
    assert pl.from_json(doc(value)) is not None


def test_nesting_too_deep_for_the_stack_raises():
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    text = '{"__pliant__": 1, "value": ' + "[" * 150 + "]" * 150 + "}"
    limit = sys.getrecursionlimit()
    # Room for json's parser (a frame per level) but not for the decoder (two per level).
    sys.setrecursionlimit(depth + 220)
    try:
        with pytest.raises(ValueError, match=r"nested too deeply for the Python stack"):
            pl.from_json(text)
    finally:
        sys.setrecursionlimit(limit)


def test_a_value_json_cannot_hold_raises_in_the_decoder():
    # json.loads makes no other types; the decoder still refuses them rather than pass them on.
    with pytest.raises(ValueError, match=r"at path 'a': unexpected JSON value"):
        _Decoder(()).decode(object(), KeyPath(("a",)), 0)


@pytest.mark.parametrize(
    "value",
    [
        {"__foo__": 1},
        {"__tuple__": 1},
        {"__tuple__": [], "x": 1},
        {"__dict__": []},
        {"__float__": "zero"},
        {"__float__": "nan", "x": 1},
        {"__ref__": 3},
        {"__enum__": 3},
        {"a": 1, "__b": 2},
    ],
    ids=json.dumps,
)
def test_unknown_or_malformed_marker_raises(value):
    with pytest.raises(ValueError, match=r"at path '\[0\]': malformed or unknown marker in"):
        pl.from_json(doc([value]))


@pytest.mark.parametrize(
    "value",
    [
        {"__enum__": "PLACEHOLDER:Color", "name": "BLUE"},
        {"__enum__": "PLACEHOLDER:Color", "name": ["RED"]},
        {"__enum__": "PLACEHOLDER:Color"},
        {"__enum__": "PLACEHOLDER:relu_like", "name": "RED"},
    ],
)
def test_not_an_enum_member_raises(value):
    value["__enum__"] = value["__enum__"].replace("PLACEHOLDER", Color.__module__)
    with pytest.raises(ValueError, match=r"at path '': .* is not a member of an enum"):
        pl.from_json(doc(value), allowed=[Color, relu_like])


@pytest.mark.parametrize(
    "value",
    [
        {"__call__": 3},
        {"__call__": "PLACEHOLDER:conv", "args": [1]},
        {"__call__": "PLACEHOLDER:conv", "args": {"features": 1}, "extra": 1},
    ],
)
def test_malformed_node_raises(value):
    if isinstance(value["__call__"], str):
        value["__call__"] = value["__call__"].replace("PLACEHOLDER", conv.__module__)
    with pytest.raises(ValueError, match=r"at path 'n': malformed node"):
        pl.from_json(doc({"n": value}))


@pytest.mark.parametrize(
    ("fn", "args", "message"),
    [
        (conv, {"features": 1, "width": 2}, r"path 'n.width': conv has no argument 'width'"),
        (with_rngs, {"width": 1, "rngs": 0}, r"path 'n.rngs': 'rngs' is a runtime argument"),
        (noisy, {"scale": 1, "seed": 0}, r"path 'n.seed': 'seed' is a runtime argument"),
        (conv, {"kernel": 1}, r"at path 'n': conv misses required \['features'\]"),
    ],
)
def test_wrong_node_arguments_raise(fn, args, message):
    path = f"{fn.__module__}:{fn.__name__}"
    with pytest.raises(ValueError, match=message):
        pl.from_json(doc({"n": {"__call__": path, "args": args}}))


def test_var_keyword_node_accepts_any_argument_name():
    path = f"{stack.__module__}:stack"
    back = pl.from_json(doc({"__call__": path, "args": {"layers": {"__tuple__": [1]}, "z": 2}}))
    assert back == stack(1, z=2)


def test_factory_nodes_are_rebuilt_through_the_factory():
    path = f"{positive.__module__}:positive"
    assert pl.from_json(doc({"__call__": path, "args": {"x": 2}}), allowed=[positive]).x == 2
    with pytest.raises(ValueError, match=r"at path '\[0\]': x must be positive, got -1"):
        pl.from_json(doc([{"__call__": path, "args": {"x": -1}}]), allowed=[positive])


@pytest.mark.parametrize("path", ["no_colon", ":conv", "module:", ""])
def test_malformed_import_path_raises(path):
    with pytest.raises(ValueError, match=rf"at path '': malformed import path '{path}'"):
        pl.from_json(doc({"__ref__": path}))


def test_unimportable_module_raises():
    with pytest.raises(ValueError, match=r"cannot import 'no_such_pkg_pliant_test'"):
        pl.from_json(
            doc({"__ref__": "no_such_pkg_pliant_test:f"}), allowed=["no_such_pkg_pliant_test"]
        )
    with pytest.raises(ValueError, match=r"cannot import 'pliant.no_such_module'"):
        pl.from_json(doc({"__ref__": "pliant.no_such_module:f"}))


@pytest.mark.parametrize("path", ["optax:no_such_name", "jax.nn:relu.nope", "pliant:nothing"])
def test_missing_attribute_raises(path):
    module, _, name = path.partition(":")
    with pytest.raises(ValueError, match=rf"'{module}' has no attribute '{name}'"):
        pl.from_json(doc({"__ref__": path}))


@pytest.mark.parametrize(
    "value",
    [
        {"__call__": "os:system", "args": {"command": "true"}},
        {"__ref__": "os:system"},
        {"__ref__": "builtins:eval"},
        {"__call__": "optax:adam", "args": {"learning_rate": 0.1}},
        {"__call__": "jax.nn:relu", "args": {"x": 1}},
        {"__enum__": "signal:Signals", "name": "SIGKILL"},
    ],
    ids=json.dumps,
)
def test_not_allowed_callable_raises(value):
    with pytest.raises(ValueError, match=r"at path 'x': '.*' is not allowed to load .* allowed="):
        pl.from_json(doc({"x": value}))


@pytest.mark.parametrize(
    "path",
    [
        "flax.nnx.reprlib:os.system",
        "flax.nnx.filterlib:builtins.eval",
        "flax.linen.module:sys.exit",
    ],
)
def test_references_through_a_trusted_module_into_an_untrusted_one_raise(path):
    import flax.linen.module
    import flax.nnx.filterlib
    import flax.nnx.reprlib  # noqa: F401

    with pytest.raises(ValueError, match=rf"'{path}' is '.*', which is not allowed to load"):
        pl.from_json(doc({"__ref__": path}))


@pytest.mark.parametrize(
    "path",
    ["pliant.symbolic.serialization:save", "pliant:load", "pliant.symbolic.node:symbolize"],
)
def test_pliant_functions_that_are_not_symbolic_cannot_be_nodes(path):
    with pytest.raises(ValueError, match=rf"'{path}' is not a symbolic callable of pliant"):
        pl.from_json(doc({"__call__": path, "args": {"value": 1, "path": "/tmp/x.json"}}))


SENTINEL_MODULE = """
import pathlib
pathlib.Path({path!r}).write_text("imported")

def boom(**kwargs):
    pathlib.Path({path!r}).write_text("called")

class Kind:
    A = 1
"""


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    """A module on sys.path that writes a file when imported or called."""
    marker = tmp_path / "sentinel.txt"
    name = "pliant_test_sentinel_module"
    (tmp_path / f"{name}.py").write_text(SENTINEL_MODULE.format(path=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name, marker
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "value",
    [
        {"__call__": "{m}:boom", "args": {}},
        {"__ref__": "{m}:boom"},
        {"__ref__": "{m}:boom", "symbolic": True},
        {"__enum__": "{m}:Kind", "name": "A"},
        {"ok": [1, {"__call__": "{m}:boom", "args": {"x": {"__call__": "os:system"}}}]},
    ],
    ids=["node", "ref", "symbolic-ref", "enum", "nested"],
)
def test_loading_imports_and_runs_nothing_not_allowed(sentinel, value):
    name, marker = sentinel
    text = doc(value).replace("{m}", name)
    with pytest.raises(ValueError, match=rf"'{name}:(boom|Kind)' is not allowed to load"):
        pl.from_json(text)
    assert name not in sys.modules
    assert not marker.exists()


def test_the_sentinel_module_does_write_its_file_when_allowed(sentinel):
    name, marker = sentinel
    loaded = pl.from_json(doc({"__ref__": f"{name}:boom"}), allowed=[name])
    assert marker.read_text() == "imported"
    loaded()
    assert marker.read_text() == "called"


def test_loading_a_node_of_an_allowed_module_does_not_call_it(sentinel):
    name, marker = sentinel
    node = pl.from_json(doc({"__call__": f"{name}:boom", "args": {"a": 1}}), allowed=[name])
    assert marker.read_text() == "imported"
    assert isinstance(node, Node) and node.a == 1
    node.build()
    assert marker.read_text() == "called"
