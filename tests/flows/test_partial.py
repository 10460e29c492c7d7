"""Partial search (PyGlove's where=): the outer loop decides some decisions, yields sub-spaces."""

from __future__ import annotations

import pytest

import pliant as pl
from pliant.spaces.sampling import iterate_dna

FULL = {
    "resolution": pl.oneof([4, 6, 8], hints="hw"),
    "batch": pl.oneof([16, 32], hints=["hw", "train"]),
    "net": {
        "width": pl.oneof([8, 16, 32]),
        "block": pl.oneof(
            [{"kernel": pl.oneof([3, 5])}, {"expand": pl.intv(1, 4, hints="hw")}], hints="arch"
        ),
    },
}


COND = ["net.block.candidates[0].kernel", "net.block.candidates[1].expand"]


def test_tagged_partial_space_has_only_the_selected_decisions():
    outer = pl.flows.partial(FULL, pl.flows.tagged("hw"))
    assert outer.selected == ["resolution", "batch"]
    assert outer.unresolved == ["net.width", "net.block"]  # 'expand' stays under its parent
    assert [s.id for s in outer.space.slots] == ["resolution", "batch"]
    seen = []
    for dna in iterate_dna(outer.space):
        sub = outer.materialize(dna)
        assert sub["resolution"] == dna.to_dict()["resolution"]
        assert [s.id for s in pl.space(sub).slots] == [
            "net.width",
            "net.block",
            "net.block.candidates[0].kernel",
            "net.block.candidates[1].expand",
        ]
        # Any point of the sub-space is a point of the full space.
        point = pl.random_sample(sub, seed=len(seen))
        assert pl.materialize(FULL, pl.encode(FULL, point)) == point
        seen.append((sub["resolution"], sub["batch"]))
    assert sorted(seen) == sorted((r, b) for r in (4, 6, 8) for b in (16, 32))


@pytest.mark.parametrize(
    "where, selected",
    [
        (pl.flows.by_name("net.width"), ["net.width"]),
        (pl.flows.by_path("net.w*", "batch"), ["batch", "net.width"]),
        # '*' matches dots too; a placeholder under an unselected one stays with its parent.
        (pl.flows.by_path("net.*"), ["net.width", "net.block", *COND]),
        (pl.flows.by_path("net.block.candidates[0].*"), []),
        (lambda p: p.args.get("hints") == "arch", ["net.block"]),
        (lambda path, p: str(path) == "batch", ["batch"]),
    ],
)
def test_predicates_by_name_path_hint(where, selected):
    assert pl.flows.partial(FULL, where).selected == selected


def test_selected_decision_under_a_selected_choice_is_conditional():
    outer = pl.flows.partial(FULL, pl.flows.by_path("net.block*"))
    ids = [s.id for s in outer.space.slots]
    assert ids == ["net.block", "net.block.candidates[0].kernel", "net.block.candidates[1].expand"]
    sub = outer.materialize(outer.space.from_list([1, None, 2]))  # intv by index: 1 + 2
    assert sub["net"]["block"] == {"expand": 3}
    assert [s.id for s in pl.space(sub).slots] == ["resolution", "batch", "net.width"]


def test_outer_search_over_sub_spaces_with_an_inner_search(tmp_path):
    path = str(tmp_path / "p.db")

    def score(v):
        block = v["net"]["block"]
        return v["net"]["width"] / v["resolution"] + block.get("kernel", 0) + block.get("expand", 0)

    def outer(sub_space, trial):
        assert pl.space(sub_space).slots  # a sub-space, not a concrete value
        return trial.search(sub_space, score, pl.algorithms.random(), budget=8).best.reward

    result = pl.search(
        FULL, outer, pl.algorithms.grid(), 6, store=path, study="hw", where=pl.flows.tagged("hw")
    )
    assert {r.status for r in result.records} == {"complete"}
    assert set(result.records[0].decisions) == {"resolution", "batch"}
    best_sub = result.best_value()
    assert best_sub["resolution"] == result.best.decisions["resolution"]
    assert len(pl.space(best_sub).slots) == 4
    assert [r.link for r in result.records] == [f"hw/{i}" for i in range(6)]
    # pl.sample takes where= too.
    for sub, feedback in pl.sample(FULL, pl.algorithms.grid(), 2, where=pl.flows.tagged("hw")):
        assert "net.width" in [s.id for s in pl.space(sub).slots]
        feedback(1.0)


def test_partial_errors():
    with pytest.raises(TypeError, match="where must be a predicate"):
        pl.flows.partial(FULL, "hw")
    shared = {"a": pl.oneof([1, 2], name="k", hints="hw"), "b": [pl.oneof([1, 2], name="k")]}
    with pytest.raises(ValueError, match=r"shared decision\(s\) \['k'\]"):
        pl.flows.partial(shared, lambda path, p: str(path) == "a")
    assert pl.flows.partial(shared, pl.flows.by_name("k")).selected == ["a", "b[0]"]
    outer = pl.flows.partial(FULL, pl.flows.tagged("hw"))
    with pytest.raises(ValueError, match=r"already a pl\.flows\.partial"):
        pl.search(outer, lambda v: 1.0, budget=1, where=pl.flows.tagged("hw"))
    with pytest.raises(TypeError, match="takes a symbolic space value"):
        pl.flows.partial(outer, pl.flows.tagged("hw"))

    @pl.trace
    def traced(h):
        return h.oneof("x", [1, 2])

    with pytest.raises(TypeError, match="define-by-run"):
        pl.flows.partial(traced, pl.flows.tagged("hw"))
    with pytest.raises(TypeError, match="cannot be built"):
        outer.masked["net"]["width"].build()
