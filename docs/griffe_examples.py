"""A griffe extension for the docs build: ``Example:`` sections are read as ``Examples:``.

pliant's Google-style docstrings title their doctests ``Example:``, which griffe reads as an
admonition (Markdown) rather than as an examples section (code); this renders them as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExamplesAsCode(griffe.Extension):
    """Renames ``Example:`` section headers to ``Examples:`` in every loaded docstring."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
