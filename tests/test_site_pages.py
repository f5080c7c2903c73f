"""Unit tests of the site's explorer, comparison tables, judges page, downloads, feed, search entries and
git dates (tools/site/{explorer,compare,matrix,judges,downloads,search,gitinfo}.py)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _site_catalog import MALICIOUS_TITLE, write_catalog

from tools.catalog.store import load_catalog
from tools.site.ctx import BaselineInfo, component_anchor
from tools.site.render import make_ctx, render_site

BASELINES = [
    BaselineInfo("attack", "figstep", "2023-gong-figstep", "Typographic jailbreak", []),
    BaselineInfo("defense", "adashield_s", "2024-wang-adashield", "Static shield prompt", [],
                 deviations=[{"what": "prompt", "official": "A", "ours": "B", "why": "<b>c</b>", "effect": "none"}]),
    BaselineInfo("judge", "refusal", None, "Refusal keyword matching",
                 [{"name": "list", "type": "str", "default": "gcg", "doc": "keyword list"}]),
]  # fmt: skip


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory):
    root = write_catalog(tmp_path_factory.mktemp("cat") / "catalog", malicious=True)
    return make_ctx(
        load_catalog(root, check=False),
        BASELINES,
        repo_url="https://github.com/o/r",
        added={"2023-gong-figstep": "2025-01-02T03:04:05+01:00", "2024-evil-title": "2025-02-01T00:00:00Z"},
        added_note="4 paper files are not committed yet",
        build={"commit": "abc123def4567890", "date": "2025-02-01", "source": "last commit"},
    )


@pytest.fixture(scope="module")
def site(ctx) -> dict[str, str]:
    return render_site(ctx)


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr data-f=\"([^\"]*)\"", page)


def test_explorer_has_every_paper_with_its_facets(site: dict[str, str], ctx) -> None:
    page = site["papers/index.md"]
    rows = [json.loads(html.unescape(r)) for r in _rows(page)]
    assert len(rows) == len(ctx.papers) == 6
    figstep = next(r for r in rows if r.get("baseline") == ["yes"])
    assert figstep["category"] == ["attack"] and figstep["model"] == ["llava-1.5-7b"]
    assert figstep["code"] == ["yes"] and figstep["threat"] == ["black-box"] and figstep["year"] == ["2023"]
    # venue: null is "unknown", never "preprint"; a venue facet drops the year
    venues = sorted(v for r in rows for v in r["venue"])
    assert "unknown" in venues and "AAAI" in venues and "preprint" not in page.lower()
    # counts: 4 papers cover attack (3 main + MM-SafetyBench's also)
    assert re.search(r'value="attack"> <span class="atlas-facet__name">Attacks</span> '
                     r'<span class="atlas-facet__n" data-n>4<', page)  # fmt: skip
    # without JavaScript: the facet form is hidden and rows are newest first
    assert '<form class="atlas-facets" hidden' in page
    dates = re.findall(r'data-label="Date" data-sort="([^"]+)"', page)
    assert dates == sorted(dates, reverse=True)
    assert "search: {exclude: true}" in page


def test_explorer_escapes_hostile_values(site: dict[str, str]) -> None:
    page = site["papers/index.md"]
    assert "<script>" not in page and "javascript:alert(4)" not in page.replace("javascript:alert(4))", "")
    evil = [json.loads(html.unescape(r)) for r in _rows(page) if "javascript" in html.unescape(r)]
    assert evil and evil[0]["venue"] == ["[venue](javascript:alert(4))"]  # data, shown only as text
    assert html.escape(MALICIOUS_TITLE.split()[0]) in page or "&lt;script&gt;" in page


def test_explorer_link_encodes_the_filters() -> None:
    from tools.site.explorer import explorer_link

    assert explorer_link("papers/attack.md", category="attack") == "../?category=attack"
    assert explorer_link("tags/models/x.md", model="a&b", q="c d") == "../../../papers/?model=a%26b&amp;q=c+d"


def test_paper_page_pairs_only_the_same_setup(site: dict[str, str]) -> None:
    page = site["papers/2023-gong-figstep.md"]
    same = page.split("### Reported and reproduced on the same setup")[1].split("###")[0]
    # the paper's 71% (refusal judge, LLaVA-1.5-7B, SafeBench) beside the project's 65% on that setup
    assert "71.0%" in same and "65.0%" in same and "Table 9" in same
    assert "84.0%" not in same and "organism" not in same  # manual review and the organism stay apart
    rest = page.split("### Reported by the paper, not reproduced on the same setup")[1]
    assert "84.0%" in rest.split("###")[0]
    assert "### Reproduced by the project on a different setup" in page
    assert "Test-instrument numbers" in page


def test_results_matrix_and_defense_table(site: dict[str, str]) -> None:
    page = site["results/index.md"]
    matrix = page.split('id="matrix-attacks"')[1].split("</table>")[0]
    # two setups: LLaVA on SafeBench and the organism on the bundled set, both judged by refusal
    assert matrix.count("judge refusal") == 2 and "atlas-badge--warn" in matrix  # the organism is labelled
    assert "(no attack: text only)" in matrix and "65.0%" in matrix
    # the attack's own run wins over the undefended reference inside a defense run (90%)
    organism = re.findall(r'data-label="organism · bundled · refusal">(.*?)</td>', matrix)
    assert any("60.0%" in c for c in organism) and not any("90.0%" in c for c in organism)
    defense = page.split('id="defense-results"')[1].split("</table>")[0]
    assert "adashield" in defense and "90.0%" in defense and "20.0%" in defense and "30.0%" in defense
    assert "not measured" in defense  # utility: no run measures it, and the table says so


def test_judges_page_lists_registered_judges(site: dict[str, str]) -> None:
    page = site["judges.md"]
    assert f'id="{component_anchor("judge", "refusal")}"' in page
    assert "keyword list" in page and "not measured yet" in page
    assert re.search(r'data-label="Results scored">3<', page)  # three fixture results use refusal


def test_judges_page_shows_agreement_when_present(ctx) -> None:
    from tools.catalog.schema import Agreement
    from tools.site.judges import render_judges_page

    r = ctx.results[0].model_copy(update={"agreement": [Agreement(judges=("refusal", "human_majority"),
                                                                    kappa=0.61, n=40)]})  # fmt: skip
    page = html.unescape(render_judges_page(make_ctx_like(ctx, [r])))
    assert "human_majority" in page and "0.61" in page and "not measured yet" not in page


def make_ctx_like(ctx, results):
    from tools.site.ctx import Ctx

    return Ctx(
        papers=ctx.papers, vocab=ctx.vocab, results=results, baselines=ctx.baselines, repo_url=ctx.repo_url
    )


def test_baselines_anchors_match_their_links(site: dict[str, str]) -> None:
    ids = set(re.findall(r"\{#([^}]+)\}", site["baselines.md"]))
    assert "defense-adashield-s" in ids and "attack-figstep" in ids
    for page in site.values():
        for anchor in re.findall(r'baselines/#([^"]+)"', page):
            assert anchor in ids, anchor
    assert '<td data-label="Why">&lt;b&gt;c&lt;/b&gt;</td>' in site["baselines.md"]  # deviations, escaped


def test_downloads_and_atom_feed(ctx) -> None:
    from tools.catalog.export import from_json
    from tools.site.downloads import download_files

    files = download_files(ctx, "https://example.org/atlas/")
    assert len(from_json(files["downloads/catalog.json"])) == 6
    assert (
        files["downloads/catalog.csv"].count("\n") >= 7 and files["downloads/catalog.bib"].count("\n@") == 5
    )
    assert json.loads(files["downloads/paper.schema.json"])["title"].startswith("MLLM Safety Atlas")
    root = ET.fromstring(files["feed.xml"])
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    # only papers with a known added date, newest first, in UTC
    assert [e.find("a:updated", ns).text for e in entries] == ["2025-02-01T00:00:00Z", "2025-01-02T02:04:05Z"]
    assert entries[0].find("a:title", ns).text == MALICIOUS_TITLE  # escaped in XML, intact when parsed
    assert entries[1].find("a:link", ns).get("href") == "https://example.org/atlas/papers/2023-gong-figstep/"
    assert root.find("a:updated", ns).text == "2025-02-01T00:00:00Z"


def test_feed_states_its_fallback_when_no_added_date_is_known(ctx) -> None:
    from tools.site.downloads import atom_feed

    bare = make_ctx_like(ctx, [])
    bare.added_note = "the catalog is not in a git repository, so the added dates are unknown"
    root = ET.fromstring(atom_feed(bare, "https://example.org/"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert (
        "publication date" in root.find("a:subtitle", ns).text
        and "not in a git" in root.find("a:subtitle", ns).text
    )
    assert "added date unknown" in root.find("a:entry/a:summary", ns).text


def test_search_entries_are_short_and_escaped(ctx, tmp_path: Path) -> None:
    from tools.site.search import add_paper_entries, paper_entries, trim

    assert trim("a b c d", 3) == "a …" and trim("short", 10) == "short"
    entries = {e["location"]: e for e in paper_entries(ctx)}
    assert len(entries) == 6 and "<script>" not in json.dumps(list(entries.values()))
    assert "&lt;script&gt;" in entries["papers/2024-evil-title/"]["title"]
    assert all(len(e["text"]) < 700 for e in entries.values())
    index = tmp_path / "search_index.json"
    index.write_text(json.dumps({"config": {}, "docs": [
        {"location": "papers/2023-gong-figstep/#bibtex", "title": "BibTeX", "text": "x" * 5000},
        {"location": "methodology/", "title": "Methodology", "text": "kept"}]}))  # fmt: skip
    add_paper_entries(index, ctx)
    docs = json.loads(index.read_text())["docs"]
    assert len(docs) == 7 and docs[0]["location"] == "methodology/"


def test_git_dates(tmp_path: Path) -> None:
    from tools.site.gitinfo import added_dates, build_info

    cat = tmp_path / "catalog"
    (cat / "papers").mkdir(parents=True)
    assert added_dates(cat, ["2024-a-x"])[0] == {} and "not in a git" in added_dates(cat, ["2024-a-x"])[1]
    assert build_info(cat)["source"].startswith("build date")

    def git(*args: str, date: str = "2024-05-06T07:08:09+00:00") -> None:
        env = {
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
            "HOME": str(tmp_path),
            "PATH": "/usr/bin:/bin",
        }
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@x", *args],
                       check=True, capture_output=True, env=env)  # fmt: skip

    git("init", "-q")
    (cat / "papers" / "2024-a-x.yaml").write_text("id: 2024-a-x\n")
    git("add", ".")
    git("commit", "-q", "-m", "one")
    (cat / "papers" / "2024-a-x.yaml").write_text("id: 2024-a-x\ntitle: changed\n")
    (cat / "papers" / "2024-b-y.yaml").write_text("id: 2024-b-y\n")
    git("add", ".")
    git("commit", "-q", "-m", "two", date="2024-06-01T00:00:00+00:00")
    (cat / "papers" / "2024-c-z.yaml").write_text("id: 2024-c-z\n")
    added, note = added_dates(cat, ["2024-a-x", "2024-b-y", "2024-c-z"])
    assert added == {"2024-a-x": "2024-05-06T07:08:09+00:00", "2024-b-y": "2024-06-01T00:00:00+00:00"}
    assert note.startswith("1 paper file is not committed yet")
    info = build_info(cat)
    assert len(info["commit"]) == 40 and info["date"] == "2024-06-01" and "uncommitted" in info["source"]


def test_suggested_facets_are_labelled_wherever_a_paper_is_listed(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "catalog")
    target = next(f for f in sorted((root / "papers").glob("*.yaml")) if "suggested" not in f.read_text())
    target.write_text(target.read_text() + "suggested: true\n")
    catalog = load_catalog(root, check=False)
    pid = next(p.id for p in catalog.papers.values() if p.suggested)
    pages = render_site(make_ctx(catalog, BASELINES))
    row = next(r for r in pages["papers/index.md"].split("<tr ") if f'href="{pid}/"' in r)
    assert ">suggested</span>" in row
    cat = catalog.papers[pid].category
    item = next(i for i in pages[f"papers/{cat}.md"].split("<li>") if pid in i)
    assert ">suggested</span>" in item
    others = [r for r in pages["papers/index.md"].split("<tr ")[1:] if pid not in r]
    assert others and not any(">suggested</span>" in r for r in others)
