"""The data dictionary of the `analytics` schema: written into the catalog, read back.

The texts live in one file, `dictionary.yaml` beside this module. `write` puts them in
the catalog (COMMENT ON) at the end of every `nightscore db upgrade`, so a migration that
drops and recreates a view cannot lose them; it writes only the entries the file has, so
a comment a migration gave a column the file does not know stays. `read` reads the
catalog back as the connected role sees it (what a BI tool shows), and `markdown` prints
it: `nightscore dictionary`, checked in as docs/data-dictionary.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from nightscore import sql
from nightscore.errors import DataError
from nightscore.warehouse.roles import quote

log = logging.getLogger(__name__)
SCHEMA = "analytics"
DEFAULT_PATH = Path(__file__).resolve().parent / "dictionary.yaml"
# COMMENT ON needs the relation's own kind (pg_class.relkind).
KINDS = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}


class DictionaryError(DataError, ValueError):
    """The dictionary file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Entry:
    """One relation of the file: its comment and its columns' comments."""

    name: str
    comment: str
    columns: dict[str, str]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str | None


@dataclass(frozen=True)
class Relation:
    """One relation of `analytics` as the catalog describes it."""

    name: str
    kind: str
    comment: str | None
    columns: tuple[Column, ...]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DictionaryError(f"{where}: needs a non-empty text, not {value!r}")
    return " ".join(value.split())


def load(path: Path = DEFAULT_PATH) -> list[Entry]:
    """The file's entries, checked: each relation has a comment and a mapping of columns,
    each a non-empty text."""
    import yaml

    # libyaml's safe loader when built in: 2 ms for this file instead of 150 ms.
    raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(raw, dict) or not raw:
        raise DictionaryError(f"{path}: expected a mapping of {SCHEMA} relations")
    entries = []
    for name, body in raw.items():
        where = f"{path.name}: {SCHEMA}.{name}"
        if not isinstance(body, dict) or set(body) != {"comment", "columns"}:
            raise DictionaryError(f"{where}: needs exactly 'comment' and 'columns'")
        columns = body["columns"]
        if not isinstance(columns, dict) or not columns:
            raise DictionaryError(f"{where}: 'columns' must map column names to texts")
        entries.append(
            Entry(
                name=str(name),
                comment=_text(body["comment"], where),
                columns={str(c): _text(t, f"{where}.{c}") for c, t in columns.items()},
            )
        )
    return entries


def read(conn: Connection) -> list[Relation]:
    """Every relation of `analytics` the connected role may read, with its columns (in
    their order), types and comments, from the catalog."""
    rows = conn.execute(text(sql.load("warehouse/analytics_catalog"))).all()
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.relname, []).append(row)
    return [
        Relation(
            name=name,
            kind=group[0].relkind,
            comment=group[0].relation_comment,
            columns=tuple(Column(r.attname, r.type, r.column_comment) for r in group),
        )
        for name, group in grouped.items()
    ]


def unknown(entries: list[Entry], relations: list[Relation]) -> list[str]:
    """The file's relations and columns that the catalog lacks, as schema.view[.column]."""
    found = {r.name: {c.name for c in r.columns} for r in relations}
    missing = []
    for entry in entries:
        if entry.name not in found:
            missing.append(f"{SCHEMA}.{entry.name}")
            continue
        missing += [
            f"{SCHEMA}.{entry.name}.{c}" for c in entry.columns if c not in found[entry.name]
        ]
    return missing


def undocumented(relations: list[Relation]) -> list[str]:
    """Relations and columns of the catalog that have no comment."""
    bare = []
    for relation in relations:
        if not relation.comment:
            bare.append(f"{SCHEMA}.{relation.name}")
        bare += [f"{SCHEMA}.{relation.name}.{c.name}" for c in relation.columns if not c.comment]
    return bare


def write(conn: Connection, entries: list[Entry] | None = None) -> list[str]:
    """COMMENT ON each relation and column the file names; returns what it names that
    does not exist (skipped, with a warning).

    `conn` is the owner's (the ETL role's). Writing the same texts again changes nothing.
    A stale entry is skipped rather than failing the upgrade: a documentation slip must
    not stop a deployment's migration; the tests fail on it instead.
    """
    entries = load() if entries is None else entries
    relations = {r.name: r for r in read(conn)}
    statements: list[str] = []
    texts: dict[str, str] = {}

    def comment(target: str, value: str) -> None:
        # Bound, not spliced: psycopg2 quotes the text (COMMENT takes no server-side bind).
        key = f"c{len(texts)}"
        statements.append(f"COMMENT ON {target} IS %({key})s")
        texts[key] = value

    for entry in entries:
        relation = relations.get(entry.name)
        if relation is None:
            continue
        name = f"{quote(SCHEMA)}.{quote(entry.name)}"
        comment(f"{KINDS[relation.kind]} {name}", entry.comment)
        present = {c.name for c in relation.columns}
        for column, text_ in entry.columns.items():
            if column in present:
                comment(f"COLUMN {name}.{quote(column)}", text_)
    if statements:  # one round trip for the ~190 comments, not one each
        conn.exec_driver_sql(";\n".join(statements), texts)
    stale = unknown(entries, list(relations.values()))
    if stale:
        log.warning("the data dictionary names what does not exist: %s", ", ".join(stale))
    return stale


HEADER = """\
# Data dictionary: the `{schema}` views

What every view of the `{schema}` schema and each of its columns mean, as the warehouse's
catalog describes them (the comments a BI tool shows). Generated by `nightscore dictionary`
from a migrated warehouse (`make dictionary`); the texts live in
`include/nightscore/warehouse/dictionary.yaml`. Back to [the analysts' guide](analysts.md).

Clock times of the flight record are local times of the airport (New York for departures
and weather, the destination's for arrivals); `timestamp with time zone` columns are
instants, shown in UTC unless a session sets another `TimeZone`.
"""


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


def markdown(relations: list[Relation]) -> str:
    """The catalog as Markdown: per relation, its comment, then its columns' table."""
    lines = [HEADER.format(schema=SCHEMA)]
    # GitHub's anchor of a heading: its text, lower case, without backticks and dots.
    lines += [f"- [`{SCHEMA}.{r.name}`](#{SCHEMA}{r.name})" for r in relations]
    for relation in relations:
        lines += [
            "",
            f"## `{SCHEMA}.{relation.name}`",
            "",
            relation.comment or "(no description)",
            "",
            "| column | type | description |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{c.name}` | {c.type} | {_cell(c.comment or '(no description)')} |"
            for c in relation.columns
        ]
    return "\n".join(lines) + "\n"
