"""Many scenarios of a model in one compiled loop, scenario by scenario.

The numpy evaluator (``evaluate.py``) computes each line for all scenarios of a chunk at
once, one numpy call per operation on a (600, 240) array: ~3.6 passes through memory per
line element, operands of shape (600, 1) or (1, 240) broadcast at a further cost, and
Python between calls; a Monte Carlo took ~10x the time of a plain ``a*b+c`` over as many
elements (benchmarks/README.md, bench_monte_carlo.py). Here the same lines are
translated, once per model, into a program for the register machine of
:mod:`finmodel.engine.kernel`, compiled by numba: it runs a scenario's whole model at a
time (two side by side), ~130 rows of 240 values that stay in a core's cache, reads
constants that are one number as numbers, and writes out only what is asked for. What
does not vary by scenario is computed by the numpy evaluator first (once per set of such
inputs) and read as constants; what the machine does not do (an IRR) is left to the
numpy evaluator, on the lines the machine exports. The loop runs without the GIL, so a
Monte Carlo's chunks run on a thread per core.

The operations are the numpy evaluator's, in the same order (see ``kernel.py``), so the
values are the same bits: the tests compare every metric of every shipped case's Monte
Carlo both ways. numba is optional (``pip install finmodel[fast]``); without it, or when a
line is not finite (the numpy evaluator then names it), the numpy evaluator runs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from finmodel.engine.evaluate import (
    Buffers,
    _Evaluator,
    _reads,
    _solves_irr,
    evaluate,
)
from finmodel.engine.expr import (
    BinOp,
    Chosen,
    Compare,
    Const,
    Cumulative,
    Expr,
    Func,
    Input,
    Lag,
    Neg,
    PathInput,
    Reduce,
    Ref,
    Shift,
    TimeRow,
    children,
)
from finmodel.engine.graph import Line, Model, Node, Scalar, _lag_targets, walk
from finmodel.engine.solve import one_blas_thread
from finmodel.engine.timeline import Timeline
from finmodel.errors import ModelError

#: Scenarios the machine runs side by side (kernel.run): one dispatch of each operation
#: for both, and two running sums at once. Measured on the base case, 10,000 scenarios on
#: one thread: 0.68-0.69 s side by side, 0.71-0.86 s one at a time, 0.69-0.76 s four at a
#: time (benchmarks/bench_monte_carlo.py --quick).
SIDE_BY_SIDE = 2
_KERNEL: list = []  # [the kernel module, or None where numba cannot be imported]
_LOCK = threading.RLock()  # (a program built under it imports the kernel)


def installed() -> bool:
    """Whether numba is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def available() -> bool:
    """Whether the compiled loop can run here (numba installed and working); imports
    numba the first time."""
    return _kernel() is not None


def _kernel():
    with _LOCK:
        if not _KERNEL:
            try:
                from finmodel.engine import kernel
            except Exception:  # numba missing, or no LLVM for this platform
                kernel = None
            _KERNEL.append(kernel)
    return _KERNEL[0]


def evaluate_compiled(
    model: Model,
    timeline: Timeline,
    inputs: Mapping[str, float | np.ndarray],
    paths: Mapping[str, np.ndarray] | None,
    overrides: Mapping[str, np.ndarray] | None,
    only: list[str],
    buffers: Buffers | None = None,
) -> dict[str, np.ndarray]:
    """The nodes ``only`` of :func:`finmodel.engine.evaluate.evaluate`, computed by the
    compiled loop (the numpy evaluator where numba is missing or a line is not finite).

    Same parameters as ``evaluate``; the values are the same bits.
    """
    paths, overrides = paths or {}, overrides or {}
    k = _kernel()
    if k is None:
        return evaluate(model, timeline, inputs, paths, overrides, only=only, buffers=buffers)
    ev = _Evaluator(model, timeline, inputs, paths, overrides, {}, None)
    if ev.s == 1:  # one scenario: nothing to gain
        return evaluate(model, timeline, inputs, paths, overrides, only=only, buffers=buffers)
    program = _program(model, timeline, ev, only)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"), one_blas_thread():
        try:
            state = program.constants(ev)
        except ModelError:  # a fixed line not finite: numpy names the first in its order
            return evaluate(model, timeline, inputs, paths, overrides, only=only,
                            buffers=buffers)
        ev.values.update(state["values"])
        for part in program.parts:
            if isinstance(part, _Segment):
                if not part.run(k, ev, state):  # a line not finite: let numpy name it
                    return evaluate(model, timeline, inputs, paths, overrides, only=only,
                                    buffers=buffers)
            elif len(part) == 1 and part[0].name not in model.stepped:
                ev._evaluate_node(part[0])
            else:
                ev._evaluate_recursive(part)
    out = {}
    for name in only:
        v = ev.values[name]
        if name in program.fixed_names:  # (the program keeps these: the caller gets a copy)
            v = v.copy()
        out[name] = v[:, 0] if isinstance(model.nodes[name], Scalar) else v
    return out


