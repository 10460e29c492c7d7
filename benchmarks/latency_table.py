"""Per-op latency table vs measured end-to-end latency, on a MobileNetV2-style search space.

The space is ``pliant.spaces.library.mobile_space(input_size, in_channels=3)``: inverted
bottlenecks with kernel {3, 5, 7}, expansion {3, 6} and skip choices, and a searched width per
stage (with the default ``--input-size 32``: four stages, seven blocks, 16 million
architectures). Its table follows TuNAS's cost model: one term per block position, indexed by
the block's own decisions *and* the width decisions of its input and output (the coupled
in-width × out-width × op feature), plus a term for the head (it depends on the last width),
plus a bias.

Two tables are built and compared side by side:

- ``per-op (loop)``: each distinct layer (signature: the concrete block and its input size)
  is timed once with ``pl.nn.measure_op_latency``, which runs it in a loop inside one compiled
  call and takes the slope over two loop counts, so no per-call dispatch overhead enters the
  entries. A skipped block costs 0 (XLA elides an identity). The bias (stem, one call's
  overhead) is calibrated on ``--calibration`` reference architectures, separate from the
  evaluated ones: measured latency minus the sum of their entries (median).
- ``per-op (loop, affine)``: the same entries scaled by one factor, with a bias, both fitted by
  least squares on the calibration architectures (two numbers for the whole table; a layer
  inside a model can run faster or slower than alone, through caches and fusion).
- ``fitted (per decision)``, with ``--fit-archs N``: no per-op timing at all; one cost per
  decision and candidate, fitted by non-negative least squares to the end-to-end latencies of
  ``N`` other sampled architectures (as MobileDets fits its cost models).
- ``per-op (calls)``: the naive table: each layer timed as its own call with
  ``measure_latency``; bias = the stem timed as its own call. Its entries each carry one
  dispatch overhead, so its sum overestimates a model that runs as one call.

Then ``--archs`` architectures are sampled (seeded), each compiled and timed end to end with
``measure_latency``; the table predicts each; the script prints Spearman rho and the mean (and
max) relative error of each table, the ratio of their errors, and checks that the in-jit
prediction on the batch of DNAs equals the host prediction. Weights are random (latency does
not depend on their values); models are built abstractly (``nnx.eval_shape``) and filled on
the host, because eager initialization compiles one XLA program per parameter shape.

Results (``benchmarks/results/latency_table_*.json``; 30 architectures, batch 1, float32,
``--runs 10``; Spearman rho / mean relative error):

| device | per-op (loop) | per-op (calls) | repeat ceiling |
|---|---|---|---|
| H200 GPU, run 1 | 0.51 / 0.25 | 0.37 / 0.97 (3.9x the loop's error) | — |
| H200 GPU, run 2 | 0.19 / 0.37 (affine 0.32) | — | 0.80 / 0.09 |
| 16-core x86 CPU of the H200 host | 0.61 / 0.12 | 0.62 / 0.24 (1.9x) | — |

At batch 1 these models take 0.5–1.9 ms and the spread between architectures is small next to
fixed costs and run-to-run noise (the ceiling row compares two halves of the same runs). On
the GPU the loop-timed entries were ~2.7x the in-model cost (affine scale 0.37): a loop body
launches its kernels one by one, a straight-line model does not; ``--unroll`` times ops
written out instead (not yet measured on a GPU).

Run: ``python benchmarks/latency_table.py [--archs 30] [--batch-size 1] [--dtype float32]
[--input-size 32] [--runs 15] [--json PATH] [--table-out PATH]``. On a GPU, the same command
measures on the GPU (JAX's default device); ``--batch-size`` and ``--dtype bfloat16`` cost other
targets. Latencies are medians over ``--runs`` timed calls; on a loaded machine, compare only
numbers from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import jax
import numpy as np
from flax import nnx

import pliant as pl
from pliant.nn import cost as C
from pliant.nn import latency_table as T
from pliant.spaces.dna import register_pytree
from pliant.spaces.library import mobile_space
from pliant.spaces.placeholders import OneOf


class Tail(nnx.Module):
    """The head of MobileNet as one op: 1×1 ConvBN, global average pooling, classifier."""

    def __init__(self, head: Any, num_classes: int, *, rngs: nnx.Rngs):
        self.head = head
        self.classifier = nnx.Linear(head.out_features, num_classes, rngs=rngs)

    def __call__(self, x: Any) -> Any:
        return self.classifier(self.head(x).mean(axis=(1, 2)))


def fast_build(make: Any, dtype: str, seed: int = 0) -> Any:
    """Builds an NNX module abstractly and fills its state with host random numbers.

    Uniform in [0.5, 1.5] keeps batch-norm variances positive (no NaN) and avoids denormals.
    """
    abstract = nnx.eval_shape(make)
    graphdef, state = nnx.split(abstract)
    rng = np.random.default_rng(seed)

    def fill(leaf: Any) -> Any:
        if np.issubdtype(leaf.dtype, np.floating):
            return jax.numpy.asarray(rng.uniform(0.5, 1.5, leaf.shape), dtype=dtype)
        return jax.numpy.zeros(leaf.shape, leaf.dtype)

    model = nnx.merge(graphdef, jax.tree.map(fill, state))
    model.eval()
    return model


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.value = mobile_space(input_size=args.input_size, in_channels=3, num_classes=10)
        self.space = pl.space(self.value)
        self.num_blocks = len(pl.get(self.value, "blocks"))
        by_name = {s.name: s.id for s in self.space.slots if s.name}
        prefixes = [f"blocks[{i}]" for i in range(self.num_blocks)]
        own = T.terms_by_prefix(self.space, prefixes)
        self.terms: dict[str, tuple[str, ...]] = {}
        for _i, prefix in enumerate(prefixes):
            node = pl.get(self.value, prefix)
            ibn = node.candidates[0] if isinstance(node, OneOf) else node
            widths = []
            for arg in ("in_features", "out_features"):
                w = pl.get(ibn, arg)
                if isinstance(w, OneOf) and by_name[w.name] not in own.get(prefix, ()):
                    widths.append(by_name[w.name])
            slots = tuple(dict.fromkeys([*widths, *own.get(prefix, ())]))
            self.terms[prefix] = slots
        last = pl.get(self.value, "head.in_features")
        if isinstance(last, OneOf):
            self.terms["head"] = (by_name[last.name],)
        self.base = np.asarray(pl.random_dna(self.space, 12345).index)
        self.kw = dict(batch_size=args.batch_size, dtype=args.dtype)
        self.memo: dict[tuple, float] = {}
        self.measured_ops = 0

    # -- structure of a concrete architecture
    def sizes(self, concrete: Any) -> list[int]:
        """Input height/width of each block, and at the head (last entry)."""
        size = -(-self.args.input_size // pl.get(concrete, "stem.stride"))
        out = []
        for i in range(self.num_blocks):
            out.append(size)
            stride = pl.get(concrete, f"blocks[{i}]").args.get("stride", 1)
            size = -(-size // stride)
        out.append(size)
        return out

    def concrete_for(self, choice: dict[str, int | None]) -> Any:
        index = self.base.copy()
        ids = [s.id for s in self.space.slots]
        for sid, k in choice.items():
            index[ids.index(sid)] = 0 if k is None else k
        dna = self.space.make_dna(index)
        return pl.materialize(self.value, dna)

    # -- per-op entries
    def entry(self, term: str, choice: dict[str, int | None], per_call: bool) -> float:
        concrete = self.concrete_for(choice)
        sizes = self.sizes(concrete)
        if term == "head":
            node, size = pl.get(concrete, "head"), sizes[-1]
        else:
            i = int(term[len("blocks[") : -1])
            node, size = pl.get(concrete, term), sizes[i]
            if "in_features" not in node.args:  # the skip candidate: an identity
                return 0.0
        key = (per_call, node, size)
        if key not in self.memo:
            if term == "head":
                make = lambda: Tail(node.build(rngs=nnx.Rngs(0)), 10, rngs=nnx.Rngs(1))
            else:
                make = lambda: node.build(rngs=nnx.Rngs(0))
            model = fast_build(make, self.args.dtype)
            shape = (size, size, pl.get(node, "in_features"))
            if per_call:
                lat = C.measure_latency(model, input_shape=shape, runs=self.args.runs, **self.kw)
            else:
                lat = C.measure_op_latency(
                    model,
                    input_shape=shape,
                    runs=self.args.runs,
                    unroll=self.args.unroll,
                    loops=(1, 5) if self.args.unroll else (1, 11),
                    **self.kw,
                )
            self.memo[key] = lat.median
            self.measured_ops += 1
        return self.memo[key]

    def stem_call(self) -> float:
        stem = pl.get(self.value, "stem")
        model = fast_build(lambda: stem.build(rngs=nnx.Rngs(0)), self.args.dtype)
        shape = (self.args.input_size, self.args.input_size, 3)
        return C.measure_latency(model, input_shape=shape, runs=self.args.runs, **self.kw).median

    def model_latency(self, dna: Any, halves: bool = False) -> Any:
        """Median latency; with ``halves``, also the medians of the two halves of the runs."""
        concrete = pl.materialize(self.value, dna)
        model = fast_build(lambda: concrete.build(rngs=nnx.Rngs(0)), self.args.dtype)
        shape = (self.args.input_size, self.args.input_size, 3)
        runs = 2 * self.args.runs if halves else self.args.runs
        lat = C.measure_latency(model, input_shape=shape, runs=runs, **self.kw)
        if not halves:
            return lat.median
        r = self.args.runs
        return lat.median, float(np.median(lat.times[:r])), float(np.median(lat.times[r:]))

    def table(self, per_call: bool) -> T.LatencyTable:
        return T.measure_table(
            self.space, self.terms, lambda t, c: self.entry(t, c, per_call), unit="s"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=30, help="sampled architectures to time")
    parser.add_argument(
        "--calibration", type=int, default=5, help="architectures for the bias and scale"
    )
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16")
    parser.add_argument("--runs", type=int, default=15, help="timed calls per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-naive", action="store_true", help="skip the per-call table")
    parser.add_argument(
        "--fit-archs", type=int, default=0, help="also fit a table to this many measured models"
    )
    parser.add_argument(
        "--unroll",
        action="store_true",
        help="time ops written out 1 and 5 times instead of in a loop (try on GPUs)",
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--table-out", help="write the per-op (loop) table's JSON here")
    args = parser.parse_args(argv)

    register_pytree()
    bench = Bench(args)
    device = jax.devices()[0]
    print(
        f"device: {device.platform} ({device.device_kind}); batch {args.batch_size}, "
        f"{args.dtype}, input {args.input_size}x{args.input_size}x3; space: "
        f"{bench.space.num_slots} decisions, {bench.space.size:.3g} architectures; "
        f"{len(bench.terms)} terms"
    )
    t0 = time.perf_counter()
    loop_table = bench.table(per_call=False)
    entries = sum(int(np.isfinite(t.costs).sum()) for t in loop_table.terms)
    loop_s = time.perf_counter() - t0
    print(
        f"per-op (loop) table: {entries} entries, {bench.measured_ops} distinct ops timed, {loop_s:.0f} s"
    )

    calib = pl.random_dna(bench.space, args.seed + 1000, n=args.calibration)
    calib_measured = np.asarray([bench.model_latency(d) for d in calib])
    sums = np.asarray(T.predict(loop_table, calib))
    loop_table = loop_table._replace(bias=float(np.median(calib_measured - sums)))
    tables = {"per-op (loop)": loop_table}
    if args.calibration >= 2:
        design = np.stack([np.ones_like(sums), sums], axis=1)
        bias, scale = np.linalg.lstsq(design, calib_measured, rcond=None)[0]
        print(f"affine calibration: scale {scale:.3f}, bias {bias * 1e3:.3f} ms")
        if scale > 0:
            scaled = tuple(t._replace(costs=t.costs * scale) for t in loop_table.terms)
            tables["per-op (loop, affine)"] = loop_table._replace(terms=scaled, bias=float(bias))
        else:
            print("  (scale <= 0: the calibration latencies are too noisy; affine row left out)")
    if not args.no_naive:
        t0 = time.perf_counter()
        naive = bench.table(per_call=True)
        tables["per-op (calls)"] = naive._replace(bias=bench.stem_call())
        print(f"per-op (calls) table: {time.perf_counter() - t0:.0f} s")
    if args.fit_archs:
        # MobileDets-style: a table fitted (non-negative least squares) to whole-model
        # latencies of other sampled architectures; one term per decision (uncoupled), since
        # the coupled table has more entries than a few dozen measurements can fix.
        t0 = time.perf_counter()
        fit_dnas = pl.random_dna(bench.space, args.seed + 2000, n=args.fit_archs)
        fit_y = [bench.model_latency(d) for d in fit_dnas]
        per_slot = {s.id: (s.id,) for s in bench.space.slots}
        tables["fitted (per decision)"] = T.fit_table(bench.space, per_slot, fit_dnas, fit_y)
        print(f"fitted table on {args.fit_archs} architectures: {time.perf_counter() - t0:.0f} s")
    if args.table_out:
        loop_table.save(args.table_out)

    dnas = pl.random_dna(bench.space, args.seed, n=args.archs)
    t0 = time.perf_counter()
    measured, first, second = [], [], []
    for d in dnas:
        m, a, b = bench.model_latency(d, halves=True)
        measured.append(m)
        first.append(a)
        second.append(b)
    repeat = T.prediction_quality(first, second)
    print(f"{args.archs} architectures timed end to end in {time.perf_counter() - t0:.0f} s")

    rows = {}
    for name, table in tables.items():
        try:
            predicted = T.predict(table, dnas)
        except ValueError as e:  # a fitted table never saw some candidate
            print(f"{name}: left out, {e}")
            continue
        q = T.prediction_quality(predicted, measured)
        rows[name] = {
            "quality": q._asdict(),
            "predicted": [float(p) for p in predicted],
            "bias": table.bias,
        }
    jitted = jax.jit(lambda d: T.predict(loop_table, d))(
        bench.space.make_dna(jax.numpy.asarray(np.asarray(dnas.index)))
    )
    host = np.asarray(rows["per-op (loop)"]["predicted"])
    jit_ok = bool(np.allclose(np.asarray(jitted), host, rtol=1e-5))

    print()
    print(
        f"{'table':<22} {'spearman':>9} {'mean rel err':>13} {'max rel err':>12} {'bias (ms)':>10}"
    )
    for name, row in rows.items():
        q = row["quality"]
        print(
            f"{name:<22} {q['spearman']:>9.3f} {q['mean_relative_error']:>13.3f} "
            f"{q['max_relative_error']:>12.3f} {row['bias'] * 1e3:>10.3f}"
        )
    print(
        f"{'repeat (ceiling)':<22} {repeat.spearman:>9.3f} {repeat.mean_relative_error:>13.3f} "
        f"{repeat.max_relative_error:>12.3f}   (first vs second half of each model's runs)"
    )
    if "per-op (calls)" in rows:
        a = rows["per-op (loop)"]["quality"]["mean_relative_error"]
        b = rows["per-op (calls)"]["quality"]["mean_relative_error"]
        print(f"mean relative error, calls / loop: {b / a:.2f}x")
    print(
        f"measured latency: median {np.median(measured) * 1e3:.3f} ms "
        f"(min {min(measured) * 1e3:.3f}, max {max(measured) * 1e3:.3f}); "
        f"in-jit prediction == host: {jit_ok}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "args": vars(args),
                    "device": f"{device.platform} {device.device_kind}",
                    "python": sys.version.split()[0],
                    "jax": jax.__version__,
                    "machine": platform.machine(),
                    "load_average": load,
                    "measured": measured,
                    "decisions": [d.to_dict() for d in dnas],
                    "tables": rows,
                    "jit_equals_host": jit_ok,
                    "repeatability": repeat._asdict(),
                    "calibration_measured": calib_measured.tolist(),
                },
                f,
                indent=1,
                default=str,
            )
    return 0 if jit_ok else 1


if __name__ == "__main__":
    sys.exit(main())
