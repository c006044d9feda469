"""The warehouse's SQL, one statement a file: `sql/<area>/<step>.sql`.

`load("scoring/lock_night")` returns the text of `sql/scoring/lock_night.sql`. Parameters
are SQLAlchemy's named binds (`:service_date`); identifiers never come from data. A
template (`*.sql.j2`) is rendered with `render`. The feature query's rendered text is
checked in beside its template (`features/features.golden.sql`, `make golden`) so that a
reviewer sees the SQL diff.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

HOME = Path(__file__).resolve().parent


@cache
def load(name: str) -> str:
    """The text of `sql/<name>.sql`; a missing file is a KeyError naming it."""
    path = HOME / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no SQL statement {name!r} (looked for {path})")
    return path.read_text()


@cache
def _templates() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HOME)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(name: str, **params: Any) -> str:
    """Render the Jinja2 template `sql/<name>.sql.j2` with `params` (code's values only:
    identifiers and constants, never data, which goes in as bind parameters)."""
    return _templates().get_template(f"{name}.sql.j2").render(**params)
