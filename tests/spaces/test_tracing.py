"""Define-by-run: discovering a space from ordinary code and replaying DNA into it."""

from __future__ import annotations

import pytest

import pliant as pl
from pliant.spaces.sampling import iterate_dna


def optimizer_config(h):
    opt = h.oneof("optimizer", ["adam", "sgd", "rmsprop"])
    cfg = {"optimizer": opt, "width": h.oneof("width", [64, 128])}
    if opt == "sgd":
        cfg["momentum"] = h.floatv("momentum", 0.0, 0.99)
        if h.oneof("nesterov", [False, True]):
            cfg["dampening"] = h.intv("dampening", 0, 2)
    elif opt == "adam":
        cfg["b1"] = h.oneof("b1", [0.9, 0.0])
    cfg["layers"] = h.manyof("layers", 2, ["a", "b", "c"], sorted=True)
    cfg["lr"] = h.floatv("lr", 1e-4, 1e-1, scale="log")
    return cfg


def test_discovery_finds_nested_conditions():
    traced = pl.trace(optimizer_config)
    sp = pl.space(traced)
    slots = {s.id: s for s in sp.slots}
    ids = [s.id for s in sp.slots]
    assert set(ids) == {
        "optimizer",
        "width",
        "b1",
        "momentum",
        "nesterov",
        "dampening",
        "layers[0]",
        "layers[1]",
        "lr",
    }
    opt = ids.index("optimizer")
    assert slots["width"].conditions == () and slots["lr"].conditions == ()
    assert slots["momentum"].conditions == ((opt, 1),)
    assert slots["b1"].conditions == ((opt, 0),)
    assert slots["dampening"].conditions == ((ids.index("nesterov"), 1),)
    for i, s in enumerate(sp.slots):  # parents always precede children
        assert all(p < i for p, _ in s.conditions)


def test_replay_runs_the_function_with_the_decisions():
    traced = pl.trace(optimizer_config)
    run = pl.materialize(
        traced,
        {
            "optimizer": "sgd",
            "width": 128,
            "momentum": 0.9,
            "nesterov": True,
            "dampening": 2,
            "layers[0]": "a",
            "layers[1]": "c",
            "lr": 0.01,
        },
    )
    assert run() == {
        "optimizer": "sgd",
        "width": 128,
        "momentum": 0.9,
        "dampening": 2,
        "layers": ["a", "c"],
        "lr": 0.01,
    }
    assert run.decisions["optimizer"] == "sgd"


def test_every_random_dna_replays():
    traced = pl.trace(optimizer_config)
    sp = pl.space(traced)
    for dna in pl.random_dna(sp, 0, 50):
        cfg = pl.materialize(traced, dna)()
        assert cfg["optimizer"] in ("adam", "sgd", "rmsprop")


def test_discovered_space_is_exact_for_finite_functions():
    def finite(h):
        a = h.oneof("a", [0, 1, 2])
        if a == 1:
            h.oneof("b", ["x", "y"])
        if a in (0, 2):
            h.oneof("c", [True, False, None])
        return a

    traced = pl.trace(finite)
    sp = pl.space(traced)
    assert sp.size == 2 + 3 + 3
    assert len(list(iterate_dna(sp))) == sp.size
    slots = {s.id: s for s in sp.slots}
    assert slots["c"].conditions == ((0, 0), (0, 2))
    assert slots["b"].conditions == ((0, 1),)


def test_exploring_flag_lets_expensive_work_be_skipped():
    calls = []

    def train(h):
        width = h.oneof("width", [1, 2, 3])
        if h.exploring:
            return None
        calls.append(width)
        return width * 10

    traced = pl.trace(train)
    assert pl.space(traced).size == 3
    assert calls == []
    assert pl.materialize(traced, {"width": 2})() == 20 and calls == [2]


def test_extra_arguments_are_passed_on_every_run():
    def f(h, scale, *, offset):
        return h.intv("k", 1, 3) * scale + offset

    traced = pl.trace(f, 10, offset=1)
    assert pl.materialize(traced, {"k": 2})() == 21


def test_trace_errors():
    with pytest.raises(TypeError, match="trace\\(\\) takes a function"):
        pl.trace(3)

    def twice(h):
        h.oneof("a", [1, 2])
        h.oneof("a", [1, 3])

    with pytest.raises(ValueError, match="decision 'a' is defined twice differently"):
        pl.space(pl.trace(twice))

    def big(h):
        for i in range(30):
            h.oneof(f"d{i}", list(range(10)))

    with pytest.raises(RuntimeError, match="needed more than max_runs=20 runs"):
        pl.space(pl.trace(big, max_runs=20))

    def bad_name(h):
        h.oneof("", [1])

    with pytest.raises(TypeError, match="needs a non-empty str name"):
        pl.space(pl.trace(bad_name))

    def bad_candidates(h):
        h.oneof("a", [])

    with pytest.raises(ValueError, match="candidates must be a non-empty list"):
        pl.space(pl.trace(bad_candidates))

    def bad_k(h):
        h.manyof("m", 5, [1, 2])

    with pytest.raises(ValueError, match="k must be an int in"):
        pl.space(pl.trace(bad_k))

    def bad_float(h):
        h.floatv("f", 1.0, 0.0)

    with pytest.raises(ValueError, match="need finite lo ≤ hi"):
        pl.space(pl.trace(bad_float))

    def bad_scale(h):
        h.floatv("f", 0.0, 1.0, scale="log")

    with pytest.raises(ValueError, match="scale must be 'linear' or 'log'"):
        pl.space(pl.trace(bad_scale))

    def bad_int(h):
        h.intv("i", 2, 1)

    with pytest.raises(ValueError, match="need int lo ≤ hi"):
        pl.space(pl.trace(bad_int))


def test_replay_rejects_paths_discovery_did_not_see():
    state = {"first": True}

    def moody(h):
        a = h.oneof("a", [1, 2])
        if not state["first"]:
            h.oneof("surprise", [1, 2])
        return a

    traced = pl.trace(moody)
    pl.space(traced)
    state["first"] = False
    with pytest.raises(ValueError, match="decision 'surprise' is not part of the traced space"):
        pl.materialize(traced, {"a": 1})()

    flip = {"ask": False}

    def conditional(h):
        a = h.oneof("a", [1, 2])
        if a == 2 or flip["ask"]:
            h.oneof("b", [1, 2])
        return a

    traced = pl.trace(conditional)
    pl.space(traced)
    flip["ask"] = True
    with pytest.raises(ValueError, match="decision 'b' is inactive in this DNA"):
        pl.materialize(traced, {"a": 1})()
