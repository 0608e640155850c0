"""Column expressions in study files: parsed, checked against a whitelist, then evaluated by polars.

Study files use small SQL expressions in several places (a source's ``filter``, a fit's ``filter``, a
``holdout``, computed columns). They are user input, and SQL can do far more than compare columns: a
subquery such as ``(SELECT * FROM read_csv('/etc/passwd'))`` would read files, and table functions
reach the file system. So every expression is parsed with sqlglot (DuckDB dialect) and accepted only
when each node is a column reference, a literal, arithmetic, a comparison, a boolean connective,
``[NOT] LIKE``/``IN``/``BETWEEN``/``IS [NOT] NULL``/``CASE``, or a call of a row-wise scalar function
from ``SCALAR_FUNCTIONS``. Anything else (subqueries, table functions, ``*``, unknown functions,
parameters, several statements) is a ``SpecError`` that names the construct and the field.

    >>> expr = parse_column_expression("run NOT LIKE 'peteish%' AND flops >= 1e21", field="fits.filter")
    >>> sorted(expr.columns)
    ['flops', 'run']
    >>> frame.filter(expr.to_polars())
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import sqlglot
from sqlglot import exp

from scaling.errors import SpecError

# Longest expression text accepted (a filter is a line, not a program).
MAX_LENGTH = 2000

# Node types that may appear anywhere in an accepted expression.
_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
    exp.And, exp.Or, exp.Not, exp.Xor,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Like, exp.ILike, exp.In, exp.Between, exp.Tuple,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.Pow,
    exp.Case, exp.If, exp.Coalesce,
    exp.Cast, exp.TryCast, exp.DataType, exp.DataTypeParam,
    exp.Abs, exp.Ln, exp.Log, exp.Exp, exp.Sqrt, exp.Round, exp.Floor, exp.Ceil,
    exp.Greatest, exp.Least, exp.Lower, exp.Upper, exp.Length,
    exp.RegexpLike, exp.StartsWith,
)

# Row-wise scalar functions a user may call, by the name written in the study file. Calls that sqlglot
# does not know as typed nodes arrive as ``Anonymous`` and are accepted only when named here.
SCALAR_FUNCTIONS = frozenset({
    "abs", "ln", "log", "log10", "log2", "exp", "sqrt", "pow", "power", "round", "floor", "ceil",
    "greatest", "least", "coalesce", "lower", "upper", "length", "starts_with", "regexp_matches", "mean",
})


@dataclass(frozen=True)
class ColumnExpression:
    """A checked expression: its SQL text (as polars will read it) and the columns it reads."""

    text: str
    sql: str
    columns: frozenset[str]

    def to_polars(self) -> pl.Expr:
        return pl.sql_expr(self.sql)


def parse_column_expression(text: object, *, field: str, columns: set[str] | None = None,
                            **where) -> ColumnExpression:
    """Parse ``text`` as one row-wise SQL expression and check it against the whitelist.

    ``columns``, when given, is the set of column names the expression may read; a reference to any
    other column is an error listing the known ones. ``field`` and ``where`` (study, source, ...) locate
    the error.
    """
    if not isinstance(text, str):
        raise SpecError(f"expected an expression as a string, got {type(text).__name__}", field=field, **where)
    if not text.strip():
        raise SpecError("expected an expression, got an empty string", field=field, **where)
    if len(text) > MAX_LENGTH:
        raise SpecError(f"expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed",
                        field=field, **where)
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(f"cannot parse expression {text!r}: {first}", field=field, **where) from None
    if len(statements) != 1 or statements[0] is None:
        raise SpecError(f"expected one expression, got {len(statements)} statements in {text!r}", field=field,
                        **where)
    tree = statements[0]
    referenced: set[str] = set()
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            name = str(node.name).lower()
            if name not in SCALAR_FUNCTIONS:
                raise SpecError(f"function {node.name!r} is not allowed in {text!r}; allowed functions: "
                                f"{', '.join(sorted(SCALAR_FUNCTIONS))}", field=field, **where)
            continue
        if not isinstance(node, _ALLOWED_NODES):
            raise SpecError(f"{_describe(node)} is not allowed in {text!r}: only column references, literals, "
                            f"arithmetic, comparisons, AND/OR/NOT, LIKE, IN, BETWEEN, CASE and scalar functions",
                            field=field, **where)
        if isinstance(node, exp.Column):
            if node.table:
                raise SpecError(f"qualified column {node.sql()!r} is not allowed in {text!r}; name the column "
                                f"alone", field=field, **where)
            referenced.add(node.name)
    if columns is not None:
        unknown = sorted(referenced - set(columns))
        if unknown:
            raise SpecError(f"expression {text!r} reads unknown column(s) {unknown}; known columns: "
                            f"{sorted(columns)}", field=field, **where)
    return ColumnExpression(text=text, sql=_polars_sql(tree), columns=frozenset(referenced))


def _polars_sql(tree: exp.Expression) -> str:
    """SQL text for polars from the checked tree (never the user's text, so what runs is what was checked).

    DuckDB writes logarithms as ``LOG(base, x)`` (and ``LOG(x)`` for base 10); polars reads ``LOG(x, base)``.
    The row-wise ``mean(a, b, ...)`` becomes ``((a) + (b) + ...) / n`` (null when any argument is null).
    """
    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and str(node.name).lower() == "mean":
            args = [exp.Paren(this=a.copy()) for a in node.expressions]
            if not args:
                return exp.Null()
            total = args[0]
            for a in args[1:]:
                total = exp.Add(this=total, expression=a)
            return exp.Paren(this=exp.Div(this=exp.Paren(this=total), expression=exp.Literal.number(len(args))))
        if isinstance(node, exp.Log):
            value, base = (node.expression, node.this) if node.expression is not None else (node.this, None)
            base = base if base is not None else exp.Literal.number(10)
            return exp.Anonymous(this="LOG", expressions=[value.copy(), base.copy()])
        return node

    return tree.copy().transform(fix).sql(dialect="duckdb")


def _describe(node: exp.Expression) -> str:
    if isinstance(node, (exp.Select, exp.Subquery, exp.Union)):
        return "a subquery"
    if isinstance(node, (exp.Table, exp.From)):
        return "a table reference"
    if isinstance(node, exp.Star):
        return "'*'"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()!r}"
    return f"{type(node).__name__} ({node.sql()[:40]!r})"
