"""Model lines, scalars, and the order in which they are evaluated.

A :class:`Line` is one row of the model (a value per period); a :class:`Scalar` is one
value per scenario (a headline metric, a derived rate, a date). Both are defined once, by
an expression, and carry the label, unit and sheet the workbook shows them with.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from typing import Literal


from finmodel.engine.expr import (
    Cumulative,
    Expr,
    ExprLike,
    Lag,
    Operand,
    Reduce,
    Ref,
    Shift,
    children,
    wrap,
)
from finmodel.errors import ModelError

Aggregation = Literal["sum", "mean", "last", "none"]


@dataclass(eq=False)
class Line(Operand):
    """One model line: ``name = expr`` evaluated in every period.

    ``agg`` says how the line rolls up to a year: flows ``sum``, prices and rates
    ``mean``, balances ``last``; ``none`` keeps it off the annual table.
    """

    name: str
    expr: Expr
    label: str
    unit: str
    sheet: str
    agg: Aggregation = "sum"
    section: str | None = None

    def __repr__(self) -> str:
        return f"Line({self.name!r})"


@dataclass(eq=False)
class Scalar(Operand):
    """One value per scenario: ``name = expr`` (inputs, reductions of lines, other scalars).

    ``metric`` is the snake_case key a headline figure carries in the summary JSON and in
    its defined name ``<strategy>_<metric>``; ``solved`` marks a value computed in Python
    (a break-even) that the workbook writes as a labelled value, not a formula.
    """

    name: str
    expr: Expr | None
    label: str
    unit: str
    sheet: str
    metric: str | None = None
    strategy: str | None = None
    solved: bool = False

    def __repr__(self) -> str:
        return f"Scalar({self.name!r})"


Node = Line | Scalar


@dataclass
class Model:
    """An ordered collection of lines and scalars, built by the business modules."""

    nodes: dict[str, Node] = field(default_factory=dict)
    _order: list[list[Node]] | None = field(default=None, repr=False, compare=False)
    _stepped: set[str] = field(default_factory=set, repr=False, compare=False)
    _deps: dict[str, tuple[Node, ...]] = field(default_factory=dict, repr=False,
                                               compare=False)
    _plans: dict[frozenset[str], list[list[Node]]] = field(default_factory=dict, repr=False,
                                                          compare=False)

    def line(
        self,
        name: str,
        expr: ExprLike | Node,
        label: str,
        unit: str,
        sheet: str,
        agg: Aggregation = "sum",
        section: str | None = None,
    ) -> Line:
        """Define a line and return it (use the returned object in later expressions)."""
        node = Line(name, wrap(expr), label, unit, sheet, agg, section)
        return self._add(node)

    def recursive_line(
        self, name: str, label: str, unit: str, sheet: str, agg: Aggregation = "last",
        section: str | None = None,
    ) -> Line:
        """Declare a line whose expression refers to itself through ``lag``; set it with
        :meth:`define` once the expression can be written."""
        node = Line(name, _Pending(), label, unit, sheet, agg, section)
        return self._add(node)

    def define(self, line: Line, expr: ExprLike | Node) -> Line:
        """Give a line declared with :meth:`recursive_line` its expression."""
        if not isinstance(line.expr, _Pending):
            raise ModelError(f"line {line.name!r} is already defined")
        line.expr = wrap(expr)
        self._order = None
        self._deps.clear()
        return line

    def scalar(
        self,
        name: str,
        expr: ExprLike | Node | None,
        label: str,
        unit: str,
        sheet: str,
        metric: str | None = None,
        strategy: str | None = None,
        solved: bool = False,
    ) -> Scalar:
        """Define a scalar (one value per scenario) and return it."""
        node = Scalar(name, None if expr is None else wrap(expr), label, unit, sheet,
                      metric, strategy, solved)
        return self._add(node)

    def _add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise ModelError(f"model line {node.name!r} is defined twice")
        self.nodes[node.name] = node
        self._order = None
        self._deps.clear()
        return node

    @property
    def lines(self) -> list[Line]:
        return [n for n in self.nodes.values() if isinstance(n, Line)]

    @property
    def scalars(self) -> list[Scalar]:
        return [n for n in self.nodes.values() if isinstance(n, Scalar)]

    def metrics(self) -> list[Scalar]:
        return [s for s in self.scalars if s.metric is not None]

    def needed_for(self, names: list[str]) -> set[str]:
        """Names of the nodes ``names`` depend on, themselves included."""
        seen: set[str] = set()
        stack = [self.nodes[n] for n in names]
        deps = self._deps  # a node's references, walked once per model (break-evens of
        while stack:       # many strategies ask for dozens of different sets of names)
            node = stack.pop()
            if node.name in seen:
                continue
            seen.add(node.name)
            refs = deps.get(node.name)
            if refs is None:
                hard, soft = _dependencies(node)
                refs = deps[node.name] = tuple(hard | soft)
            stack.extend(refs)
        return seen

    def schedule(self) -> list[list[Node]]:
        """Evaluation order: a list of groups, each evaluated after the ones before it
        (computed once, then kept until a node is added).

        A group of one node is evaluated for all periods at once. A larger group is a set
        of lines that refer to each other through ``lag`` (a balance roll-forward); the
        evaluator steps through time for those, still vectorised across scenarios.
        """
        if self._order is None:
            self._order = self._schedule()
            self._plans.clear()
            self._deps.clear()
        return self._order

    def plan(self, names: list[str] | None = None) -> list[list[Node]]:
        """The groups of :meth:`schedule` needed to evaluate ``names`` (all when None).

        Memoised per set of names: a solver evaluating the same metrics dozens of times
        (break-evens, Monte Carlo chunks) walks the graph once.
        """
        order = self.schedule()
        if names is None:
            return order
        key = frozenset(names)
        plan = self._plans.get(key)
        if plan is None:
            needed = self.needed_for(list(key))
            plan = self._plans[key] = [g for g in order if any(x.name in needed for x in g)]
        return plan

    def _schedule(self) -> list[list[Node]]:
        nodes = list(self.nodes.values())
        for n in nodes:
            if isinstance(n, Line) and isinstance(n.expr, _Pending):
                raise ModelError(f"recursive line {n.name!r} was declared but never defined")
        index = {id(n): i for i, n in enumerate(nodes)}
        hard: list[set[int]] = []
        soft: list[set[int]] = []
        for n in nodes:
            h, s = _dependencies(n)
            for dep in h | s:
                if id(dep) not in index:
                    raise ModelError(f"{n.name!r} refers to {dep.name!r}, not in this model")
            hard.append({index[id(d)] for d in h})
            soft.append({index[id(d)] for d in s})

        labels = _strong_components([hard[i] | soft[i] for i in range(len(nodes))])

        groups: dict[int, list[int]] = {}
        for i, lab in enumerate(labels):
            groups.setdefault(int(lab), []).append(i)
        sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
        for lab, members in groups.items():
            deps = {int(labels[j]) for i in members for j in hard[i] | soft[i]} - {lab}
            sorter.add(lab, *deps)
        order: list[list[Node]] = []
        for lab in sorter.static_order():
            members = groups[lab]
            # Within a recursive group the same-period (hard) references must be acyclic.
            inner = graphlib.TopologicalSorter(
                {i: {j for j in hard[i] if j in members} for i in members}
            )
            try:
                seq = list(inner.static_order())
            except graphlib.CycleError as exc:
                names = [nodes[i].name for i in exc.args[1]]
                raise ModelError(
                    "circular reference without a lag: " + " -> ".join(names)
                ) from None
            group = [nodes[i] for i in seq]
            if len(group) > 1 or any(i in soft[i] for i in members):
                for g in group:
                    if isinstance(g, Scalar):
                        raise ModelError(f"scalar {g.name!r} cannot be part of a recursion")
                    if _has_row_reduction_within(g, set(map(id, group))):
                        raise ModelError(
                            f"line {g.name!r} takes a cumulative or whole-row reduction of "
                            "a line in its own recursion; write it as lag(line) + flow"
                        )
            order.append(group)
        self._stepped = {g.name for grp in order for g in grp
                         if len(grp) > 1 or id(g) in {id(x) for x in _lag_targets(g)}}
        return order

    @property
    def stepped(self) -> set[str]:
        """Names of the lines the evaluator steps through time (their own lag, or a group
        of lines that lag each other)."""
        self.schedule()
        return self._stepped


class _Pending(Expr):
    """Placeholder expression of a declared-but-undefined recursive line."""

    __slots__ = ()


def walk(expr: Expr):
    """Yield every node of an expression tree (not following line references)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        stack.extend(children(e))


