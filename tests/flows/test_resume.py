"""Resume: a search killed with SIGKILL continues where it stopped, as if never interrupted."""

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
from pliant.flows.store import StoreError, open_store
from pliant.flows.study import StudyEngine

BUDGET, STALL_AT = 14, 6

# The searching process. Its evaluate is deterministic; the first run stalls in trial STALL_AT
# (and leaves a marker file) so that the test kills it mid-evaluation, while a later run, which
# finds the marker, goes straight through.
SCRIPT = textwrap.dedent(
    f"""
    import os, sys, time
    import pliant as pl

    BUDGET, STALL_AT = {BUDGET}, {STALL_AT}
    SPACE = {{
        "a": pl.oneof(range(5)),
        "b": pl.oneof(["x", "y", "z"]),
        "c": pl.intv(0, 9),
        "d": pl.floatv(0.0, 1.0),
    }}


    def evaluate(v):
        time.sleep(0.005)
        return v["a"] * 10 + v["c"] + {{"x": 0.0, "y": 0.5, "z": 0.25}}[v["b"]] - v["d"]


    def main(store, marker=None):
        calls = []

        def run_trial(v):
            calls.append(v)
            if marker and len(calls) == STALL_AT + 1 and not os.path.exists(marker):
                open(marker, "w").close()
                time.sleep(60)  # killed here
            reward = evaluate(v)
            print(f"call {{len(calls)}}: reward {{reward:.4f}}", flush=True)
            return reward

        algorithm = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
        return pl.search(SPACE, run_trial, algorithm, BUDGET, store=store, seed=11)


    if __name__ == "__main__":
        result = main(sys.argv[1], sys.argv[2])
        print("done", len(result.records), flush=True)
    """
)


def _complete_count(path):
    """Complete trials in the store, read as another process would (None before it exists)."""
    try:
        return sum(r.status == "complete" for r in pl.load_result(path).records)
    except (FileNotFoundError, KeyError, StoreError):
        return None  # the writer has not created the file, schema or study yet


def _summary(records):
    return [(r.id, r.dna, r.reward, r.status) for r in records]


