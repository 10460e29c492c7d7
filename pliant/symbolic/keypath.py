"""Key paths: where a value sits inside a symbolic tree.

A key path is a tuple of keys: a ``str`` names an argument of a node or a key of a dict, an
``int`` indexes a list or tuple. Its text form is the one users read in errors and write in
``pl.replace``: ``blocks[2].conv.features``.
"""

from __future__ import annotations

import re
from typing import SupportsIndex

Key = str | int

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(
    r"""\.?([A-Za-z_][A-Za-z0-9_]*)      # .name or a leading name
      | \[(-?\d+)\]                      # [3]
      | \[('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\]   # ['any key']
    """,
    re.VERBOSE,
)


class KeyPath(tuple):
    """An immutable path of keys into a symbolic tree.

    Build one from keys or parse its text form; ``str`` gives the text back.

    Example:
        >>> p = KeyPath.parse("blocks[2].conv.features")
        >>> tuple(p)
        ('blocks', 2, 'conv', 'features')
        >>> str(p)
        'blocks[2].conv.features'
        >>> str(KeyPath(("layers", "my key", 0)))
        "layers['my key'][0]"
    """

    __slots__ = ()

    def __new__(cls, keys: tuple[Key, ...] | list[Key] = ()) -> KeyPath:
        for key in keys:
            if type(key) is not str and type(key) is not int:
                raise TypeError(
                    f"a key path holds str and int keys, got {key!r} of type {type(key).__name__}"
                )
        return super().__new__(cls, keys)

    @classmethod
    def parse(cls, text: str | KeyPath) -> KeyPath:
        """Parses ``'a.b[0]["c d"]'`` into a KeyPath; the empty string is the root.

        Raises:
            ValueError: if the text is not a well-formed key path.

        Example:
            >>> KeyPath.parse("") == KeyPath()
            True
        """
        if isinstance(text, KeyPath):
            return text
        if not isinstance(text, str):
            raise TypeError(f"a key path is a str or KeyPath, got {text!r}")
        keys: list[Key] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or (m.group(0).startswith(".") and pos == 0):
                raise ValueError(
                    f"malformed key path {text!r} at character {pos}: expected "
                    f"'name', '.name', '[index]' or ['key'], e.g. 'blocks[2].conv.features'"
                )
            name, index, quoted = m.groups()
            if name is not None:
                if pos > 0 and not m.group(0).startswith("."):
                    raise ValueError(f"malformed key path {text!r}: missing '.' before {name!r}")
                keys.append(name)
            elif index is not None:
                keys.append(int(index))
            else:
                keys.append(_unquote(quoted))
            pos = m.end()
        return cls(tuple(keys))

    def child(self, key: Key) -> KeyPath:
        """Returns this path extended by one key.

        Example:
            >>> str(KeyPath.parse("a").child(0))
            'a[0]'
        """
        if type(key) is not str and type(key) is not int:
            raise TypeError(f"a key path holds str and int keys, got {key!r}")
        return tuple.__new__(KeyPath, (*self, key))

    @property
    def parent(self) -> KeyPath:
        """The path one level up (the root's parent is the root).

        Example:
            >>> str(KeyPath.parse("a.b[1]").parent)
            'a.b'
        """
        return KeyPath(self[:-1])

    def __str__(self) -> str:
        out = []
        for i, key in enumerate(self):
            if type(key) is int:
                out.append(f"[{key}]")
            elif _IDENTIFIER.match(key):
                out.append(key if i == 0 else "." + key)
            else:
                out.append(f"[{key!r}]")
        return "".join(out)

    def __repr__(self) -> str:
        return f"KeyPath({str(self)!r})"

    def __getitem__(self, index: SupportsIndex | slice):  # type: ignore[override]
        item = super().__getitem__(index)
        return KeyPath(item) if isinstance(index, slice) else item


# The escapes ``repr(str)`` writes, so that ``KeyPath.parse(str(path)) == path`` for any key.
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")


def _unescape(m: re.Match[str]) -> str:
    code = m.group(1)
    if len(code) > 1:
        return chr(int(code[1:], 16))
    return _ESCAPES.get(code, code)


def _unquote(quoted: str) -> str:
    return _ESCAPE.sub(_unescape, quoted[1:-1])
