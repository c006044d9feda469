"""The monitoring package's SQL has a home: one statement a file in sql/monitoring/, each
file loaded by the code, no statement left in the modules, and no module over 600 lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from nightscore import sql

PACKAGE = Path(sql.HOME).parent / "monitoring"
HOME = Path(sql.HOME) / "monitoring"
LOADED = re.compile(r"""sql\.load\(f?["']monitoring/(\{?[a-z_]+\}?)["']\)""")
# report_data loads through `_query("<name>")`.
QUERIED = re.compile(r"""_query\(["']([a-z_]+)["']\)""")
STATEMENT = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\.\w+\s+SET)\b"
)


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(PACKAGE.glob("*.py"))}


def _names_in_code() -> set[str]:
    names: set[str] = set()
    for source in _sources().values():
        names |= {n for n in LOADED.findall(source) if not n.startswith("{")}
        names |= set(QUERIED.findall(source))
    return names


def test_every_statement_the_code_loads_exists_and_every_file_is_loaded():
    files = {p.stem for p in HOME.glob("*.sql")}
    assert _names_in_code() == files


@pytest.mark.parametrize("path", sorted(HOME.glob("*.sql")), ids=lambda p: p.stem)
def test_one_statement_a_file_with_named_binds(path):
    statement = sql.load(f"monitoring/{path.stem}")
    body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
    assert body.strip() and ";" not in body.strip().rstrip(";")
    text(statement)  # SQLAlchemy parses its binds


def test_no_module_embeds_sql_or_grows_past_600_lines():
    for name, source in _sources().items():
        assert not STATEMENT.search(source), name
        assert len(source.splitlines()) < 600, name
