"""Staged search: the top-k of one search narrows the space of the next."""

from __future__ import annotations

import pytest

import pliant as pl
from pliant.flows.staging import top_trials

SPACE = {
    "op": pl.oneof(
        [
            {"kind": "conv", "kernel": pl.oneof([1, 3, 5, 7])},
            {"kind": "mlp", "depth": pl.intv(1, 6)},
            "identity",
        ]
    ),
    "width": pl.oneof([8, 16, 32, 64]),
    "lr": pl.floatv(1e-4, 1e-1, scale="log"),
    "layers": pl.manyof(2, ["a", "b", "c", "d"]),
    "act": pl.oneof(["relu", "gelu", "tanh"]),
}


def score(v):
    op = v["op"]
    bonus = 0.0 if op == "identity" else (op.get("kernel", 0) + op.get("depth", 0)) / 7
    return (
        bonus
        + v["width"] / 64
        - abs(v["lr"] - 0.01) * 5
        + ("a" in v["layers"]) * 0.5
        + (v["act"] == "gelu") * 0.3
    )


@pytest.fixture(scope="module")
def stage1():
    return pl.search(SPACE, score, pl.algorithms.random(), 60, seed=3)


def _points(result, k):
    return [pl.materialize(SPACE, result.space.from_list(r.dna)) for r in top_trials(result, k)]


@pytest.mark.parametrize("mode", ["keep_seen", "fix_agreed"])
def test_narrowed_space_holds_every_top_trial_and_is_smaller(stage1, mode):
    narrowed = pl.flows.narrow(SPACE, stage1, top_k=8, mode=mode)
    assert "oneof" in repr(narrowed) or "floatv" in repr(narrowed)  # printable, still a space
    for point in _points(stage1, 8):
        assert pl.materialize(narrowed, pl.encode(narrowed, point)) == point
    assert pl.space(narrowed).size <= pl.space(SPACE).size


def test_keep_seen_keeps_exactly_the_candidates_and_ranges_of_the_top_k(stage1):
    top = _points(stage1, 6)
    narrowed = pl.flows.narrow(SPACE, stage1, top_k=6)
    widths = sorted({p["width"] for p in top})
    width = narrowed["width"]
    assert (list(width.candidates) if len(widths) > 1 else [width]) == widths
    lrs = [p["lr"] for p in top]
    assert (narrowed["lr"].lo, narrowed["lr"].hi) == (min(lrs), max(lrs))
    assert narrowed["lr"].scale == "log"
    picked = sorted({x for p in top for x in p["layers"]})
    assert list(narrowed["layers"].candidates) == picked
    # A branch no top trial took is gone, with the decisions under it.
    ops = {p["op"] if isinstance(p["op"], str) else p["op"]["kind"] for p in top}
    kept = narrowed["op"].candidates if hasattr(narrowed["op"], "candidates") else [narrowed["op"]]
    assert {c if isinstance(c, str) else c["kind"] for c in kept} == ops
    kept_floats = pl.flows.narrow(SPACE, stage1, top_k=6, floats="keep")
    assert kept_floats["lr"] == SPACE["lr"]


def test_fix_agreed_fixes_only_what_the_top_k_agree_on():
    # act is decisive: the top trials all pick gelu; width barely matters.
    space = {"act": pl.oneof(["relu", "gelu", "tanh"]), "width": pl.oneof([1, 2, 3])}
    result = pl.search(
        space,
        lambda v: (v["act"] == "gelu") * 10 + v["width"] * 0.1 * (v["act"] == "gelu"),
        pl.algorithms.grid(),
        9,
    )
    narrowed = pl.flows.narrow(space, result, top_k=3, mode="fix_agreed")
    assert narrowed["act"] == "gelu" and narrowed["width"] == space["width"]
    assert pl.flows.narrow(space, result, top_k=1, mode="fix_agreed") == {"act": "gelu", "width": 3}
    conditional = pl.flows.narrow(
        SPACE, pl.search(SPACE, score, budget=1), top_k=1, mode="fix_agreed"
    )
    assert not pl.space(conditional).slots  # one trial agrees with itself on everything


def test_conditional_decisions_are_judged_where_active():
    space = {"op": pl.oneof([{"k": pl.oneof([3, 5, 7])}, {"d": pl.intv(1, 9)}])}
    # Both branches in the top: conv picks kernel 5 whenever chosen.
    result = pl.search(
        space,
        lambda v: 10.0 if v["op"].get("k") == 5 else v["op"].get("d", 0),
        pl.algorithms.grid(),
        12,
    )
    narrowed = pl.flows.narrow(space, result, top_k=4, mode="fix_agreed")
    assert narrowed["op"].candidates[0] == {"k": 5}  # fixed inside its branch
    assert narrowed["op"].candidates[1] == space["op"].candidates[1]  # d disagrees: kept
    seen = pl.flows.narrow(space, result, top_k=4)
    assert seen["op"].candidates[1]["d"] == pl.intv(7, 9)  # d of the top three: 9, 8, 7


def test_staged_search_runs_on_the_narrowed_space(tmp_path, stage1):
    path = str(tmp_path / "staged.db")
    narrowed = pl.flows.narrow(SPACE, stage1, top_k=10)
    stage2 = pl.search(narrowed, score, pl.algorithms.random(), 20, store=path, study="stage2")
    assert len(stage2.completed) == 20
    for r in stage2.records:  # every stage-2 point is a point of the original space
        value = pl.materialize(narrowed, stage2.space.from_list(r.dna))
        pl.encode(SPACE, value)
    again = pl.flows.narrow(narrowed, pl.load_result(path, "stage2"), top_k=5)  # and again
    assert pl.space(again).size <= pl.space(narrowed).size


def test_narrow_errors(stage1):
    with pytest.raises(ValueError, match="mode must be one of"):
        pl.flows.narrow(SPACE, stage1, mode="keep")
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        pl.flows.narrow(SPACE, stage1, top_k=0)
    with pytest.raises(ValueError, match="floats must be"):
        pl.flows.narrow(SPACE, stage1, floats="min")
    with pytest.raises(ValueError, match="searched another space"):
        pl.flows.narrow({"x": pl.oneof([1, 2])}, stage1)
    failed = pl.search({"x": pl.oneof([1, 2])}, lambda v: 1 / 0, pl.algorithms.grid(), 2)
    with pytest.raises(ValueError, match="no complete trial"):
        pl.flows.narrow({"x": pl.oneof([1, 2])}, failed)

    @pl.trace
    def traced(h):
        return h.oneof("x", [1, 2])

    with pytest.raises(TypeError, match="traced"):
        pl.flows.narrow(traced, stage1)