# --- programs ----------------------------------------------------------------------------

#: Programs by model (kept with the model, so an id is never reused) and by what varies.
_PROGRAMS: dict[int, tuple[Model, dict]] = {}


def _program(model: Model, timeline: Timeline, ev: _Evaluator, only: list[str]
             ) -> _Program:
    varying = (frozenset(k for k, v in ev.inputs.items() if v.shape[0] > 1),
               frozenset(k for k, v in ev.paths.items() if v.shape[0] > 1),
               frozenset(k for k, v in ev.overrides.items() if v.shape[0] > 1),
               frozenset(ev.overrides))
    key = (frozenset(only), varying, timeline.start, ev.n, id(model.schedule()))
    with _LOCK:
        hit = _PROGRAMS.get(id(model))
        if hit is None or hit[0] is not model:
            if len(_PROGRAMS) > 64:
                _PROGRAMS.clear()
            hit = _PROGRAMS[id(model)] = (model, {})
        program = hit[1].get(key)
        if program is None:
            program = hit[1][key] = _Program(model, only, *varying, ev.n)
    return program


class _V:
    """A virtual register: a row of the machine, assigned when the program is laid out."""

    __slots__ = ("const",)

    def __init__(self, const: int = -1) -> None:
        self.const = const  # index of a constant row, or -1


class _Ins:
    __slots__ = ("op", "d", "a", "b", "c", "k", "body")

    def __init__(self, op, d=0, a=0, b=0, c=0, k=0, body=None) -> None:
        self.op, self.d, self.a, self.b, self.c, self.k, self.body = op, d, a, b, c, k, body


_BIN = {"*": "MUL", "+": "ADD", "-": "SUB", "/": "DIV", "^": "POW"}
_CMP = {">": "GT", "=": "EQ", "<=": "LE", "<": "LT", ">=": "GE", "<>": "NE"}
_FN2 = {"min": "MIN", "max": "MAX", "and": "AND", "or": "OR"}


