"""The built site in a real browser: Debian's /usr/bin/chromium driven by Playwright (no browser download).

Builds the site twice with `mkdocs build --strict` (the repository's catalog, and a small catalog holding a
malicious title), serves each on localhost and checks what a reader sees.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from _site_catalog import MALICIOUS_TITLE, write_catalog

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


def build(site_dir: Path, catalog: Path | None = None) -> Path:
    """`mkdocs build --strict` of the repository's config into ``site_dir``; fails the test on any warning."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if catalog is not None:
        env["MLLM_SAFETY_CATALOG"] = str(catalog)
    else:
        env.pop("MLLM_SAFETY_CATALOG", None)
    cmd = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "-f",
        str(REPO / "mkdocs.yml"),
        "-d",
        str(site_dir),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return site_dir


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def real_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("site") / "real")


@pytest.fixture(scope="session")
def evil_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cat = write_catalog(tmp_path_factory.mktemp("evilcat") / "catalog", malicious=True)
    return build(tmp_path_factory.mktemp("site") / "evil", cat)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def serve(site: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}/", srv


@pytest.fixture()
def real(real_site: Path) -> Iterator[str]:
    base, srv = serve(real_site)
    yield base
    srv.shutdown()


def new_page(browser: object) -> tuple[object, list[str]]:
    """A page that records console errors, uncaught exceptions and dialogs (alerts) in a list."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))

    def on_dialog(d: object) -> None:
        problems.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", on_dialog)
    return page, problems


def test_home_page_loads_without_console_errors(browser: object, real: str) -> None:
    page, problems = new_page(browser)
    page.goto(real)
    page.wait_for_load_state("networkidle")
    assert page.locator(".atlas-stat").count() >= 6
    assert page.locator("svg.atlas-chart rect").count() > 10
    assert problems == []


def test_attack_table_has_every_attack_paper_and_filters(browser: object, real: str) -> None:
    from tools.catalog.store import load_catalog

    papers = load_catalog(check=False).papers.values()
    n_attack = sum(1 for p in papers if p.category == "attack" or "attack" in p.also)
    page, problems = new_page(browser)
    page.goto(real + "papers/attack/")
    rows = page.locator("#papers-attack tbody tr")
    assert rows.count() == n_attack > 0
    page.fill(".atlas-filter-input", "FigStep")
    visible = page.locator("#papers-attack tbody tr:not([hidden])")
    assert 1 <= visible.count() < n_attack
    assert "FigStep" in visible.first.inner_text()
    assert page.locator(".atlas-count").inner_text().startswith(f"{visible.count()} of {n_attack}")
    page.fill(".atlas-filter-input", "")
    page.click("#papers-attack thead th:nth-child(2)")  # sort by date, ascending
    dates = page.locator("#papers-attack tbody tr td:nth-child(2)").all_inner_texts()
    assert dates == sorted(dates)
    assert problems == []


def test_search_finds_figstep_and_its_page_shows_bibtex_and_results(browser: object, real: str) -> None:
    page, problems = new_page(browser)
    page.goto(real)
    page.click(".md-search__input")
    page.fill(".md-search__input", "FigStep")
    link = page.locator(".md-search-result__item a[href*='papers/2023-gong-figstep']").first
    link.wait_for(timeout=15000)
    link.click()
    page.wait_for_url(re.compile(r".*papers/2023-gong-figstep/.*"))
    page.wait_for_load_state("load")
    assert "FigStep" in page.locator("h1").first.inner_text()
    bib = page.locator("#bibtex-entry")
    bib.wait_for(state="visible", timeout=10000)
    assert bib.inner_text().lstrip().startswith("@") and "2311.05608" in bib.inner_text()
    assert page.locator("button.atlas-copy").is_visible()
    results = page.locator("table.atlas-reported tbody tr, table.atlas-results tbody tr")
    assert results.count() >= 1
    assert problems == []


def test_malicious_title_shows_as_text_and_runs_no_script(browser: object, evil_site: Path) -> None:
    base, srv = serve(evil_site)
    try:
        page, problems = new_page(browser)
        for path in ("papers/2024-evil-title/", "papers/attack/", "", "timeline/"):
            page.goto(base + path)
            page.wait_for_load_state("load")
            assert page.locator("img[src='x'], img[src*='evil'], iframe").count() == 0, path
            assert page.evaluate("document.querySelectorAll('a[href^=\"javascript\"]').length") == 0, path
        page.goto(base + "papers/2024-evil-title/")
        shown = " ".join(page.locator(".atlas-paper h1").inner_text().split())
        assert shown == " ".join(MALICIOUS_TITLE.split())
        assert "<script>alert(1)</script>" in page.title()
        assert problems == []
    finally:
        srv.shutdown()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (
                (tag == "a" and name == "href") or (name == "src") or (tag == "link" and name == "href")
            ):
                self.links.append(value)


def broken_links(site: Path) -> list[str]:
    """Internal links of every built page whose target file does not exist."""
    broken = []
    for html_file in site.rglob("*.html"):
        if html_file.name == "404.html":  # served at any depth, so its links are absolute (from site_url)
            continue
        parser = _Links()
        parser.feed(html_file.read_text(encoding="utf-8"))
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            target = (html_file.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{html_file.relative_to(site)} -> {link}")
    return broken


def test_no_broken_internal_links(real_site: Path, evil_site: Path) -> None:
    assert len(list(real_site.rglob("*.html"))) > 300
    assert broken_links(real_site) == []
    assert broken_links(evil_site) == []
