"""Nested searches: an evaluate that runs pl.search in the same store, and resume at both levels."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import pliant as pl
from pliant.flows.context import inner_seed
from pliant.flows.store import open_store

OUTER = {"scale": pl.oneof([1, 2, 3])}
INNER = {"a": pl.oneof([0, 1, 2, 3]), "b": pl.intv(0, 4)}


def inner_score(scale):
    return lambda v: float(scale * (v["a"] + v["b"]))


def outer_evaluate(hw, trial):
    inner = trial.search(INNER, inner_score(hw["scale"]), pl.algorithms.random(), budget=6)
    return inner.best.reward


def test_nested_search_namespaces_links_and_reads_back(tmp_path):
    path = str(tmp_path / "nested.db")
    result = pl.search(OUTER, outer_evaluate, pl.algorithms.grid(), 3, store=path, study="hw")
    store = open_store(path, readonly=True)
    assert store.studies() == ["hw", "hw/0", "hw/1", "hw/2"]
    assert [r.link for r in result.records] == ["hw/0", "hw/1", "hw/2"]
    assert [r.link for r in pl.load_result(path, "hw").records] == ["hw/0", "hw/1", "hw/2"]
    assert list(result.dataframe()["link"]) == ["hw/0", "hw/1", "hw/2"]
    for record in result.records:
        inner = result.inner(record.id)
        assert inner.study == record.link and len(inner.records) == 6
        assert record.reward == inner.best.reward  # the outer reward is the inner best
        assert all(r.link is None for r in inner.records)
        config = store.study_info(record.link)["config"]
        assert config["seed"] == inner_seed(0, record.id)  # seeds differ per outer trial
    # Each inner study is a study like any other: listed, loaded and resumed on its own.
    before = result.inner(0).records
    more = pl.search(
        INNER,
        inner_score(1),
        pl.algorithms.random(),
        budget=8,
        store=path,
        study="hw/0",
        seed=inner_seed(0, 0),
    )
    assert len(more.records) == 8 and more.records[:6] == before
    # Re-running the finished nested search evaluates nothing.
    calls = []

    def counting(hw, trial):
        calls.append(hw)
        return outer_evaluate(hw, trial)

    again = pl.search(OUTER, counting, pl.algorithms.grid(), 3, store=path, study="hw")
    assert calls == [] and [r.reward for r in again.records] == [r.reward for r in result.records]


def test_inner_searches_of_concurrent_outer_trials_share_the_file(tmp_path):
    """Two outer workers each run an inner search writing to the same SQLite file: one through
    the shared store object, one through its own connection; neither sees 'database is locked'."""
    path = str(tmp_path / "nested.db")

    def evaluate(hw, trial):
        if trial.id % 2:
            inner = trial.search(INNER, inner_score(hw["scale"]), pl.algorithms.random(), 10)
        else:  # by path: a second connection to the same file, from another thread
            inner = pl.search(
                INNER,
                inner_score(hw["scale"]),
                pl.algorithms.random(),
                10,
                store=path,
                study=f"hw/{trial.id}",
            )
        return inner.best.reward

    result = pl.search(
        {"scale": pl.oneof(list(range(1, 7)))},
        evaluate,
        pl.algorithms.grid(),
        6,
        store=path,
        study="hw",
        workers=2,
    )
    assert {r.status for r in result.records} == {"complete"}, [r.error for r in result.records]
    store = open_store(path, readonly=True)
    assert sorted(store.studies()) == sorted(["hw"] + [f"hw/{i}" for i in range(6)])
    for i in range(6):
        assert [r.status for r in store.trials(f"hw/{i}")] == ["complete"] * 10


def test_several_inner_searches_per_trial_and_bad_arguments(tmp_path):
    path = str(tmp_path / "nested.db")

    def evaluate(hw, trial):
        a = trial.search(INNER, inner_score(1), pl.algorithms.random(), 2, name="first")
        b = trial.search(INNER, inner_score(2), pl.algorithms.random(), 2, name="second")
        return a.best.reward + b.best.reward

    result = pl.search(OUTER, evaluate, pl.algorithms.grid(), 1, store=path, study="o")
    assert open_store(path, readonly=True).studies() == ["o", "o/0/first", "o/0/second"]
    assert result.records[0].link == "o/0"
    assert len(result.inner(0, "second").records) == 2
    with pytest.raises(ValueError, match="no trial 5"):
        result.inner(5)

    def bad_store(hw, trial):
        return trial.search(INNER, inner_score(1), budget=1, store=path).best.reward

    failed = pl.search(OUTER, bad_store, pl.algorithms.grid(), 1)
    assert "sets store= itself" in failed.records[0].error

    def bad_name(hw, trial):
        return trial.search(INNER, inner_score(1), budget=1, name="a/b").best.reward

    failed = pl.search(OUTER, bad_name, pl.algorithms.grid(), 1)
    assert "without '/'" in failed.records[0].error
    plain = pl.search(OUTER, lambda hw: 1.0, pl.algorithms.grid(), 1)
    with pytest.raises(ValueError, match="ran no inner search"):
        plain.inner(0)


def test_sample_feedback_runs_a_nested_search(tmp_path):
    path = str(tmp_path / "nested.db")
    for hw, feedback in pl.sample(OUTER, pl.algorithms.grid(), 2, store=path, study="hw"):
        inner = feedback.search(INNER, inner_score(hw["scale"]), pl.algorithms.random(), 3)
        feedback(inner.best.reward)
    outer = pl.load_result(path, "hw")
    assert [r.link for r in outer.records] == ["hw/0", "hw/1"]
    assert [r.reward for r in outer.records] == [outer.inner(i).best.reward for i in (0, 1)]


# -- resume at both levels after SIGKILL -----------------------------------------------------
OUTER_BUDGET, INNER_BUDGET, STALL_OUTER, STALL_INNER = 3, 5, 1, 2

SCRIPT = textwrap.dedent(
    f"""
    import os, sys, time
    import pliant as pl

    OUTER = {{"scale": pl.oneof([1, 2, 3])}}
    INNER = {{"a": pl.oneof([0, 1, 2, 3]), "b": pl.intv(0, 4), "c": pl.floatv(0.0, 1.0)}}


    def main(store, marker=None):
        def outer(hw, trial):
            print(f"outer {{trial.id}} attempt {{trial.attempt}}", flush=True)

            def inner(v):
                t = pl.flows.current_trial()
                if (marker and trial.id == {STALL_OUTER} and t.id == {STALL_INNER}
                        and not os.path.exists(marker)):
                    open(marker, "w").close()
                    time.sleep(60)  # killed here, inside the inner study
                print(f"inner {{trial.id}}/{{t.id}}", flush=True)
                return hw["scale"] * (v["a"] + v["b"]) - v["c"]

            algo = pl.algorithms.regularized_evolution(population_size=3, tournament_size=2)
            return trial.search(INNER, inner, algo, {INNER_BUDGET}).best.reward

        return pl.search(OUTER, outer, pl.algorithms.random(), {OUTER_BUDGET}, store=store,
                         study="hw", seed=5)


    if __name__ == "__main__":
        result = main(sys.argv[1], sys.argv[2])
        print("done", len(result.records), flush=True)
    """
)


def _all_trials(path):
    store = open_store(path, readonly=True)
    try:
        return {
            s: [(r.id, r.dna, r.status, r.reward) for r in store.trials(s)] for s in store.studies()
        }
    finally:
        store.close()


def test_sigkill_inside_an_inner_study_then_resume_both_levels(tmp_path):
    script = tmp_path / "nested.py"
    script.write_text(SCRIPT)
    db, marker = str(tmp_path / "nested.db"), str(tmp_path / "stalled")
    proc = subprocess.Popen(
        [sys.executable, str(script), db, marker],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(marker):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the first run never reached the stall"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        output = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL and "done" not in output

    killed = open_store(db, readonly=True)
    assert [r.status for r in killed.trials("hw")] == ["complete", "running"]
    assert [r.status for r in killed.trials(f"hw/{STALL_OUTER}")] == ["complete"] * 2 + ["running"]
    killed_inner = killed.trials(f"hw/{STALL_OUTER}")
    killed.close()

    again = subprocess.run(
        [sys.executable, str(script), db, marker], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"done {OUTER_BUDGET}" in again.stdout
    lines = again.stdout.splitlines()
    # Only what was missing ran: the interrupted inner trial and the rest of its study, then
    # the last outer trial with its whole inner study. Nothing of outer trial 0 again.
    assert [x for x in lines if x.startswith("outer")] == ["outer 1 attempt 2", "outer 2 attempt 1"]
    inner_calls = [x for x in lines if x.startswith("inner")]
    assert inner_calls == [f"inner 1/{i}" for i in range(STALL_INNER, INNER_BUDGET)] + [
        f"inner 2/{i}" for i in range(INNER_BUDGET)
    ]

    resumed = pl.load_result(db, "hw")
    assert [r.status for r in resumed.records] == ["complete"] * OUTER_BUDGET
    assert [r.attempts for r in resumed.records] == [1, 2, 1]
    inner = pl.load_result(db, f"hw/{STALL_OUTER}")
    assert [r.attempts for r in inner.records] == [1, 1, 2, 1, 1]
    assert inner.records[STALL_INNER].dna == killed_inner[STALL_INNER].dna
    # Identical, study by study, to a run that was never interrupted.
    reference = str(tmp_path / "reference.db")
    runpy.run_path(str(script))["main"](reference)
    assert _all_trials(db) == _all_trials(reference)


def test_nested_store_with_stopped_trials_round_trips_through_json(tmp_path):
    path = str(tmp_path / "nested.db")

    def inner_eval(v, trial):
        for step in range(3):
            trial.report(step, float(v["a"] * (step + 1)))
        return float(v["a"] * 3)

    def outer(hw, trial):
        inner = trial.search(
            INNER, inner_eval, pl.algorithms.grid(), 6, stopping=pl.flows.stop_below({1: 1.0})
        )
        return inner.best.reward

    pl.search(OUTER, outer, pl.algorithms.grid(), 2, store=path, study="hw")
    statuses = {r.status for r in pl.load_result(path, "hw/0").records}
    assert statuses == {"complete", "stopped"}
    copy = open_store(str(tmp_path / "copy.db"))
    copy.import_json(open_store(path, readonly=True).export_json())
    assert copy.studies() == ["hw", "hw/0", "hw/1"]
    for study in copy.studies():
        assert copy.trials(study) == open_store(path, readonly=True).trials(study)
    assert [r.link for r in copy.trials("hw")] == ["hw/0", "hw/1"]


@pytest.mark.slow
def test_nested_hil_example_runs_and_resumes(tmp_path, capsys):
    pytest.importorskip("flax")
    pytest.importorskip("sklearn")
    example = os.path.join(
        os.path.dirname(__file__), "..", "..", "examples", "nested_hil_search.py"
    )
    main = runpy.run_path(example)["main"]
    db = str(tmp_path / "hil.db")
    assert main(["--store", db, "--inner-budget", "1", "--epochs", "1"]) == 0
    first = capsys.readouterr().out
    assert sum(line.startswith("outer ") for line in first.splitlines()) == 6
    assert "best outer trial" in first
    assert open_store(db, readonly=True).studies() == ["hil"] + [f"hil/{i}" for i in range(6)]
    assert main(["--store", db, "--inner-budget", "1", "--epochs", "1"]) == 0
    again = capsys.readouterr().out
    assert not any(line.startswith("outer ") for line in again.splitlines())  # nothing re-run
