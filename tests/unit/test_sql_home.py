"""The warehouse's SQL has a home: one statement a file under include/nightscore/sql/,
every file loaded by the code and every load backed by a file, no statement left in the
modules, and no production module over 600 lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from nightscore import sql

PACKAGE = Path(sql.HOME).parent
LOADED = re.compile(r"""sql\.(load|render)\(\s*["']([a-z_/]+)["']""")
# report_data loads its statements through `_query("<name>")` = sql.load("monitoring/<name>").
QUERIED = re.compile(r"""_query\(["']([a-z_]+)["']\)""")
STATEMENT = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\.\w+\s+SET)\b"
)
# Statements built from code's identifiers, which no bind parameter can carry: the
# generic COPY/upsert adapter (table and column names).
BUILT_FROM_IDENTIFIERS = {"warehouse/io.py"}


def _modules() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE)): path.read_text()
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    }


def _statement_files() -> dict[str, Path]:
    files = {}
    for path in sorted(sql.HOME.rglob("*.sql*")):
        if path.name.endswith(".golden.sql"):
            continue  # the rendering of a template, checked by its own test
        name = str(path.relative_to(sql.HOME)).removesuffix(".j2").removesuffix(".sql")
        files[name] = path
    return files


def _names_in_code() -> set[str]:
    names: set[str] = set()
    for source in _modules().values():
        names |= {name for _, name in LOADED.findall(source)}
        names |= {f"monitoring/{name}" for name in QUERIED.findall(source)}
    return names


def test_every_statement_the_code_loads_exists_and_every_file_is_loaded():
    assert _names_in_code() == set(_statement_files())


@pytest.mark.parametrize(
    "path", [p for p in _statement_files().values() if p.suffix == ".sql"], ids=str
)
def test_one_statement_a_file_with_named_binds(path):
    body = "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("--")
    ).strip()
    statements = [s for s in body.split(";") if s.strip()]
    assert len(statements) == 1 or path.stem == "planner_settings", path
    text(body)  # SQLAlchemy parses its binds


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_module_embeds_sql_or_grows_past_600_lines(module):
    source = _modules()[module]
    if module not in BUILT_FROM_IDENTIFIERS:
        assert not STATEMENT.search(source), STATEMENT.search(source)
    assert len(source.splitlines()) <= 600