class _Program:
    """A model's plan for given names, as machine segments and numpy-evaluated groups."""

    def __init__(self, model: Model, only: list[str], var_inputs, var_paths, var_given,
                 given, n: int) -> None:
        self.model, self.n = model, n
        self.var_inputs, self.var_paths, self.given = var_inputs, var_paths, given
        plan = model.plan(only)
        self.const_keys: list[tuple] = []  # what each constant row holds
        self._const_index: dict[tuple, int] = {}
        self._const_exprs: dict[int, Expr] = {}  # kept, so ids stay theirs
        self._varying_memo: dict[int, bool] = {}
        # Which nodes vary by scenario.
        self.varying: set[str] = set()
        for group in plan:
            if any(x.name in var_given for x in group) or any(
                    x.expr is not None and x.name not in given and self._varies(x.expr)
                    for x in group):
                self.varying |= {x.name for x in group}
                # what was found not to vary may read this group: ask again
                self._varying_memo.clear()
        # Nodes that do not vary: the numpy evaluator, once per set of inputs.
        self.fixed = [g for g in plan if g[0].name not in self.varying]
        self.fixed_names = {x.name for g in self.fixed for x in g}
        # The rest in stages: stage s is a machine segment (the groups it can run, in plan
        # order) and then the groups left to numpy that read nothing later. A group goes
        # to the earliest stage after everything it reads (so an IRR, read by nothing the
        # machine computes, does not split the machine's work in two).
        stage: dict[str, int] = {}  # machine groups' nodes
        after: dict[str, int] = {}  # numpy groups' nodes: they run after segment s
        runs: dict[int, list[list[Node]]] = {}
        rest: dict[int, list[list[Node]]] = {}
        for group in plan:
            if group[0].name not in self.varying:
                continue
            names = {x.name for x in group}
            reads = {t.name for x in group for t in _targets(x)} - names
            s_in = max([stage[r] for r in reads if r in stage]
                       + [after[r] + 1 for r in reads if r in after] + [0])
            stepped = len(group) > 1 or group[0].name in model.stepped
            members = {id(x) for x in group} if stepped else set()
            if all(self._compilable(x, members) for x in group):
                runs.setdefault(s_in, []).append(group)
                stage.update(dict.fromkeys(names, s_in))
            else:
                s_out = max([stage[r] for r in reads if r in stage]
                            + [after[r] for r in reads if r in after] + [0])
                rest.setdefault(s_out, []).append(group)
                after.update(dict.fromkeys(names, s_out))
        self.parts: list = []
        for s_ in range(max([*runs, *rest, -1]) + 1):
            if s_ in runs:
                self.parts.append(runs[s_])
            self.parts.extend(rest.get(s_, []))
        # What each machine segment must export: nodes read outside it, or asked for.
        outside: set[str] = set(only)
        segments = [p for p in self.parts if p and isinstance(p[0], list)]
        for part in self.parts:
            if not (part and isinstance(part[0], list)):
                for x in part:
                    outside |= {t.name for t in _targets(x)}
        seg_of = {x.name: i for i, seg in enumerate(segments) for g in seg for x in g}
        for i, seg in enumerate(segments):
            for g in seg:
                for x in g:
                    outside |= {t.name for t in _targets(x)
                                if seg_of.get(t.name, i) != i}
        self.parts = [_Segment(self, p, outside) if p and isinstance(p[0], list) else p
                      for p in self.parts]
        self.const_fingerprint: tuple | None = None
        self._lock = threading.Lock()
        self.sum_plan = _kernel().sum_plan(n)
        self.state: dict = {}

    # --- analysis ---

    def _varies(self, e: Expr) -> bool:
        hit = self._varying_memo.get(id(e))
        if hit is not None:
            return hit
        if isinstance(e, (Input, Chosen)):
            v = e.name in self.var_inputs
        elif isinstance(e, PathInput):
            v = e.name in self.var_paths or self._varies(e.index)
        else:
            target = getattr(e, "target", None)
            v = (target is not None and target.name in self.varying) or any(
                self._varies(c) for c in children(e))
        self._varying_memo[id(e)] = v
        return v

    def _compilable(self, node: Node, members: set[int]) -> bool:
        """Whether the machine computes ``node`` as numpy does (else numpy does: an IRR, a
        scalar solved outside, anything numpy refuses with an error of its own)."""
        if node.name in self.given:
            return True
        if node.expr is None or getattr(node, "solved", False):  # only numpy knows it
            return False
        if isinstance(node, Scalar) and _periodic(node.expr):
            return False  # numpy says the scalar depends on a per-period value
        for e in walk(node.expr):
            if members and _reads(e, members) and not isinstance(e, _STEPPED):
                return False  # the loop period by period does element-wise work only
            if not self._varies(e):
                continue  # a constant, computed by numpy
            if isinstance(e, Reduce) and e.kind == "irr":
                return False
            if isinstance(e, Func) and (e.name not in (*_FN2, "if", "floor", "or_na", "na")
                                        or (e.name == "if" and _solves_irr(e))):
                return False
            if isinstance(e, Shift) and (self._varies(e.k) or _periodic(e.k)):
                return False
            if isinstance(e, PathInput) and self._varies(e.index):
                return False
            if not isinstance(e, (BinOp, Compare, Neg, Func, Ref, Input, Chosen, PathInput,
                                  Lag, Shift, Cumulative, Reduce)):
                return False
        return True

    # --- constants ---

    def const(self, key: tuple, expr: Expr | None = None) -> _V:
        """A register holding a value that does not vary by scenario."""
        i = self._const_index.get(key)
        if i is None:
            i = self._const_index[key] = len(self.const_keys)
            self.const_keys.append(key)
            if expr is not None:
                self._const_exprs[id(expr)] = expr
        return _V(i)

    def constants(self, ev: _Evaluator) -> dict:
        """The values that do not vary by scenario (``"values"``), the machine's
        constants and each segment's code pointing at them, computed only when those
        inputs changed: one state, never changed after (chunks on threads share it)."""
        fingerprint = _fingerprint(ev, self)
        with self._lock:
            if fingerprint != self.const_fingerprint:
                self.state = self._compute_constants(ev)
                self.const_fingerprint = fingerprint
            return self.state

    def _compute_constants(self, outer: _Evaluator) -> dict:
        # An evaluator of one scenario, with the inputs that are one value for all: what
        # does not vary is computed once, in the shape numpy gives it then (a recursion
        # steps (1, periods), not (scenarios, periods)), whatever the chunk's size.
        ev = _Evaluator(self.model, outer.tl,
                        {k: v[:, 0] for k, v in outer.inputs.items() if v.shape[0] == 1},
                        {k: v for k, v in outer.paths.items() if v.shape[0] == 1},
                        {k: v for k, v in outer.overrides.items() if v.shape[0] == 1}, {})
        for group in self.fixed:
            if len(group) == 1 and group[0].name not in self.model.stepped:
                ev._evaluate_node(group[0])
            else:
                ev._evaluate_recursive(group)
        values = []
        for kind, what in self.const_keys:
            if kind == "value":
                values.append(np.array([[what]]))
            elif kind == "node":
                values.append(ev.values[what])
            elif kind == "npv_discount":  # as _Evaluator._reduce computes it
                rate = ev.eval(self._const_exprs[what], None)
                values.append((1.0 + rate) ** np.arange(1, self.n + 1)[None, :])
            else:
                values.append(ev.eval(self._const_exprs[what], None))
        # A constant that is one number (an input, a literal, a row of one number
        # repeated) is read as a number; only rows that change with the period take rows
        # of the machine (measured: 64 -> 40 ms a chunk of 600 on the base case).
        periodic = [np.ndim(v) == 2 and v.shape[1] > 1 and not _one_number(v)
                    for v in values]
        rows = [i for i, p in enumerate(periodic) if p]
        numbers = [i for i, p in enumerate(periodic) if not p]
        where = np.empty(len(values), dtype=np.int64)
        where[rows] = np.arange(len(rows))
        where[numbers] = -1 - np.arange(len(numbers))
        const_rows = np.empty((len(rows), self.n))
        for j, i in enumerate(rows):
            const_rows[j] = values[i]
        state = {"rows": const_rows,
                 "numbers": np.array([float(np.ravel(values[i])[0]) for i in numbers]),
                 "values": dict(ev.values)}
        for part in self.parts:
            if isinstance(part, _Segment):
                state[id(part)] = part.relocate(where, len(rows))
        return state


