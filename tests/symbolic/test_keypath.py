"""Key paths: parsing, printing, and the errors a malformed path raises."""

import pytest

import pliant as pl
from pliant.symbolic.keypath import KeyPath


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("", ()),
        ("a", ("a",)),
        ("blocks[2].conv.features", ("blocks", 2, "conv", "features")),
        ("[0]", (0,)),
        ("[-1].a", (-1, "a")),
        ("[0][1][2]", (0, 1, 2)),
        ("a['my key']", ("a", "my key")),
        ('a["my key"]', ("a", "my key")),
        ("a['0']", ("a", "0")),
        ("['']", ("",)),
        (r"['it\'s']", ("it's",)),
        (r"['back\\slash']", ("back\\slash",)),
        (r"['new\nline']", ("new\nline",)),
        (r"['\x00\u2028\U0001f600']", ("\x00\u2028\U0001f600",)),
        ("_private.__dunder__", ("_private", "__dunder__")),
    ],
)
def test_parse(text, keys):
    assert KeyPath.parse(text) == KeyPath(keys)
    assert tuple(KeyPath.parse(text)) == keys


@pytest.mark.parametrize(
    ("keys", "text"),
    [
        ((), ""),
        (("a", "b"), "a.b"),
        (("a", 0, "b"), "a[0].b"),
        ((0, "a"), "[0].a"),
        ((-3,), "[-3]"),
        (("my key",), "['my key']"),
        (("a", "0"), "a['0']"),
        (("it's",), '["it\'s"]'),
        (("a.b",), "['a.b']"),
        (("[0]",), "['[0]']"),
    ],
)
def test_str(keys, text):
    assert str(KeyPath(keys)) == text


@pytest.mark.parametrize(
    "key",
    [
        "",
        " ",
        "a b",
        "it's",
        'say "hi"',
        "both ' and \"",
        "[0]",
        "a.b",
        "']",
        "\\",
        "\\'",
        "new\nline",
        "tab\there",
        "\r",
        "\x00",
        "\x7f",
        "\u2028",
        "é",
        "日本",
        "\U0001f600",
        "\ud800",
        "0",
        "-1",
    ],
)
def test_weird_keys_round_trip(key):
    path = KeyPath(("root", key, 3, key))
    assert KeyPath.parse(str(path)) == path


def test_child_parent_and_slices():
    p = KeyPath.parse("a.b[1]")
    assert p.child("c") == KeyPath(("a", "b", 1, "c"))
    assert p.parent == KeyPath(("a", "b"))
    assert KeyPath().parent == KeyPath()
    assert isinstance(p[:2], KeyPath)
    assert p[-1] == 1
    assert repr(p) == "KeyPath('a.b[1]')"
    assert KeyPath.parse(p) is p


def test_key_path_is_a_tuple_of_keys():
    assert KeyPath(["a", 1]) == ("a", 1)
    assert hash(KeyPath(["a", 1])) == hash(("a", 1))
    assert pl.KeyPath is KeyPath


@pytest.mark.parametrize("key", [1.5, True, None, ("a",), b"a"])
def test_non_str_int_keys_raise(key):
    with pytest.raises(TypeError, match="a key path holds str and int keys, got"):
        KeyPath(("a", key))


@pytest.mark.parametrize("key", [1.5, False, None])
def test_child_with_a_non_str_int_key_raises(key):
    with pytest.raises(TypeError, match=r"a key path holds str and int keys, got"):
        KeyPath.parse("a").child(key)


@pytest.mark.parametrize("value", [3, None, ["a", 0], ("a",)])
def test_parse_wrong_type_raises(value):
    with pytest.raises(TypeError, match="a key path is a str or KeyPath"):
        KeyPath.parse(value)


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        (".a", 0),
        ("a.", 1),
        ("a..b", 1),
        ("a[", 1),
        ("a[x]", 1),
        ("a b", 1),
        ("a[1.5]", 1),
        ("a['b]", 1),
        ("a.0", 1),
        ("[0", 0),
        ("'a'", 0),
    ],
)
def test_malformed_raises_with_position(text, pos):
    with pytest.raises(ValueError, match=rf"malformed key path .* at character {pos}: expected"):
        KeyPath.parse(text)


@pytest.mark.parametrize(("text", "name"), [("[0]a", "a"), ("a[0]b", "b"), ("a['x']y", "y")])
def test_missing_dot_raises(text, name):
    with pytest.raises(ValueError, match=f"missing '.' before '{name}'"):
        KeyPath.parse(text)
