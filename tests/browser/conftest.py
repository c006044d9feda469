"""Browser fixtures: a headless Chromium driven by Playwright, and a folder for what a
test wants a person to look at (screenshots).

Playwright cannot download its browsers here, so it drives Debian's build
(`/usr/bin/chromium`). Without it, or without Playwright, the
browser tests are skipped with the reason; in CI (`CI=true`), which installs Chromium
(`.ci/run`), they fail instead: a browser test that silently never runs is no test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
OUTPUT_ROOT = Path(__file__).resolve().parents[2] / "test-output"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{reason}; CI must have it (.ci/run installs Chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A Playwright `Browser` on Chromium, one per test module (Playwright's sync API
    cannot nest, and other modules start their own)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (requirements-dev.txt)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """`test-output/<test name>/` at the repository root (git-ignored), emptied first."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    folder = OUTPUT_ROOT / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder
