# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Interop with PyGlove and Optuna
#
# pliant's algorithms and spaces meet PyGlove's and Optuna's in both directions. The objective
# here is a cheap synthetic one (no training), so every route runs in seconds; swap in a real
# evaluation function as in the quick start. `PLIANT_NOTEBOOK_BUDGET=ci` runs fewer trials.
# The last part, pliant as a Ray Tune searcher, needs Ray (`pip install "pliant[ray]"`) and is
# skipped without it.

# %%
import math
import os

import optuna
import pyglove as pg

import pliant as pl

FULL = os.environ.get("PLIANT_NOTEBOOK_BUDGET", "full") != "ci"
BUDGET = 60 if FULL else 15
optuna.logging.set_verbosity(optuna.logging.WARNING)


def score(width, depth, lr):  # a smooth stand-in for validation accuracy
    return -abs(math.log2(width) - 6) - abs(depth - 3) - abs(math.log10(lr) + 2)


space = {
    "width": pl.oneof([16, 32, 64, 128, 256]),
    "depth": pl.intv(1, 6),
    "lr": pl.floatv(1e-4, 1e-1, scale="log"),
}


def evaluate(c):
    return score(c["width"], c["depth"], c["lr"])


# %% [markdown]
# ## 1. A PyGlove algorithm driving a pliant space
#
# `from_pyglove` wraps any `pg.DNAGenerator`; pliant's loop, store and `Result` stay the same.

# %%
algo = pl.algorithms.from_pyglove(
    lambda: pg.evolution.regularized_evolution(population_size=10, tournament_size=3)
)
r1 = pl.search(space, evaluate, algo, budget=BUDGET, seed=0)
print("PyGlove evolution on a pliant space:", r1.best.decisions, round(r1.best.reward, 3))

# %% [markdown]
# ## 2. A PyGlove search space searched by pliant
#
# `pl.spaces.pyglove_space` converts a PyGlove hyper value (here with `pg.oneof`, `pg.floatv`)
# into a pliant `Space`; any pliant algorithm then searches it and the DNA materializes back
# into PyGlove's value.

# %%
hyper = pg.Dict(
    width=pg.oneof([16, 32, 64, 128, 256]),
    depth=pg.oneof([1, 2, 3, 4, 5, 6]),
    lr=pg.floatv(1e-4, 1e-1),
)
ps = pl.spaces.pyglove_space(hyper)
algo = pl.algorithms.regularized_evolution(population_size=10, tournament_size=3)
state, trials = algo.init(ps.space, 0), []
for _, key in zip(range(BUDGET), pl.algorithms.keys(0)):
    dna, state = algo.propose(state, key)
    value = ps.materialize(dna)
    reward = score(value.width, value.depth, value.lr)
    state = algo.feedback(state, dna, reward)
    trials.append((reward, value))
best = max(trials, key=lambda t: t[0])
print("pliant evolution on a PyGlove space:", best[1].sym_jsonify(), round(best[0], 3))

# %% [markdown]
# ## 3. pliant's regularized evolution as an Optuna sampler
#
# `to_optuna` returns an `optuna.samplers.BaseSampler`; Optuna's own `study.optimize` loop runs
# it, with Optuna's storage, pruners and dashboards.


# %%
def objective(trial):
    width = trial.suggest_categorical("width", [16, 32, 64, 128, 256])
    depth = trial.suggest_int("depth", 1, 6)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    return score(width, depth, lr)


sampler = pl.algorithms.to_optuna(pl.algorithms.regularized_evolution(10, 3), seed=0)
study = optuna.create_study(direction="maximize", sampler=sampler)
study.optimize(objective, n_trials=BUDGET)
print("pliant evolution inside Optuna:", study.best_params, round(study.best_value, 3))

# %% [markdown]
# ## 4. Optuna's TPE driving a pliant space, next to pliant's own algorithms

# %%
rows = {}
for name, algorithm in {
    "random": pl.algorithms.random(),
    "regularized evolution": pl.algorithms.regularized_evolution(10, 3),
    "Optuna TPE (from_optuna)": pl.algorithms.from_optuna(),
    "PyGlove evolution (from_pyglove)": pl.algorithms.from_pyglove(
        lambda: pg.evolution.regularized_evolution(population_size=10, tournament_size=3)
    ),
}.items():
    rows[name] = pl.search(space, evaluate, algorithm, budget=BUDGET, seed=1).best.reward
for name, reward in sorted(rows.items(), key=lambda kv: -kv[1]):
    print(f"{name:>34}: best score {reward:.3f} (0 is the optimum)")

# %% [markdown]
# ## 5. pliant as a Ray Tune searcher
#
# `pliant.flows.tune.PliantSearcher` is a `ray.tune.search.Searcher`: Ray Tune keeps its
# trainables, schedulers and cluster, and a pliant algorithm proposes the configurations from a
# pliant space. Each config holds the decisions under their names (readable in Tune's tables)
# and the materialized example under `'example'`. A local Ray with 2 CPUs takes some seconds
# to start; `reuse_actors=True` keeps one actor per worker instead of one per trial.

# %%
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's classic output: silent at verbose=0
try:
    import ray
    from ray import tune

    from pliant.flows.tune import PliantSearcher
except ImportError as error:
    ray = None
    print(f"skipped: Ray Tune is not installed ({error}); pip install 'pliant[ray]'")

if ray is not None:
    import logging
    import tempfile

    logging.getLogger("ray").setLevel(logging.ERROR)  # Tune's progress lines, not its errors

    def trainable(config):
        tune.report({"score": evaluate(config["example"])})

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    searcher = PliantSearcher(
        space,
        pl.algorithms.regularized_evolution(10, 3),
        metric="score",
        mode="max",
        budget=BUDGET // 3,
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=-1, max_concurrent_trials=2, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), name="pliant", verbose=0),
    )
    results = tuner.fit()
    ray.shutdown()
    best = results.get_best_result(metric="score", mode="max")
    print(f"{len(results)} Tune trials, {len(results.errors)} errors")
    print(
        "pliant evolution inside Ray Tune:", best.config["example"], round(best.metrics["score"], 3)
    )
    print("the searcher's own view of the best:", searcher.best()["decisions"])