def _dependencies(node: Node) -> tuple[set[Node], set[Node]]:
    """(same-period references, lagged references) of a node."""
    hard: set[Node] = set()
    soft: set[Node] = set()
    if node.expr is None:
        return hard, soft
    for e in walk(node.expr):
        if isinstance(e, Lag):
            soft.add(e.target)
        elif isinstance(e, (Ref, Cumulative, Reduce, Shift)):
            hard.add(e.target)
    return hard, soft


def _strong_components(edges: list[set[int]]) -> list[int]:
    """A label per node, equal for nodes of one strongly connected component (Tarjan's
    algorithm, iterative; scipy's would cost its import on every start of the CLI)."""
    n = len(edges)
    index = [-1] * n
    low = [0] * n
    label = [-1] * n
    on_stack = [False] * n
    stack: list[int] = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, it = work[-1]
            for w in it:
                if index[w] == -1:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, iter(edges[w])))
                    break
                if on_stack[w]:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    while True:
                        w = stack.pop()
                        on_stack[w] = False
                        label[w] = v
                        if w == v:
                            break
    return label


def _lag_targets(node: Node) -> list[Node]:
    if node.expr is None:
        return []
    return [e.target for e in walk(node.expr) if isinstance(e, Lag)]


def _has_row_reduction_within(line: Line, group: set[int]) -> bool:
    return any(
        isinstance(e, (Cumulative, Reduce, Shift)) and id(e.target) in group
        for e in walk(line.expr)
    )