def _one_number(v: np.ndarray) -> bool:
    """Whether every value of ``v`` is the same float, bit for bit (+0 and -0 differ)."""
    bits = np.ascontiguousarray(v, dtype=float).reshape(-1).view(np.int64)
    return bool((bits == bits[0]).all())


def _fingerprint(ev: _Evaluator, program: _Program) -> tuple:
    """What the constants depend on: every input, path and given line that is one value
    for all scenarios (their bytes)."""
    parts = []
    for kind, values, varying in (("i", ev.inputs, program.var_inputs),
                                  ("p", ev.paths, program.var_paths),
                                  ("g", ev.overrides, ())):
        for name in sorted(values):
            v = values[name]
            if v.shape[0] == 1 and name not in varying:
                parts.append((kind, name, v.shape, v.tobytes()))
    return tuple(parts)


class _Segment:
    """Groups of varying nodes run by the machine, one scenario at a time."""

    def __init__(self, program: _Program, groups: list[list[Node]], outside: set[str]
                 ) -> None:
        self.p = program
        self.reg: dict[str, _V] = {}  # node -> its register (in this segment)
        self.loads: dict[tuple, _V] = {}
        # columns of ``scen`` (inputs and outside scalars) and rows of ``G`` (given and
        # outside lines), as (kind, name)
        self.scen_names: list[tuple[str, str]] = []
        self.given_names: list[tuple[str, str]] = []
        self.path_names: list[str] = []
        self.index_exprs: list[Expr] = []  # rows of ``idx``
        self.exports: list[str] = []  # rows of ``X``
        self.scalar_exports: list[str] = []  # columns of ``XS``
        self.checked: list[str] = []  # lines by CHECK's k
        code: list[_Ins] = []
        self._top = code  # the program's list (a loop's body is another)
        self._done: dict[tuple, _V] = {}
        for group in groups:
            self._group(group, code)
            for x in group:
                if x.name in outside:
                    if isinstance(x, Scalar):
                        code.append(_Ins("EXPORTS", len(self.scalar_exports), self.reg[x.name]))
                        self.scalar_exports.append(x.name)
                    else:
                        code.append(_Ins("EXPORT", len(self.exports), self.reg[x.name]))
                        self.exports.append(x.name)
        # (later segments add constants: this one's registers start after those it knew)
        self.n_const = len(program.const_keys)
        self.layout, self.regs_at, self.registers = _layout(code, self.n_const)

    # --- code generation ---

    def _group(self, group: list[Node], code: list[_Ins]) -> None:
        p = self.p
        given = [x for x in group if x.name in p.given]
        rest = [x for x in group if x.name not in p.given]
        for x in given:
            self.reg[x.name] = self._load("LOADG", "given", x.name)
            if isinstance(x, Line):  # numpy checks a given line too
                self._check(x, code)
        stepped = len(group) > 1 or group[0].name in p.model.stepped
        inner = {id(x) for x in rest}
        if stepped and given and not any(id(t) in inner for x in rest
                                         for t in _lag_targets(x)):
            stepped = False  # a given line broke the recursion: all periods at once
        if not stepped:
            for x in rest:
                self.reg[x.name] = self._emit(x.expr, code, {})
                if isinstance(x, Line):
                    self._check(x, code)
            return
        members = {id(x) for x in group}
        for x in rest:
            self.reg[x.name] = _V()
        body: list[_Ins] = []
        memo: dict[int, _V] = {}
        for x in rest:
            self._emit_loop(x.expr, code, body, members, memo, dest=self.reg[x.name])
        hold = _hold(body)
        code.append(hold if hold is not None else _Ins("LOOP", body=body))
        for x in rest:
            self._check(x, code)

    def _check(self, line: Line, code: list[_Ins]) -> None:
        code.append(_Ins("CHECK", a=self.reg[line.name], k=len(self.checked)))
        self.checked.append(line.name)

    def _load(self, op: str, kind: str, name: str) -> _V:
        """The register a value from outside the segment (``kind``: an ``input``, a
        ``given`` line, a ``node`` computed before) is loaded into, once, before anything
        (never inside a loop period by period)."""
        v = self.loads.get((op, kind, name))
        if v is None:
            v = self.loads[(op, kind, name)] = _V()
            names = self.given_names if op == "LOADG" else self.scen_names
            self._top.append(_Ins(op, v, len(names)))
            names.append((kind, name))
        return v

    def _node(self, node: Node, code: list[_Ins]) -> _V:
        """The register of a node read by an expression."""
        if node.name not in self.p.varying:
            return self.p.const(("node", node.name))
        v = self.reg.get(node.name)
        if v is not None:
            return v
        if isinstance(node, Scalar):  # computed before this segment
            return self._load("LOADS", "node", node.name)
        return self._load("LOADG", "node", node.name)

    def _emit(self, e: Expr, code: list[_Ins], memo: dict[int, _V], dest: _V | None = None
              ) -> _V:
        """Code computing ``e`` over all periods; its register."""
        p = self.p
        if not p._varies(e):
            v = self._constant(e)
        else:
            v = memo.get(id(e))
            if v is None:
                v = memo[id(e)] = self._op(e, code, memo,
                                           lambda x: self._emit(x, code, memo), dest)
        if dest is not None and v is not dest:
            code.append(_Ins("COPY", dest, v))
            return dest
        return v

    def _emit_loop(self, e: Expr, pre: list[_Ins], body: list[_Ins], members: set[int],
                   memo: dict[int, _V], dest: _V | None = None) -> _V:
        """Code computing ``e`` period by period inside a recursion: the parts that do not
        read the group's lines go before the loop, over all periods (as numpy hoists them)."""
        if not _reads(e, members):
            v = self._emit(e, pre, memo)
        else:
            v = memo.get(id(e))
            if v is None:
                v = memo[id(e)] = self._op(
                    e, body, memo, lambda x: self._emit_loop(x, pre, body, members, memo),
                    dest)
        if dest is not None and v is not dest:
            body.append(_Ins("COPY", dest, v))
            return dest
        return v

    def _constant(self, e: Expr) -> _V:
        p = self.p
        if isinstance(e, Const):
            return p.const(("value", e.value))
        if isinstance(e, Ref):
            return p.const(("node", e.target.name))
        return p.const(("expr", id(e)), e)

    def _op(self, e: Expr, code: list[_Ins], memo, sub, dest: _V | None) -> _V:
        """One varying expression node: its operands' code (by ``sub``), then its own; an
        operation already done on the same registers (another line's identical term) is
        not done again, its register is read (every register is written once)."""
        d = dest if dest is not None else _V()
        v = self._op_code(e, code, sub, d)
        if dest is None and code is self._top and v is d and code and code[-1].d is d:
            ins = code[-1]
            key = (ins.op, ins.k, *(_key(getattr(ins, f)) for f in ("a", "b", "c")))
            same = self._done.get(key)
            if same is not None:
                code.pop()
                return same
            self._done[key] = v
        return v

    def _op_code(self, e: Expr, code: list[_Ins], sub, d: _V) -> _V:
        """Code for ``e`` ending in an instruction that writes ``d``; ``d``, or the register
        of what ``e`` only passes on (a line, an input, ``or_na``'s argument)."""
        if isinstance(e, BinOp):
            a, b = sub(e.a), sub(e.b)
            code.append(_Ins(_BIN[e.op], d, a, b))
        elif isinstance(e, Compare):
            a, b = sub(e.a), sub(e.b)
            code.append(_Ins(_CMP[e.op], d, a, b))
        elif isinstance(e, Neg):
            code.append(_Ins("NEG", d, sub(e.a)))
        elif isinstance(e, Func):
            if e.name == "if":
                c, a, b = (sub(x) for x in e.args)
                code.append(_Ins("IF", d, c, a, b))
            elif e.name == "floor":
                code.append(_Ins("FLOOR", d, sub(e.args[0])))
            elif e.name == "or_na":
                return sub(e.args[0])
            else:
                a, b = sub(e.args[0]), sub(e.args[1])
                code.append(_Ins(_FN2[e.name], d, a, b))
        elif isinstance(e, Ref):
            return self._node(e.target, code)
        elif isinstance(e, Input):
            return self._load("LOADS", "input", e.name)
        elif isinstance(e, Chosen):
            a = self._load("LOADS", "input", e.name)
            code.append(_Ins("EQ", d, a, self.p.const(("value", e.code))))
        elif isinstance(e, PathInput):
            code.append(_Ins("GATHER", d, len(self.path_names), len(self.index_exprs)))
            self.path_names.append(e.name)
            self.index_exprs.append(e.index)
        elif isinstance(e, Lag):
            code.append(_Ins("LAG", d, self._node(e.target, code), 0, sub(e.initial),
                             min(e.k, self.p.n)))
        elif isinstance(e, Shift):
            code.append(_Ins("SHIFT", d, self._node(e.target, code), sub(e.k),
                             sub(e.initial), 1 if e.ahead else 0))
        elif isinstance(e, Cumulative):
            code.append(_Ins("CUMSUM", d, self._node(e.target, code)))
        elif isinstance(e, Reduce):
            a = self._node(e.target, code)
            if e.kind == "npv" and not self.p._varies(e.arg):
                # numpy's own discount row (1 + r) ** t: its pow, computed once
                code.append(_Ins("NPVD", d, a, self.p.const(("npv_discount", id(e.arg)),
                                                            e.arg)))
            elif e.kind == "npv":
                code.append(_Ins("NPV", d, a, sub(e.arg)))
            else:
                code.append(_Ins({"total": "TOTAL", "row_min": "RMIN", "row_max": "RMAX"}
                                 [e.kind], d, a))
        else:  # not reached: _compilable refuses anything else
            raise AssertionError(type(e).__name__)
        return d

    # --- running ---

    def relocate(self, where: np.ndarray, n_rows: int) -> tuple[np.ndarray, int]:
        """The code with its constants at their row (``where`` >= 0) or number (``-1 -
        where``), its registers in the rows after the ``n_rows`` constant rows; and the
        rows the machine needs (three more, last, are its scratch rows)."""
        code = self.layout.copy()
        regs = self.regs_at
        field = code[regs]
        is_const = field < self.n_const
        field[is_const] = where[field[is_const]]
        field[~is_const] += n_rows - self.n_const
        code[regs] = field
        return code, n_rows + self.registers + 3

    def run(self, k, ev: _Evaluator, state: dict) -> bool:
        """Run the segment for every scenario of ``ev``; its exports into ``ev.values``.
        False when a line is not finite (nothing is then kept)."""
        s, n = ev.s, ev.n
        code, rows = state[id(self)]
        W = np.empty((rows, SIDE_BY_SIDE * n))  # (see kernel.run)
        for b in range(SIDE_BY_SIDE):
            W[:len(state["rows"]), b * n:(b + 1) * n] = state["rows"]
        scen = np.empty((s, max(1, len(self.scen_names))))
        for j, (kind, name) in enumerate(self.scen_names):
            v = ev.inputs[name] if kind == "input" else ev.values[name]
            scen[:, j] = v[:, 0]
        G = np.empty((max(1, len(self.given_names)), s, n))
        for j, (kind, name) in enumerate(self.given_names):
            G[j] = ev.overrides[name] if kind == "given" else ev.values[name]
        if self.path_names:
            years = max(ev.paths[x].shape[1] for x in self.path_names)
            P = np.zeros((len(self.path_names), s, years))
            idx = np.empty((len(self.index_exprs), n), dtype=np.int64)
            for j, (name, index) in enumerate(zip(self.path_names, self.index_exprs)):
                values = ev.paths[name]
                P[j, :, :values.shape[1]] = values
                pos = ev.eval(index, None)[0].astype(int) - 1
                pos = np.broadcast_to(pos, (n,))
                if pos.min() < 0 or pos.max() >= values.shape[1]:
                    return False  # out of the path: the numpy evaluator says so
                idx[j] = pos
        else:
            P = np.empty((1, 1, 1))
            idx = np.empty((1, 1), dtype=np.int64)
        X = np.empty((max(1, len(self.exports)), s, n))
        XS = np.empty((s, max(1, len(self.scalar_exports))))
        err = np.zeros(3, dtype=np.int64)
        k.run(code, W, state["numbers"], scen, G, P, idx, X, XS, err, self.p.sum_plan)
        if err[0]:
            return False
        for j, name in enumerate(self.exports):
            ev.values[name] = X[j]
        for j, name in enumerate(self.scalar_exports):
            ev.values[name] = XS[:, j:j + 1]
        return True


