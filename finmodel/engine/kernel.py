"""The loop a compiled Monte Carlo chunk runs: a small register machine over rows.

Plain Python written for numba (``finmodel.engine.compiled`` compiles it once per install,
``cache=True``). Each instruction is a row of ``code``: ``(op, d, a, b, c, k)``; every value
is a row of ``W`` (one value per period: a scenario-level value fills its row), so one
scenario's whole model lives in a few hundred rows that stay in the CPU's cache while the
numpy evaluator streams each line of 600 scenarios through memory.

Every operation is the numpy evaluator's, element for element: the same IEEE operations in
the same order (``pow`` is the C library's in both; numpy may use its own SIMD ``pow`` on
AVX-512 CPUs, not tested here), sums over a row in numpy's pairwise order, running sums
left to right, max/min ties of +0 and -0 as numpy breaks them. A non-finite line stops the loop and is reported in
``err`` (the caller then lets the numpy evaluator name it, as it always has).

Importing this module imports numba (an optional dependency, ``pip install
finmodel[fast]``): only ``finmodel.engine.compiled`` does, when a compiled run is asked for.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Division by zero gives inf/NaN as in numpy (numba's default raises, as Python does);
# no fastmath, so no operation is reordered or fused.
_jit = njit(cache=True, nogil=True, error_model="numpy")

# Operation codes (the order is the dispatch order: the commonest first).
MUL, ADD, SUB, DIV, IF, MAX, MIN, GT, EQ, LE, LT, GE, NE, POW, NEG, FLOOR, AND, OR = range(18)
LOADS, LOADG, GATHER, LAG, SHIFT, CUMSUM, TOTAL, RMIN, RMAX, NPV = range(18, 28)
EXPORT, EXPORTS, CHECK, COPY, HOLD, NPVD, LOOP = range(28, 35)
EXPONENT = 0x7FF0000000000000  # a float64's exponent bits
CHECKED = 64  # added to an operation whose result, a line, is then checked (a fused CHECK)


def sum_plan(n: int) -> np.ndarray:
    """numpy's pairwise summation order for ``n`` values (``pairwise_sum`` of
    numpy/_core/src/umath/loops_utils.h.src: halves, in multiples of 8, down to blocks of at
    most 128) as a postfix program: rows ``(0, start, length)`` push a block's sum, rows
    ``(1, 0, 0)`` add the top two. The machine has no recursion (numba's cache cannot
    load recursive or mutually calling functions reliably), so the tree is laid out here."""
    out: list[tuple[int, int, int]] = []

    def split(lo: int, m: int) -> None:
        if m <= 128:
            out.append((0, lo, m))
            return
        m2 = m // 2
        m2 -= m2 % 8
        split(lo, m2)
        split(lo + m2, m - m2)
        out.append((1, 0, 0))

    split(0, n)
    return np.array(out, dtype=np.int64).reshape(-1, 3)


@_jit
def run(code: np.ndarray, W: np.ndarray, K: np.ndarray, scen: np.ndarray, G: np.ndarray,
        P: np.ndarray, idx: np.ndarray, X: np.ndarray, XS: np.ndarray, err: np.ndarray,
        plan: np.ndarray) -> None:
    """Run ``code`` for every scenario of ``scen``, ``B = W.shape[1] // n`` scenarios at a
    time side by side: row r of ``W`` holds r's value for scenario i0 + b in columns
    ``b * n`` to ``(b + 1) * n``, so an element-wise operation is one loop over all B
    (one dispatch for B scenarios) and sequential ones (running sums) run B chains.

    Rows of ``W`` from ``code``'s first register up are the machine's; the rows below
    hold constants (written once, B times over); the last three are scratch. An operand
    ``a``, ``b`` or ``c`` below 0 is the number ``K[-1 - a]``, a constant that is one
    value for every period.

    ``scen`` (S, k): scenario-level inputs; ``G`` (g, S, n): given lines; ``P`` (p, S,
    years): per-scenario yearly paths, read at positions ``idx`` (q, n); ``X`` (x, S, n)
    and ``XS`` (S, y): the lines and scenario-level values exported; ``plan``: the order of
    a row's sum (:func:`sum_plan`). ``err`` gets (1, row, first scenario) at the first
    non-finite line, (2, instruction, first scenario) at a shift by a non-finite count.
    One function, no calls: see :func:`sum_plan`.
    """
    n = X.shape[2]
    B = W.shape[1] // n
    m = code.shape[0]
    Wi = W.view(np.int64)
    TA, TB, TC = W.shape[0] - 3, W.shape[0] - 2, W.shape[0] - 1
    stack = np.empty(plan.shape[0] + 1)
    S = scen.shape[0]
    for i0 in range(0, S, B):
        nb = min(B, S - i0)  # scenarios in this pass
        L = nb * n  # elements of a row in this pass
        pc = 0
        pending = -1  # the row of a line to check once its operation is done
        while pc <= m:
            if pending >= 0:  # CHECKED: as CHECK below, on the row just written
                lowest = EXPONENT
                for j in range(L):
                    lowest = min(lowest, (Wi[pending, j] & EXPONENT) ^ EXPONENT)
                if lowest == 0:
                    err[0], err[1], err[2] = 1, pending, i0
                    return
                pending = -1
            if pc == m:
                break
            op, d, a, b, c, k = (code[pc, 0], code[pc, 1], code[pc, 2], code[pc, 3],
                                 code[pc, 4], code[pc, 5])
            if op >= CHECKED:
                op -= CHECKED
                pending = d
            if op == LOOP:  # the next ``a`` instructions, period by period
                for t in range(n):
                    for q in range(pc + 1, pc + 1 + a):
                        o, dq, aq, bq, cq, kq = (code[q, 0], code[q, 1], code[q, 2],
                                                 code[q, 3], code[q, 4], code[q, 5])
                        for s_ in range(nb):
                            e = s_ * n + t
                            u = K[-1 - aq] if aq < 0 else W[aq, e]
                            v = K[-1 - bq] if bq < 0 else W[bq, e]
                            w = K[-1 - cq] if cq < 0 else W[cq, e]
                            if o == MUL:
                                W[dq, e] = u * v
                            elif o == ADD:
                                W[dq, e] = u + v
                            elif o == SUB:
                                W[dq, e] = u - v
                            elif o == DIV:
                                W[dq, e] = u / v
                            elif o == IF:
                                W[dq, e] = v if u != 0.0 else w
                            elif o == MAX:
                                W[dq, e] = u if (u > v or u != u) else v
                            elif o == MIN:
                                W[dq, e] = u if (u < v or u != u) else v
                            elif o == LAG:  # (of a line that is one number: that number)
                                if t >= kq:
                                    W[dq, e] = K[-1 - aq] if aq < 0 else W[aq, e - kq]
                                else:
                                    W[dq, e] = w
                            elif o == COPY:
                                W[dq, e] = u
                            elif o == GT:
                                W[dq, e] = 1.0 if u > v else 0.0
                            elif o == EQ:
                                W[dq, e] = 1.0 if u == v else 0.0
                            elif o == LE:
                                W[dq, e] = 1.0 if u <= v else 0.0
                            elif o == LT:
                                W[dq, e] = 1.0 if u < v else 0.0
                            elif o == GE:
                                W[dq, e] = 1.0 if u >= v else 0.0
                            elif o == NE:
                                W[dq, e] = 1.0 if u != v else 0.0
                            elif o == POW:
                                W[dq, e] = u ** v
                            elif o == NEG:
                                W[dq, e] = -u
                            elif o == FLOOR:
                                W[dq, e] = np.floor(u)
                            elif o == AND:
                                W[dq, e] = 1.0 if (u != 0.0 and v != 0.0) else 0.0
                            else:  # OR (the compiler puts nothing else in a loop)
                                W[dq, e] = 1.0 if (u != 0.0 or v != 0.0) else 0.0
                pc += 1 + a
                continue
            # Element-wise operations: one loop over the row of every scenario of the pass
            # (from 0, so the compiler knows the index is not negative and vectorises it).
            # A number operand of the commonest operations is read as a number; for the
            # others it is first written out as a row.
            if op <= DIV and (a < 0 or b < 0):
                if b < 0:
                    v = K[-1 - b]
                    if op == MUL:
                        for j in range(L):
                            W[d, j] = W[a, j] * v
                    elif op == ADD:
                        for j in range(L):
                            W[d, j] = W[a, j] + v
                    elif op == SUB:
                        for j in range(L):
                            W[d, j] = W[a, j] - v
                    else:
                        for j in range(L):
                            W[d, j] = W[a, j] / v
                else:
                    v = K[-1 - a]
                    if op == MUL:
                        for j in range(L):
                            W[d, j] = v * W[b, j]
                    elif op == ADD:
                        for j in range(L):
                            W[d, j] = v + W[b, j]
                    elif op == SUB:
                        for j in range(L):
                            W[d, j] = v - W[b, j]
                    else:
                        for j in range(L):
                            W[d, j] = v / W[b, j]
                pc += 1
                continue
            if op == IF and (a < 0 or b < 0 or c < 0):  # a number condition or branch
                if a < 0:  # one branch for every period
                    src = b if K[-1 - a] != 0.0 else c
                    if src < 0:
                        v = K[-1 - src]
                        for j in range(L):
                            W[d, j] = v
                    else:
                        for j in range(L):
                            W[d, j] = W[src, j]
                elif b < 0 and c < 0:
                    u, v = K[-1 - b], K[-1 - c]
                    for j in range(L):
                        W[d, j] = u if W[a, j] != 0.0 else v
                elif b < 0:
                    u = K[-1 - b]
                    for j in range(L):
                        v = W[c, j]
                        W[d, j] = u if W[a, j] != 0.0 else v
                else:
                    v = K[-1 - c]
                    for j in range(L):
                        u = W[b, j]
                        W[d, j] = u if W[a, j] != 0.0 else v
                pc += 1
                continue
            if MAX <= op <= NE and b < 0 and a >= 0:  # against a number
                v = K[-1 - b]
                if op == MAX:
                    for j in range(L):
                        u = W[a, j]
                        W[d, j] = u if (u > v or u != u) else v
                elif op == MIN:
                    for j in range(L):
                        u = W[a, j]
                        W[d, j] = u if (u < v or u != u) else v
                elif op == GT:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] > v else 0.0
                elif op == EQ:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] == v else 0.0
                elif op == LE:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] <= v else 0.0
                elif op == LT:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] < v else 0.0
                elif op == GE:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] >= v else 0.0
                else:  # NE
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] != v else 0.0
                pc += 1
                continue
            if (op == LAG or op == HOLD) and c < 0 and a >= 0 and (op == LAG or b >= 0):
                # a number before the first period, the other operands rows
                v = K[-1 - c]
                for s_ in range(nb):
                    o_ = s_ * n
                    if op == LAG:
                        for j in range(min(k, n)):
                            W[d, o_ + j] = v
                        for j in range(k, n):
                            W[d, o_ + j] = W[a, o_ + j - k]
                    else:
                        for t in range(n):
                            if W[a, o_ + t] != 0.0:
                                W[d, o_ + t] = W[b, o_ + t]
                            else:
                                W[d, o_ + t] = W[d, o_ + t - 1] if t >= 1 else v
                pc += 1
                continue
            if a < 0:
                v = K[-1 - a]
                for j in range(L):
                    W[TA, j] = v
                a = TA
            if b < 0:
                v = K[-1 - b]
                for j in range(L):
                    W[TB, j] = v
                b = TB
            if c < 0:
                v = K[-1 - c]
                for j in range(L):
                    W[TC, j] = v
                c = TC
            if op <= POW:
                if op == MUL:
                    for j in range(L):
                        W[d, j] = W[a, j] * W[b, j]
                elif op == ADD:
                    for j in range(L):
                        W[d, j] = W[a, j] + W[b, j]
                elif op == SUB:
                    for j in range(L):
                        W[d, j] = W[a, j] - W[b, j]
                elif op == DIV:
                    for j in range(L):
                        W[d, j] = W[a, j] / W[b, j]
                elif op == IF:  # a: the condition, b: then, c: else
                    for j in range(L):  # (both read first: a select, not a branch)
                        u, v = W[b, j], W[c, j]
                        W[d, j] = u if W[a, j] != 0.0 else v
                elif op == MAX:  # np.maximum: NaN if either is; a tie (+0, -0) gives the
                    # second, as numpy's loops do
                    for j in range(L):
                        u, v = W[a, j], W[b, j]
                        W[d, j] = u if (u > v or u != u) else v
                elif op == MIN:
                    for j in range(L):
                        u, v = W[a, j], W[b, j]
                        W[d, j] = u if (u < v or u != u) else v
                elif op == GT:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] > W[b, j] else 0.0
                elif op == EQ:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] == W[b, j] else 0.0
                elif op == LE:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] <= W[b, j] else 0.0
                elif op == LT:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] < W[b, j] else 0.0
                elif op == GE:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] >= W[b, j] else 0.0
                elif op == NE:
                    for j in range(L):
                        W[d, j] = 1.0 if W[a, j] != W[b, j] else 0.0
                else:  # POW
                    for j in range(L):
                        W[d, j] = W[a, j] ** W[b, j]
            elif op == NEG:
                for j in range(L):
                    W[d, j] = -W[a, j]
            elif op == FLOOR:
                for j in range(L):
                    W[d, j] = np.floor(W[a, j])
            elif op == AND:
                for j in range(L):
                    W[d, j] = 1.0 if (W[a, j] != 0.0 and W[b, j] != 0.0) else 0.0
            elif op == OR:
                for j in range(L):
                    W[d, j] = 1.0 if (W[a, j] != 0.0 or W[b, j] != 0.0) else 0.0
            elif op == COPY:
                for j in range(L):
                    W[d, j] = W[a, j]
            elif op == CUMSUM and nb == 2:  # the two running sums side by side
                h = n
                acc0, acc1 = W[a, 0], W[a, h]
                W[d, 0], W[d, h] = acc0, acc1
                for j in range(1, n):
                    acc0 = acc0 + W[a, j]
                    acc1 = acc1 + W[a, h + j]
                    W[d, j] = acc0
                    W[d, h + j] = acc1
            elif op == CHECK:  # finite unless the exponent bits are all ones (an integer
                # minimum over the row's bits: vectorised, unlike a float sum)
                lowest = EXPONENT
                for j in range(L):
                    lowest = min(lowest, (Wi[a, j] & EXPONENT) ^ EXPONENT)
                if lowest == 0:
                    err[0], err[1], err[2] = 1, k, i0
                    return
            else:  # one scenario's row at a time
                for s_ in range(nb):
                    i = i0 + s_
                    o_ = s_ * n
                    if op == LOADS:
                        v = scen[i, a]
                        for j in range(n):
                            W[d, o_ + j] = v
                    elif op == LOADG:
                        for j in range(n):
                            W[d, o_ + j] = G[a, i, j]
                    elif op == GATHER:
                        for j in range(n):
                            W[d, o_ + j] = P[a, i, idx[b, j]]
                    elif op == LAG:  # k periods earlier, ``c`` before
                        for j in range(min(k, n)):
                            W[d, o_ + j] = W[c, o_ + j]
                        for j in range(k, n):
                            W[d, o_ + j] = W[a, o_ + j - k]
                    elif op == SHIFT:  # b's periods earlier (k = 0) or later (k = 1)
                        sh = W[b, o_]
                        if not np.isfinite(sh):  # numpy's general path: let it decide
                            err[0], err[1], err[2] = 2, pc, i
                            return
                        step = int(np.rint(sh))
                        off = step if k == 1 else -step
                        for j in range(n):
                            src = j + off
                            W[d, o_ + j] = W[a, o_ + src] if 0 <= src < n else W[c, o_ + j]
                    elif op == CUMSUM:
                        acc = W[a, o_]
                        W[d, o_] = acc
                        for j in range(1, n):
                            acc = acc + W[a, o_ + j]
                            W[d, o_ + j] = acc
                    elif op == HOLD:  # b where a is not 0, else one period earlier (c first)
                        for t in range(n):
                            if W[a, o_ + t] != 0.0:
                                W[d, o_ + t] = W[b, o_ + t]
                            else:
                                W[d, o_ + t] = W[d, o_ + t - 1] if t >= 1 else W[c, o_ + t]
                    elif op == TOTAL or op == NPV or op == NPVD:
                        if op == NPV:  # sum(row / (1 + rate) ** period), periods from 1
                            for j in range(n):  # (the rate may change with the period)
                                g = 1.0 + W[b, o_ + j]
                                W[d, o_ + j] = W[a, o_ + j] / g ** float(j + 1)
                            src = d
                        elif op == NPVD:  # the same, (1 + rate) ** period given as row b
                            for j in range(n):
                                W[d, o_ + j] = W[a, o_ + j] / W[b, o_ + j]
                            src = d
                        else:
                            src = a
                        top = 0
                        for r in range(plan.shape[0]):
                            if plan[r, 0] == 1:
                                top -= 1
                                stack[top - 1] = stack[top - 1] + stack[top]
                                continue
                            s0, ln = o_ + plan[r, 1], plan[r, 2]
                            if ln < 8:
                                res = 0.0
                                for j in range(s0, s0 + ln):
                                    res += W[src, j]
                            else:
                                r0, r1, r2, r3 = (W[src, s0], W[src, s0 + 1], W[src, s0 + 2],
                                                  W[src, s0 + 3])
                                r4, r5, r6, r7 = (W[src, s0 + 4], W[src, s0 + 5],
                                                  W[src, s0 + 6], W[src, s0 + 7])
                                q = 8
                                while q < ln - (ln % 8):
                                    j = s0 + q
                                    r0 += W[src, j]
                                    r1 += W[src, j + 1]
                                    r2 += W[src, j + 2]
                                    r3 += W[src, j + 3]
                                    r4 += W[src, j + 4]
                                    r5 += W[src, j + 5]
                                    r6 += W[src, j + 6]
                                    r7 += W[src, j + 7]
                                    q += 8
                                res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                                while q < ln:
                                    res += W[src, s0 + q]
                                    q += 1
                            stack[top] = res
                            top += 1
                        v = 0.0 + stack[0]  # numpy adds the sum to its identity: -0 -> +0
                        for j in range(n):
                            W[d, o_ + j] = v
                    elif op == RMIN or op == RMAX:
                        v = W[a, o_]
                        for j in range(1, n):
                            u = W[a, o_ + j]
                            if u != u or v != v:
                                v = u if u != u else v
                            elif (u < v) if op == RMIN else (u > v):
                                v = u
                        for j in range(n):
                            W[d, o_ + j] = v
                    elif op == EXPORT:
                        for j in range(n):
                            X[d, i, j] = W[a, o_ + j]
                    elif op == EXPORTS:
                        XS[i, d] = W[a, o_]
            pc += 1
