"""Composition of SQL text from trusted fragments only (psycopg's ``sql.SQL`` idea).

Values never enter SQL text: they are bound parameters. What may enter is a
:class:`Fragment`: one of sqltrack's own constants, an identifier quoted by
:func:`sqltrack.identifiers.quote_ident`, or a run of ``?`` placeholders.
:func:`compose` refuses anything else.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqltrack.identifiers import quote_ident

__all__ = ["Fragment", "compose", "ident", "join", "placeholders"]


class Fragment(str):
    """SQL text known to be safe: a constant of sqltrack's or a quoted identifier."""

    __slots__ = ()


def ident(*names: str, plain: bool = True) -> Fragment:
    """``schema.table`` or ``column``, each part quoted."""
    return Fragment(".".join(quote_ident(n, plain=plain) for n in names))


def join(separator: str, parts: Iterable[Fragment]) -> Fragment:
    items = list(parts)
    for p in items:
        if not isinstance(p, Fragment):
            raise TypeError(f"SQL fragment {p!r} is not a Fragment")
    return Fragment(separator.join(items))


def placeholders(count: int) -> Fragment:
    return Fragment(", ".join("?" for _ in range(count)))


def compose(template: str, **parts: Fragment) -> str:
    """Fill ``{name}`` slots of a constant template with trusted fragments."""
    for name, part in parts.items():
        if not isinstance(part, Fragment):
            raise TypeError(f"SQL slot {name!r} got {type(part).__name__}, not a Fragment")
    return template.format(**parts)
