"""Where the GP baseline can edit a program: one walk over its syntax tree.

Each site is a place where one edit kind applies. Sites in ``make_walker`` and the functions it
refers to weigh 1; sites in functions it never refers to weigh ``OFF_PATH_WEIGHT``.
"""

from __future__ import annotations

import ast
import functools
from collections import Counter
from dataclasses import dataclass, field

from evolution.mutation._source import Source

EDIT_KINDS = (
    "perturb_literal",
    "duplicate_statement",
    "delete_statement",
    "change_loop_bound",
    "swap_muscle_ends",
    "add_muscle",
)
"""The GP edit kinds; each ``Child.message`` of ``GPMutation`` starts with one, ``_`` as spaces."""

OFF_PATH_WEIGHT = 0.25
ENTRY_POINT = "make_walker"

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_NEVER_EDITED = (
    *_FUNCTIONS,
    ast.Return,
    ast.ClassDef,
    ast.Pass,
    ast.Global,
    ast.Nonlocal,
    ast.Import,
    ast.ImportFrom,
)  # statements never duplicated or deleted
_TIGHT = (ast.UnaryOp, ast.Attribute, ast.Await)  # a negative number here needs ( )


@dataclass(eq=False, slots=True)
class Scope:
    """A function (or the module, or a class body) and whether ``make_walker`` reaches it."""

    function: ast.FunctionDef | ast.AsyncFunctionDef | None
    parent: Scope | None
    on_path: bool = True
    loads: Counter[str] = field(default_factory=Counter)  # names read in it, nested functions too
    pending: list = field(default_factory=list)  # (Statement, Names) delete candidates

    @property
    def weight(self) -> float:
        if self.function is None:
            return self.parent.weight if self.parent is not None else 1.0
        return 1.0 if self.on_path else OFF_PATH_WEIGHT


@dataclass(eq=False, slots=True)
class Names:
    """Names a piece of code binds (loop and ``+=`` targets excluded) and reads."""

    stores: set[str] = field(default_factory=set)
    loads: Counter[str] = field(default_factory=Counter)

    def add(self, other: Names) -> None:
        self.stores |= other.stores
        self.loads.update(other.loads)


@dataclass(eq=False, slots=True)
class Literal:
    """A number (``-2.0`` included): ``index_like`` for ints indexing or bounding a range;
    ``tight`` where a negative replacement needs parentheses."""

    node: ast.expr
    value: int | float
    index_like: bool
    tight: bool
    scope: Scope

    @property
    def weight(self) -> float:
        return self.scope.weight


@dataclass(eq=False, slots=True)
class Statement:
    """A statement inside a function that fills its own lines; ``sole`` in its block."""

    node: ast.stmt
    sole: bool
    scope: Scope

    @property
    def weight(self) -> float:
        return self.scope.weight


@dataclass(eq=False, slots=True)
class Call:
    """A call: ``range(...)`` (``arg`` is the bound to change) or ``wc.add_muscle(...)``."""

    node: ast.Call
    scope: Scope
    arg: int = 0

    @property
    def weight(self) -> float:
        return self.scope.weight


@dataclass(eq=False, slots=True)
class MuscleAnchor:
    """An ``add_muscle`` statement after which a muscle between known joints can go."""

    node: ast.stmt
    receiver: str  # e.g. "wc"
    joints: tuple[str, ...]  # joint expressions valid here, e.g. ("center", "sides[0]")
    pair: frozenset[str]  # the anchor's own ends
    scope: Scope

    @property
    def weight(self) -> float:
        return self.scope.weight


def collect_sites(tree: ast.Module, source: Source) -> dict[str, list]:
    """Return every edit site of ``tree`` by kind (``EDIT_KINDS``), in a deterministic order.

    Args:
        tree: The parsed program.
        source: The text ``tree`` was parsed from.
    """
    collector = _Collector(source)
    collector.block(tree.body, Scope(None, None), ())
    collector.mark_reachable()
    return collector.sites


