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


def built_papers(site: Path) -> list[dict]:
    """The papers the built site was made from (its catalog.json download: the catalog may change while
    the tests run)."""
    import json

    return json.loads((site / "downloads" / "catalog.json").read_text(encoding="utf-8"))


def test_explorer_filters_shares_and_clears(browser: object, real: str, real_site: Path) -> None:
    papers = built_papers(real_site)
    attack = [p for p in papers if p["category"] == "attack" or "attack" in p["also"]]
    n_attack = len(attack)
    n_both = sum(1 for p in attack if "llava-1.5-7b" in p["models"])
    page, problems = new_page(browser)
    page.goto(real + "papers/")
    rows = page.locator("#papers-all tbody tr")
    assert rows.count() == len(papers) > 300
    page.check("input[name=category][value=attack]")
    shown = page.locator("#papers-all tbody tr:not([hidden])")
    assert shown.count() == n_attack
    assert "category=attack" in page.url
    # the count beside a model value is what ticking it would show, given the category filter
    label = page.locator("label:has(input[name=model][value='llava-1.5-7b'])")
    assert label.locator("[data-n]").text_content() == str(n_both)
    page.locator("details[data-facet=model] > summary").press("Enter")  # keyboard: open the facet
    label.locator("input").press("Space")  # keyboard: tick with the space bar
    assert shown.count() == n_both > 0
    shared = page.url
    assert "model=llava-1.5-7b" in shared
    # the shared URL reopens the same view
    other, problems2 = new_page(browser)
    other.goto(shared)
    assert other.locator("#papers-all tbody tr:not([hidden])").count() == n_both
    assert other.locator("input[name=model][value='llava-1.5-7b']").is_checked()
    # text filter: a model's name finds its papers even when it is not among the first three shown
    other.fill("#atlas-q", "FigStep")
    assert 1 <= other.locator("#papers-all tbody tr:not([hidden])").count() <= n_both
    assert "q=FigStep" in other.url
    other.click(".atlas-clear")
    assert other.locator("#papers-all tbody tr:not([hidden])").count() == len(papers)
    assert "?" not in other.url and other.locator("form.atlas-facets input:checked").count() == 0
    assert problems == [] and problems2 == []