#: What a loop period by period computes (the rest of a recursion is computed before it).
_STEPPED = (BinOp, Compare, Neg, Func, Lag, Ref)


def _periodic(e: Expr) -> bool:
    """Whether ``e`` has a value per period (numpy's array of it has a column each)."""
    if isinstance(e, Reduce):
        return False
    if isinstance(e, (TimeRow, Lag, Shift, Cumulative)):
        return True
    if isinstance(e, PathInput):
        return _periodic(e.index)
    if isinstance(e, Ref):
        return isinstance(e.target, Line)
    return any(_periodic(c) for c in children(e))


def _key(v) -> object:
    """An operand as a key: a constant by its index (each use makes a new register
    object), a register by identity, a number as itself."""
    if isinstance(v, _V):
        return ("const", v.const) if v.const >= 0 else id(v)
    return v


def _hold(body: list[_Ins]) -> _Ins | None:
    """The loop ``x = IF(cond, new, lag(x, 1, initial))`` (a fleet kept until it is
    refreshed) as one HOLD instruction: the same selects in one tight loop, instead of two
    dispatched instructions per period."""
    if len(body) != 2:
        return None
    lag, pick = body
    if not (lag.op == "LAG" and pick.op == "IF" and lag.k == 1 and lag.a is pick.d
            and pick.c is lag.d and pick.a is not pick.d and pick.b is not pick.d
            and pick.a is not lag.d and pick.b is not lag.d and lag.c is not pick.d):
        return None
    return _Ins("HOLD", pick.d, pick.a, pick.b, lag.c)


