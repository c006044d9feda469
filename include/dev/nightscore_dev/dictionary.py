"""`make dictionary`: docs/data-dictionary.md from a freshly migrated warehouse.

A throwaway warehouse database on the configured server (NIGHTSCORE_ADMIN_URL, else user
postgres on the warehouse's host) is migrated, read as the analyst role exactly as
`nightscore dictionary` reads it, and dropped: the demo's warehouse is not touched, and
the file does not depend on what revision it is at. The tests compare the checked-in file
with the same output.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from sqlalchemy import create_engine, make_url

from nightscore.config import load_settings
from nightscore.warehouse import dictionary, upgrade
from nightscore.warehouse.db import admin_url, analyst_url, engine_for
from nightscore_dev.stack.postgres import drop_database


def render() -> str:
    """The data dictionary's Markdown, from a warehouse migrated for the purpose."""
    settings = load_settings()
    name = f"nightscore_dictionary_{uuid.uuid4().hex[:10]}"
    url = make_url(settings.warehouse_sqlalchemy_url).set(database=name)
    scratch = settings.replace(warehouse_url=url.render_as_string(hide_password=False))
    admin = admin_url(settings).render_as_string(hide_password=False)
    try:
        upgrade(scratch)
        engine = create_engine(analyst_url(scratch))
        try:
            with engine.connect() as conn:
                return dictionary.markdown(dictionary.read(conn))
        finally:
            engine.dispose()
    finally:
        engine_for(scratch).dispose()
        drop_database(admin, name)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nightscore_dev.dictionary OUTPUT.md", file=sys.stderr)
        return 2
    Path(args[0]).write_text(render())
    print(f"wrote {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
