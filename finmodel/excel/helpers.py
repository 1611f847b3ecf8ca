"""Helper rows: a line whose formula would be longer than the FAST limit is split, its
largest parts written as rows of their own just above it ("<label>: part 1") that the
line's formula then reads."""

from __future__ import annotations

from finmodel.engine.expr import (
    BinOp,
    Compare,
    Cumulative,
    Expr,
    Func,
    Lag,
    Neg,
    PathInput,
    Reduce,
    Ref,
    Shift,
)
from finmodel.engine.graph import Line, Node, Scalar
from finmodel.excel.formulas import FormulaWriter, children

#: Split a formula longer than this (the scanner's limit is 150; row numbers may grow by
#: a digit once the helper rows are placed).
TARGET_CHARS = 135


def substitute(e: Expr, new: dict[int, Expr]) -> Expr:
    """``e`` with every node whose id is in ``new`` replaced."""
    if id(e) in new:
        return new[id(e)]
    if isinstance(e, Shift):
        # A shift's k is rendered as a single value: a helper *row* cannot stand in it, so
        # a part shared with k is replaced in ``initial`` only (14 construction phases
        # shared one between a depreciation's life and its amount).
        initial = substitute(e.initial, new)
        return e if initial is e.initial else Shift(e.target, e.k, initial, e.ahead)
    kids = children(e)
    if not kids:
        return e
    got = tuple(substitute(k, new) for k in kids)
    if all(a is b for a, b in zip(got, kids)):
        return e
    if isinstance(e, BinOp):
        return BinOp(e.op, *got)
    if isinstance(e, Compare):
        return Compare(e.op, *got)
    if isinstance(e, Neg):
        return Neg(got[0])
    if isinstance(e, Func):
        return Func(e.name, got)
    if isinstance(e, Lag):
        return Lag(e.target, e.k, got[0])
    if isinstance(e, PathInput):
        return PathInput(e.name, got[0])
    return e


def _parts(e: Expr):
    """Sub-expressions (below the root) that can stand as a row of numbers."""
    def below(x: Expr) -> tuple[Expr, ...]:
        # A shift's k and a reduction's argument are rendered as single values, not per
        # month: a month row cannot stand in for them.
        if isinstance(x, Shift):
            return (x.initial,)
        if isinstance(x, Reduce):
            return ()
        return children(x)

    stack = list(below(e))
    while stack:
        x = stack.pop()
        if isinstance(x, (BinOp, Neg, Shift, Cumulative)) or (
                isinstance(x, Func) and x.name in ("min", "max", "if", "floor",
                                                   "months_between", "month_number")):
            yield x
        stack.extend(below(x))


def split_long(fw: FormulaWriter, line: Node, here: str, probe_t: int | None) -> list[Node]:
    """Helper rows (lines, or values for a scalar) for ``line`` so that no formula passes
    ``TARGET_CHARS``; the line's rendered expression is replaced in ``fw``. Returns them
    in the order to write them."""
    lay = fw.lay
    helpers: list[Node] = []
    scalar = isinstance(line, Scalar)

    # Each part's rendered length, once: a part renders the same until a helper replaces
    # something inside it, and then it is a new expression (``substitute`` rebuilds every
    # ancestor of what it replaces). Kept with the part, so its id is not reused. Without
    # this, splitting the longest lines rendered their parts again at every level
    # (a fifth of the base workbook's export).
    lengths: dict[int, tuple[Expr, int]] = {}

    def length(e: Expr) -> int:
        hit = lengths.get(id(e))
        if hit is None or hit[0] is not e:
            hit = lengths[id(e)] = (e, len(fw._r(e, probe_t, here, 0)))
        return hit[1]

    def shrink(e: Expr) -> Expr:
        while length(e) > TARGET_CHARS:
            sized = [(length(x), x) for x in _parts(e)]
            fits = [p for p in sized if p[0] <= TARGET_CHARS]
            if scalar:
                sized = [p for p in sized if not isinstance(p[1], (Shift, Cumulative))]
                fits = [p for p in fits if not isinstance(p[1], (Shift, Cumulative))]
            if fits:
                _, part = max(fits, key=lambda p: p[0])
                expr = part
            elif sized:
                _, part = max(sized, key=lambda p: p[0])
                expr = shrink(part)
            else:
                return e  # nothing left to split (a single long name)
            k = len(helpers) + 1
            name, label = f"{line.name}~part{k}", f"{line.label}: part {k}"
            if scalar:
                h = Scalar(name, expr, label, line.unit, here)
                lay.scalar_cells[name] = (here, 99_999, 2)  # provisional, for measuring
            else:
                h = Line(name, expr, label, line.unit, here, "none", line.section)
                lay.line_rows[name] = (here, 99_999)
            fw._folded[id(h)] = expr
            helpers.append(h)
            e = substitute(e, {id(part): Ref(h)})
        return e

    # Every sub-expression's text, once: measuring a part renders its whole subtree, and
    # the parts of a part are measured again, so without this the longest lines were
    # rendered depth-many times (a quarter of the base workbook's export). Nothing a
    # rendering reads changes during this call (new helpers are new nodes), so a text is
    # kept by node (held with it, so its id is not reused) and context.
    texts: dict[tuple, tuple[Expr, str]] = {}
    render = fw._r

    def remembered(e: Expr, t: int | None, here: str, outer: int) -> str:
        key = (id(e), t, here, outer)
        hit = texts.get(key)
        if hit is None or hit[0] is not e:
            hit = texts[key] = (e, render(e, t, here, outer))
        return hit[1]

    fw._r = remembered  # the recursion inside _r goes through it too
    try:
        e = fw.folded(line)
        if isinstance(e, Func) and e.name == "months_between" and length(e) > TARGET_CHARS:
            # Months between two long names: each date's month number on a row of its own.
            e = BinOp("-", Func("month_number", (e.args[1],)),
                      Func("month_number", (e.args[0],)))
        new = shrink(e)
    finally:
        del fw._r
    fw._folded[id(line)] = new
    return helpers
