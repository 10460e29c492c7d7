"""Command line: ``python -m pliant demo`` (also the ``pliant`` console script)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatches ``pliant <command>``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: pliant demo [--budget N] [--epochs N] [--seed N]\n\n"
            "commands:\n  demo    run the architecture search demo on scikit-learn's digits"
        )
        return 0 if argv else 2
    if argv[0] == "demo":
        from pliant.demo import main as demo_main

        return demo_main(argv[1:])
    print(f"pliant: unknown command {argv[0]!r}; try 'pliant demo'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