def _targets(node: Node) -> list[Node]:
    """The nodes an expression reads (same period, lagged, shifted, summed)."""
    if node.expr is None:
        return []
    return [e.target for e in walk(node.expr) if getattr(e, "target", None) is not None]


# --- layout: registers to rows -------------------------------------------------------------

_OPS = {name: i for i, name in enumerate(
    "MUL ADD SUB DIV IF MAX MIN GT EQ LE LT GE NE POW NEG FLOOR AND OR "
    "LOADS LOADG GATHER LAG SHIFT CUMSUM TOTAL RMIN RMAX NPV "
    "EXPORT EXPORTS CHECK COPY HOLD NPVD LOOP".split())}


#: Operations that write their whole result row (a CHECK after them can be fused).
_FUSABLE = ("MUL ADD SUB DIV IF MAX MIN GT EQ LE LT GE NE POW NEG FLOOR AND OR LOADS LOADG "
            "GATHER LAG SHIFT CUMSUM COPY HOLD").split()
_CHECKED = 64  # kernel.CHECKED (kept equal by a test)


def _layout(code: list[_Ins], n_const: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The program as an int array (constants as their index, registers given rows from
    ``n_const`` up, a row reused once its value is read no more), where it holds
    registers and constants, and the number of register rows."""
    flat: list[_Ins] = []
    loops: list[tuple[int, int]] = []  # (position of LOOP, position after its body)
    for ins in code:
        if ins.op == "LOOP":
            start = len(flat)
            flat.append(ins)
            flat.extend(ins.body)
            ins.a = len(ins.body)
            loops.append((start, len(flat)))
        else:
            flat.append(ins)
    # Live range of each register: first write to last read.
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    regs: dict[int, _V] = {}
    for pos, ins in enumerate(flat):
        for f in ("a", "b", "c", "d"):
            v = getattr(ins, f)
            if isinstance(v, _V) and v.const < 0:
                regs[id(v)] = v
                first.setdefault(id(v), pos)
                last[id(v)] = pos
    for start, stop in loops:  # read across periods: live through the whole loop
        inside = {}
        for pos in range(start + 1, stop):
            ins = flat[pos]
            for f in ("a", "b", "c", "d"):
                v = getattr(ins, f)
                if isinstance(v, _V) and v.const < 0:
                    inside.setdefault(id(v), []).append((pos, f == "d"))
        for r, uses in inside.items():
            writes = [pos for pos, w in uses if w]
            reads = [pos for pos, w in uses if not w]
            local = (first[r] > start and last[r] < stop and writes
                     and all(pos > min(writes) for pos in reads))
            if not local:
                first[r] = min(first[r], start)
                last[r] = max(last[r], stop - 1)
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for r in regs:
        starts.setdefault(first[r], []).append(r)
        ends.setdefault(last[r], []).append(r)
    row: dict[int, int] = {}
    free: list[int] = []
    top = n_const
    for pos in range(len(flat)):
        for r in starts.get(pos, ()):
            if free:
                row[r] = free.pop()
            else:
                row[r] = top
                top += 1
        for r in ends.get(pos, ()):
            free.append(row[r])
    out = np.zeros((len(flat), 6), dtype=np.int64)
    regs_at = np.zeros((len(flat), 6), dtype=bool)
    for pos, ins in enumerate(flat):
        vals = [_OPS[ins.op]]
        for j, f in enumerate(("d", "a", "b", "c"), start=1):
            v = getattr(ins, f)
            regs_at[pos, j] = isinstance(v, _V)
            vals.append((v.const if v.const >= 0 else row[id(v)]) if isinstance(v, _V)
                        else int(v))
        vals.append(int(ins.k))
        out[pos] = vals
    # A CHECK of the line the operation before it wrote (outside a loop) is done by that
    # operation, on the row still in cache: one dispatch less per line.
    in_loop = np.zeros(len(flat), dtype=bool)
    for start, stop in loops:
        in_loop[start:stop] = True
    keep = np.ones(len(flat), dtype=bool)
    check, fusable = _OPS["CHECK"], {_OPS[x] for x in _FUSABLE}
    for pos in range(1, len(flat)):
        if (out[pos, 0] == check and not in_loop[pos - 1] and out[pos - 1, 0] in fusable
                and regs_at[pos - 1, 1] and out[pos - 1, 1] == out[pos, 2]):
            out[pos - 1, 0] += _CHECKED
            keep[pos] = False
    return out[keep], regs_at[keep], top - n_const
