"""The catalog's table reference as Markdown (`docs/tables.md` holds this output).

    python -m warehouse.docs
"""

from warehouse.tables import TABLES


def tables_markdown() -> str:
    parts = []
    for t in TABLES.values():
        lines = [f"#### `{t.name}`", "", t.doc[0].upper() + t.doc[1:] + ".", "", "| column | type | meaning |",
                 "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in t.columns]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    print(tables_markdown(), end="")