class _Collector:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.sites: dict[str, list] = {kind: [] for kind in EDIT_KINDS}
        self.functions: list[Scope] = []

    def block(self, body: list[ast.stmt], scope: Scope, joints: tuple[str, ...]) -> Names:
        """Visit a statement list; ``joints`` are the joint expressions defined before it."""
        names = Names()
        for i, stmt in enumerate(body):
            joints += tuple(j for j in _joints_defined(stmt, self.source) if j not in joints)
            own = self.statement(stmt, scope, joints)
            if scope.function is not None and not (i == 0 and _is_docstring(stmt)):
                self.statement_sites(stmt, len(body) == 1, scope, joints, own)
            names.add(own)
        return names

    def statement(self, stmt: ast.stmt, scope: Scope, joints: tuple[str, ...]) -> Names:
        """Collect the sites inside ``stmt``; return the names it binds and reads."""
        names, inner = Names(), scope
        if isinstance(stmt, (*_FUNCTIONS, ast.ClassDef)):
            inner, joints = Scope(stmt if isinstance(stmt, _FUNCTIONS) else None, scope), ()
        for name in stmt._fields:
            value = getattr(stmt, name, None)
            if isinstance(value, ast.AST):
                target = name == "target" and isinstance(stmt, (ast.For, ast.AsyncFor, ast.AugAssign))
                self.expressions(value, stmt, scope, names, stores=not target)
            elif isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                names.add(self.block(value, inner, joints))
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, (ast.excepthandler, ast.match_case)):
                        for part in (getattr(item, "type", None), getattr(item, "guard", None)):
                            if part is not None:
                                self.expressions(part, stmt, scope, names)
                        names.add(self.block(item.body, inner, joints))
                    elif isinstance(item, ast.AST) and not isinstance(item, ast.pattern):
                        self.expressions(item, stmt, scope, names)
        if inner is not scope:
            self.close(inner, names)
            names.stores = {stmt.name}
        return names

    def close(self, scope: Scope, names: Names) -> None:
        """A function or class body is done: keep the delete candidates whose names nothing
        else in it reads (deleting ``x = ...`` would leave a later ``x`` undefined)."""
        if scope.function is None:
            return
        scope.loads = names.loads
        self.functions.append(scope)
        for site, own in scope.pending:
            if all(names.loads[name] == own.loads[name] for name in own.stores):
                self.sites["delete_statement"].append(site)
        scope.pending = []

    def statement_sites(
        self, stmt: ast.stmt, sole: bool, scope: Scope, joints: tuple[str, ...], own: Names
    ) -> None:
        if not self.source.owns_lines(stmt):
            return
        if not isinstance(stmt, _NEVER_EDITED):
            site = Statement(stmt, sole, scope)
            self.sites["duplicate_statement"].append(site)
            scope.pending.append((site, own))
        call = _muscle_call(stmt)
        if call is not None and len(joints) >= 2:
            pair = frozenset(self.source.segment(arg) for arg in call.args[:2])
            if len(joints) > 2 or set(joints) != pair:
                receiver = self.source.segment(call.func.value)
                self.sites["add_muscle"].append(MuscleAnchor(stmt, receiver, joints, pair, scope))

    def expressions(
        self, root: ast.AST, parent: ast.AST, scope: Scope, names: Names, *, stores: bool = True
    ) -> None:
        """Collect literal and call sites under ``root`` and the names it binds and reads."""
        stack = [(root, parent, stores)]
        while stack:
            node, parent, record = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is ast.Load:
                    names.loads[node.id] += 1
                elif record:
                    names.stores.add(node.id)
                continue
            if kind is ast.Constant:
                if type(node.value) in (int, float):
                    self.literal(node, node.value, parent, scope)
                continue
            if kind is ast.UnaryOp and type(node.op) is ast.USub and _is_number(node.operand):
                self.literal(node, -node.operand.value, parent, scope)
                continue
            if kind is ast.Call and not any(type(a) is ast.Starred for a in node.args):
                self.call(node, scope)
            for name in _child_fields(kind):
                value = getattr(node, name, None)
                keep = record and not (name == "target" and kind is ast.comprehension)
                if isinstance(value, list):
                    stack.extend((item, node, keep) for item in value if isinstance(item, ast.AST))
                elif isinstance(value, ast.AST):
                    stack.append((value, node, keep))

    def literal(self, node: ast.expr, value: int | float, parent: ast.AST, scope: Scope) -> None:
        index_like = isinstance(value, int) and (
            (isinstance(parent, ast.Subscript) and parent.slice is node) or _is_range(parent)
        )
        tight = (
            isinstance(parent, _TIGHT)
            or (isinstance(parent, ast.BinOp) and (parent.right is node or isinstance(parent.op, ast.Pow)))
            or (isinstance(parent, ast.Subscript) and parent.value is node)
        )
        self.sites["perturb_literal"].append(Literal(node, value, index_like, tight, scope))

    def call(self, node: ast.Call, scope: Scope) -> None:
        if _is_range(node) and 1 <= len(node.args) <= 3:
            for arg in range(min(len(node.args), 2)):  # the start or the stop, never the step
                self.sites["change_loop_bound"].append(Call(node, scope, arg))
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "add_muscle" and len(node.args) >= 2:
            self.sites["swap_muscle_ends"].append(Call(node, scope))

    def mark_reachable(self) -> None:
        """Mark the functions ``make_walker`` refers to, directly or through others, on the
        path; all are on it when there is no ``make_walker``."""
        defs: dict[str, list[Scope]] = {}
        for scope in self.functions:
            defs.setdefault(scope.function.name, []).append(scope)
        if ENTRY_POINT not in defs:
            return
        for scope in self.functions:
            scope.on_path = False
        seen, todo = {ENTRY_POINT}, [ENTRY_POINT]
        while todo:
            for scope in defs[todo.pop()]:
                scope.on_path = True
                fresh = [name for name in scope.loads if name in defs and name not in seen]
                seen.update(fresh)
                todo += fresh


@functools.cache
def _child_fields(kind: type[ast.AST]) -> tuple[str, ...]:
    """The fields of ``kind`` that can hold expressions (not contexts, operators, names)."""
    leaves = {
        "ctx",
        "op",
        "ops",
        "id",
        "attr",
        "arg",
        "name",
        "names",
        "module",
        "level",
        "kind",
        "conversion",
        "type_comment",
        "is_async",
        "value" if kind is ast.Constant else "",
    }
    return tuple(name for name in kind._fields if name not in leaves)


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _is_range(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _muscle_call(stmt: ast.stmt) -> ast.Call | None:
    """The ``x.add_muscle(a, b, ...)`` call that ``stmt`` consists of, if it is one."""
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "add_muscle"
        and len(call.args) >= 2
        and not any(isinstance(a, ast.Starred) for a in call.args[:2])
    ):
        return call
    return None


def _joints_defined(stmt: ast.stmt, source: Source) -> list[str]:
    """Joint expressions ``stmt`` names: ``j = wc.add_joint(...)`` or ``wc.add_muscle(a, b)``."""
    call = _muscle_call(stmt)
    if call is not None:
        return [source.segment(arg) for arg in call.args[:2]]
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
        and stmt.value.func.attr == "add_joint"
    ):
        return [stmt.targets[0].id]
    return []
