"""The benchmarks' JSON bookkeeping: a run with --merge keeps the stored rows of the cases
it did not measure (solvers_more.py's checkpoints overwrote the stored file before the
merge read it, so a "logistic,School" run lost every memory row of the README's table)."""

import json
import os
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(BENCH)
    monkeypatch.setenv("MTLCLASSIC_RESULTS", str(tmp_path))
    for name in ("solvers_more", "solvers", "_common"):
        sys.modules.pop(name, None)
    import solvers_more

    yield solvers_more, tmp_path
    for name in ("solvers_more", "solvers", "_common"):
        sys.modules.pop(name, None)


def _stored():
    return {"results": [{"case": "School", "setting": "old"},
                        {"case": "logistic", "setting": "old"}],
            "memory": [{"case": "tall (T = 10)", "solver": "mtlclassic (auto)",
                        "peak_bytes": 1, "x_bytes": 1}]}


def test_merge_keeps_the_rows_of_cases_not_run(bench, monkeypatch):
    sm, out = bench
    with open(out / "solvers_more.json", "w") as f:
        json.dump(_stored(), f)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 4)), (rng.random((20, 2)) > 0.5).astype(float)
    monkeypatch.setattr(sm, "load_case", lambda name, quick, home: (X, Y))

    def fake_bench_case(name, X, Y, setting, alphas, threads, repeat, labels, **kw):
        return ({"case": name, "n": len(X), "d": X.shape[1], "T": Y.shape[1],
                 "setting": setting, "time_to_target": {}, "tol_used": {}}, {})

    monkeypatch.setattr(sm.base, "bench_case", fake_bench_case)
    assert sm.main(["--cases", "logistic", "--merge"]) == 0
    with open(out / "solvers_more.json") as f:
        got = json.load(f)
    assert got["complete"] is True
    # the memory rows and School's results were not measured: kept; logistic's replaced
    assert got["memory"] == _stored()["memory"]
    assert [r["case"] for r in got["results"]].count("School") == 1
    assert {r["setting"] for r in got["results"] if r["case"] == "logistic"} == {
        "sparse (0.1 a_max)", "dense (0.01 a_max)"}

    # without --merge the file holds this run's rows only
    assert sm.main(["--cases", "logistic"]) == 0
    with open(out / "solvers_more.json") as f:
        got = json.load(f)
    assert got["memory"] == [] and {r["case"] for r in got["results"]} == {"logistic"}


def test_read_json_reads_where_write_json_writes(bench):
    sm, out = bench
    import _common

    assert _common.read_json("none.json") is None
    path = _common.write_json("x.json", {"a": 1})
    assert os.path.dirname(path) == str(out)
    assert _common.read_json("x.json") == {"a": 1}