def test_explorer_without_javascript_is_a_sorted_list(browser: object, real: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(real + "papers/?category=defense")
    assert page.locator("form.atlas-facets").is_hidden()
    dates = page.locator("#papers-all tbody tr td:nth-child(2)").all_inner_texts()
    assert len(dates) > 300 and dates == sorted(dates, reverse=True)
    context.close()


def test_downloads_and_feed(browser: object, real: str, real_site: Path) -> None:
    import csv
    import io
    import json
    import xml.etree.ElementTree as ET

    papers = {d.parent.name for d in (real_site / "papers").glob("2*/index.html")}  # one page per paper
    page, problems = new_page(browser)
    page.goto(real + "downloads/")
    hrefs = page.locator("#downloads a[download]").evaluate_all("els => els.map(e => e.href)")
    assert len(hrefs) == 4
    got = {h.rsplit("/", 1)[-1]: page.request.get(h) for h in hrefs}
    assert all(r.ok for r in got.values())
    data = json.loads(got["catalog.json"].text())
    assert sorted(p["id"] for p in data) == sorted(papers)
    rows = list(csv.DictReader(io.StringIO(got["catalog.csv"].text())))
    assert len(rows) == len(papers) and rows[0]["id"] in papers
    assert got["catalog.bib"].text().count("\n@") + 1 == len(papers)
    assert json.loads(got["paper.schema.json"].text())["$schema"].startswith("https://json-schema.org/")
    # the feed: well-formed Atom, linked from every page, entries pointing at existing paper pages
    feed_href = page.locator("link[rel=alternate][type='application/atom+xml']").get_attribute("href")
    feed = page.request.get(real + "downloads/" + feed_href if not feed_href.startswith("/") else feed_href)
    assert feed.ok
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(feed.text())
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    for tag in ("a:id", "a:title", "a:updated", "a:author/a:name"):
        assert root.find(tag, ns) is not None, tag
    entries = root.findall("a:entry", ns)
    assert 0 < len(entries) <= 50
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    for e in entries:
        assert e.find("a:title", ns).text and stamp.match(e.find("a:updated", ns).text)
        url = e.find("a:link", ns).get("href")
        path = url.split("/papers/", 1)[1]
        assert (real_site / "papers" / path / "index.html").is_file(), url
    updated = [e.find("a:updated", ns).text for e in entries]
    assert updated == sorted(updated, reverse=True)
    # every page says when the catalog last changed
    assert re.search(r"Catalog last updated \d{4}-\d{2}-\d{2}", page.locator(".atlas-footer").inner_text())
    assert problems == []


SAMPLE = ["", "papers/", "results/", "results/figstep/", "judges/", "baselines/", "downloads/", "timeline/",
          "papers/attack/", "glossary/"]  # fmt: skip


def test_phone_width_has_no_horizontal_overflow(browser: object, real: str, real_site: Path) -> None:
    paper_pages = sorted(p.parent.name for p in (real_site / "papers").glob("2*/index.html"))
    sample = SAMPLE + [f"papers/{p}/" for p in paper_pages[:: max(1, len(paper_pages) // 30)]]
    sample.append("papers/2023-gong-figstep/")
    page = browser.new_page(viewport={"width": 390, "height": 800})
    wide = []
    for path in sample:
        page.goto(real + path)
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        # tables must fit too, not only scroll inside their box
        clipped = page.evaluate(
            "Array.from(document.querySelectorAll('.atlas-scroll')).filter(e => e.scrollWidth > e.clientWidth + 1).length"
        )
        # one-word identifiers in tables break only where allowed (<wbr>), never inside the word
        split = page.evaluate(
            "Array.from(document.querySelectorAll('table code')).filter(c => !/\\s/.test(c.textContent) && "
            "!c.querySelector('wbr') && c.getClientRects().length > 1).map(c => c.textContent)"
        )
        if width > 390 or clipped or split:
            wide.append((path, width, clipped, split))
    assert len(sample) > 35 and wide == []


def test_search_finds_figstep_and_its_page_shows_bibtex_and_results(browser: object, real: str) -> None:
    page, problems = new_page(browser)
    page.goto(real)
    page.click(".md-search__input")
    # the search worker fetches and indexes the whole site first (seconds when idle, far longer on a loaded
    # machine): type only once it says it is ready, so the test waits for the index rather than racing it (the
    # search reacts to key events: a value set by `fill` after the index is ready is never searched)
    page.wait_for_function(
        "() => { const m = document.querySelector('.md-search-result__meta');"
        " return m && m.textContent.trim() !== '' && !/Initializing/.test(m.textContent); }",
        timeout=180000,
    )
    page.locator(".md-search__input").press_sequentially("FigStep")  # key by key, as a reader types
    link = page.locator(".md-search-result__item a[href*='papers/2023-gong-figstep']").first
    link.wait_for(timeout=60000)
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
        for path in ("papers/2024-evil-title/", "papers/attack/", "", "timeline/", "papers/", "downloads/"):
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


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


def broken_anchors(site: Path) -> list[str]:
    """Links with a #fragment (to this page or another) whose target page has no element with that id."""
    ids: dict[Path, set[str]] = {}

    def ids_of(path: Path) -> set[str]:
        if path not in ids:
            parser = _Ids()
            parser.feed(path.read_text(encoding="utf-8"))
            ids[path] = parser.ids
        return ids[path]

    broken = []
    for html_file in site.rglob("*.html"):
        if html_file.name == "404.html":
            continue
        parser = _Links()
        parser.feed(html_file.read_text(encoding="utf-8"))
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.fragment:
                continue
            target = (html_file.parent / unquote(parts.path)).resolve() if parts.path else html_file
            if target.is_dir():
                target = target / "index.html"
            if target.suffix == ".html" and target.exists() and unquote(parts.fragment) not in ids_of(target):
                broken.append(f"{html_file.relative_to(site)} -> {link}")
    return broken


def test_no_broken_in_page_anchors(real_site: Path, evil_site: Path) -> None:
    assert broken_anchors(real_site) == []
    assert broken_anchors(evil_site) == []
