"""Time of `import pliant` in a fresh interpreter, side by side with PyGlove and Optuna.

    python benchmarks/import_time.py [--repeats 7] [--json out.json]

Each measurement is a new `python -c "import X"` process; the table shows the median wall time
of the import statement itself (measured inside the process with perf_counter), and whether
the import pulled in JAX. The goal for pliant is under 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CODE = (
    "import time, sys; t = time.perf_counter(); import {mod}; "
    "print(time.perf_counter() - t, 'jax' in sys.modules)"
)


def measure(mod: str, repeats: int) -> tuple[float, bool]:
    times, jax_loaded = [], False
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", CODE.format(mod=mod)], capture_output=True, text=True, check=True
        ).stdout.split()
        times.append(float(out[0]))
        jax_loaded = out[1] == "True"
    return statistics.median(times), jax_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    rows = []
    for mod in ("pliant", "pyglove", "optuna"):
        try:
            seconds, jax_loaded = measure(mod, args.repeats)
        except subprocess.CalledProcessError:
            continue
        rows.append({"module": mod, "seconds": seconds, "imports_jax": jax_loaded})
    base = next(r["seconds"] for r in rows if r["module"] == "pliant")
    print(f"median of {args.repeats} fresh interpreters\n")
    print("| module | import s | imports jax | ratio to pliant |")
    print("|---|---:|---|---:|")
    for r in rows:
        print(
            f"| {r['module']} | {r['seconds']:.3f} | {r['imports_jax']} | "
            f"{r['seconds'] / base:.1f}x |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