def test_sigkill_mid_search_then_resume_loses_and_duplicates_nothing(tmp_path):
    script = tmp_path / "run_search.py"
    script.write_text(SCRIPT)
    db, marker = str(tmp_path / "trials.db"), str(tmp_path / "stalled")
    proc = subprocess.Popen(
        [sys.executable, str(script), db, marker],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen, deadline = [], time.monotonic() + 30
        while not (seen and seen[-1] is not None and seen[-1] >= STALL_AT):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, f"no progress: {seen[-5:]}"
            seen.append(_complete_count(db))
            time.sleep(0.02)
        counts = [c for c in seen if c is not None]
        assert counts == sorted(counts), "a reader saw the number of complete trials go down"
        while not os.path.exists(marker):
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        output = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL
    assert "done" not in output and f"call {STALL_AT}:" in output

    # What the killed process left: STALL_AT complete trials and one still marked running.
    killed = open_store(db, readonly=True).trials("default")
    assert [r.status for r in killed] == ["complete"] * STALL_AT + ["running"]
    # The same command again resumes and finishes.
    again = subprocess.run(
        [sys.executable, str(script), db, marker], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"done {BUDGET}" in again.stdout
    # The resumed process evaluated the interrupted trial and the rest, nothing else.
    assert again.stdout.count("call ") == BUDGET - STALL_AT

    resumed = pl.load_result(db)
    assert [r.id for r in resumed.records] == list(range(BUDGET))
    assert {r.status for r in resumed.records} == {"complete"}
    assert [r.attempts for r in resumed.records] == [
        2 if i == STALL_AT else 1 for i in range(BUDGET)
    ]
    assert resumed.records[STALL_AT].dna == killed[STALL_AT].dna  # re-run with the same DNA
    assert resumed.records[STALL_AT].key == killed[STALL_AT].key

    # An uninterrupted run with the same seed: the same trials, rewards and final state.
    module = runpy.run_path(str(script))
    reference_db = str(tmp_path / "reference.db")
    reference = module["main"](reference_db)
    assert _summary(resumed.records) == _summary(reference.records)
    assert [r.metrics["reward"] for r in resumed.records] == [
        r.metrics["reward"] for r in reference.records
    ]
    state = open_store(db, readonly=True).study_info("default")["state"]
    assert state == open_store(reference_db, readonly=True).study_info("default")["state"]
    # The population (size 4) was full when the process died: evolution, not random
    # proposals, continued from the restored state.
    restored = pl.algorithms.state_from_json(
        state,
        pl.algorithms.regularized_evolution(4, 2).init(pl.space(module["SPACE"]), 0),
    )
    assert restored.num_feedback == BUDGET and restored.size == 4


def _interrupt(path, budget_done, space, algorithm, seed=0):
    """Leaves a study with ``budget_done`` complete trials and one running, as a crash would."""
    it = pl.sample(space, algorithm, None, store=path, seed=seed)
    for _ in range(budget_done):
        example, feedback = next(it)
        feedback(float(example["w"]))
    next(it)  # proposed and recorded as running; never finished
    it.close()


SPACE = {"w": pl.oneof([1, 2, 3, 4])}


@pytest.mark.parametrize("policy", ["rerun", "fail"])
def test_search_resumes_interrupted_trials_by_policy(tmp_path, policy):
    path = str(tmp_path / "s.db")
    _interrupt(path, 3, SPACE, pl.algorithms.random())
    first = open_store(path, readonly=True).trials("default")
    assert [r.status for r in first] == ["complete"] * 3 + ["running"]

    calls = []
    result = pl.search(
        SPACE,
        lambda v: calls.append(v) or v["w"],
        pl.algorithms.random(),
        budget=6,
        store=path,
        on_interrupted=policy,
    )
    records = result.records
    assert [r.id for r in records] == list(range(6))
    assert records[3].dna == first[3].dna
    if policy == "rerun":
        assert records[3].status == "complete" and records[3].attempts == 2
        assert len(calls) == 3  # trial 3 again, then trials 4 and 5
    else:
        assert records[3].status == "failed" and "interrupted" in records[3].error
        assert records[3].attempts == 1
        assert len(calls) == 2
    assert pl.load_result(path).records[3].status == records[3].status


def test_finished_study_is_not_rerun_and_budget_counts_in_total(tmp_path):
    path = str(tmp_path / "s.db")
    calls = []
    evaluate = lambda v: calls.append(v) or v["w"]
    first = pl.search(SPACE, evaluate, pl.algorithms.random(), budget=5, store=path)
    assert len(calls) == 5
    again = pl.search(SPACE, evaluate, pl.algorithms.random(), budget=5, store=path)
    assert len(calls) == 5  # nothing re-run
    assert _summary(again.records) == _summary(first.records)
    more = pl.search(SPACE, evaluate, pl.algorithms.random(), budget=8, store=path)
    assert len(calls) == 8 and [r.id for r in more.records] == list(range(8))


def test_sample_resumes_with_the_interrupted_trial_first(tmp_path):
    path = str(tmp_path / "s.db")
    _interrupt(path, 2, SPACE, pl.algorithms.random())
    running = open_store(path, readonly=True).trials("default")[2]
    seen = []
    for example, feedback in pl.sample(SPACE, pl.algorithms.random(), 4, store=path):
        seen.append((feedback.id, feedback.dna.to_list()))
        feedback(float(example["w"]))
    assert seen[0] == (2, running.dna)  # the interrupted trial, same DNA, comes back first
    assert [i for i, _ in seen] == [2, 3]  # num_examples counts the trials done before
    records = pl.load_result(path).records
    assert [r.status for r in records] == ["complete"] * 4
    assert records[2].attempts == 2


def test_resumed_evolution_continues_exactly(tmp_path):
    """In process: stopping after k trials and resuming equals one uninterrupted run."""
    space = {"a": pl.oneof(range(6)), "b": pl.oneof(range(6))}
    evaluate = lambda v: float(v["a"] * 6 + v["b"])
    algo = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
    path = str(tmp_path / "s.db")
    pl.search(space, evaluate, algo, budget=7, store=path, seed=3)
    resumed = pl.search(space, evaluate, algo, budget=20, store=path, seed=3)
    straight = pl.search(space, evaluate, algo, budget=20, seed=3)
    assert _summary(resumed.records) == _summary(straight.records)


def test_interrupted_trials_survive_a_resume_that_did_not_rerun_them(tmp_path):
    """A process that reopened the study (marking its trials interrupted) and then stopped
    before re-running them must not lose them: the next resume still re-runs them."""
    path = str(tmp_path / "s.db")
    _interrupt(path, 2, SPACE, pl.algorithms.random())
    unused = pl.sample(SPACE, pl.algorithms.random(), 5, store=path)  # reopens, marks, stops
    unused.close()
    records = open_store(path, readonly=True).trials("default")
    assert [r.status for r in records] == ["complete", "complete", "interrupted"]
    engine = StudyEngine(SPACE, pl.algorithms.random(), store=path)
    assert engine.interrupted == [2] and engine.num_finished() == 2
    result = pl.search(SPACE, lambda v: v["w"], pl.algorithms.random(), budget=4, store=path)
    assert [(r.status, r.attempts) for r in result.records] == [
        ("complete", 1),
        ("complete", 1),
        ("complete", 2),
        ("complete", 1),
    ]
