"""Unit tests of the site renderer (tools/site/render*.py): pages produced, escaping, links, results display."""

from __future__ import annotations

import re
from pathlib import Path

import markdown
import pytest
from _site_catalog import MALICIOUS_TITLE, write_catalog

from tools.catalog.store import load_catalog
from tools.site.ctx import BaselineInfo
from tools.site.render import make_ctx, render_home_fragments, render_site
from tools.site.svg import papers_per_quarter_svg, rate_bars_svg
from tools.site.util import esc, esc_pre, ext_link, front_matter, href, safe_url

# The Markdown extensions of mkdocs.yml that can interpret text (the hook's pages go through them).
EXTENSIONS = ["admonition", "attr_list", "md_in_html", "tables", "def_list", "toc"]
HOSTILE = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "![](http://evil/x.png)",
    "*bold* _it_ `code`",
    "{: onclick=alert(1) }",
    "</div><div onclick=x>",
    "\\*escaped\\* | a | b |",
    'it\'s "quoted" & <b>bold</b> &amp; #1 &#x27;',
]
BASELINES = [
    BaselineInfo("attack", "figstep", "2023-gong-figstep", "Typographic jailbreak",
                 [{"name": "font_size", "type": "int", "default": 80, "doc": "font size in px"}]),
    BaselineInfo("judge", "refusal", None, "Refusal keyword matching", []),
]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = write_catalog(tmp_path_factory.mktemp("cat") / "catalog", malicious=True)
    ctx = make_ctx(load_catalog(root, check=False), BASELINES, repo_url="https://github.com/o/r")
    pages = render_site(ctx)
    pages["index.md"] = "\n".join(render_home_fragments(ctx).values())
    return pages


def _text(html_text: str) -> str:
    """What a browser shows: tags removed, entities decoded."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def _html(md_text: str) -> str:
    body = re.sub(r"\A---\n.*?\n---\n", "", md_text, flags=re.S)
    return markdown.markdown(body, extensions=EXTENSIONS)


@pytest.mark.parametrize("text", HOSTILE)
def test_esc_renders_as_literal_text_in_html_and_markdown(text: str) -> None:
    for wrapper in ("<div>{}</div>", "## {}", "{}", "<table><tr><td>{}</td></tr></table>"):
        out = _html(wrapper.format(esc(text)))
        assert (
            "<script" not in out
            and "<img" not in out
            and "href=" not in out
            and "onclick=" not in out.replace("onclick=alert(1)", "").replace("onclick=x", "")
        )
        assert "<em>" not in out and "<strong>" not in out and "<code>" not in out
        # what a browser would show is exactly the original text
        shown = re.sub(r"<[^>]+>", "", out)
        import html

        assert " ".join(text.split()) in html.unescape(shown)
    # a browser shows exactly the original text (entities are decoded once, never twice)
    import html as _h

    assert _h.unescape(esc(text)) == " ".join(text.split())


def test_esc_pre_keeps_lines_and_drops_blank_lines() -> None:
    assert esc_pre("a <b>\n\n  c*") == "a &lt;b&gt;\n  c&#42;"


def test_only_http_links_are_emitted() -> None:
    assert safe_url("https://arxiv.org/abs/2311.05608") == "https://arxiv.org/abs/2311.05608"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "//evil",
        "file:///etc/passwd",
        'https://x" onclick="y',
    ):
        assert safe_url(bad) is None
        assert "<a" not in ext_link(bad, "t")


def test_href_between_directory_urls() -> None:
    assert href("papers/attack.md", "papers/2023-gong-figstep.md") == "../2023-gong-figstep/"
    assert href("index.md", "papers/attack.md") == "papers/attack/"
    assert href("papers/x.md", "tags/models/llava.md") == "../../tags/models/llava/"
    assert href("papers/x.md", "baselines.md", "attack-figstep") == "../../baselines/#attack-figstep"


def test_front_matter_title_is_escaped() -> None:
    fm = front_matter("</title><script>x</script>")
    assert "<" not in fm.split("\n")[1]


def test_pages_cover_the_site(site: dict[str, str]) -> None:
    for page in ("papers/attack.md", "papers/evaluation.md", "papers/defense.md", "papers/survey.md",
                 "papers/other.md", "timeline.md", "glossary.md", "baselines.md", "tags/index.md",
                 "results/index.md", "results/figstep.md", "papers/2023-gong-figstep.md",
                 "tags/attack-techniques/typographic.md"):  # fmt: skip
        assert page in site, page


def test_category_page_lists_every_paper_and_links_the_explorer(site: dict[str, str]) -> None:
    html = _html(site["papers/attack.md"])
    # 3 attack papers (figstep, another, evil) + MM-SafetyBench whose `also` includes attack
    assert html.count("<li>") == 4
    assert html.split('id="also"')[1].count("<li>") == 1 and "MM-SafetyBench" in html.split('id="also"')[1]
    assert 'href="../?category=attack"' in html


def test_malicious_paper_renders_as_text_everywhere(site: dict[str, str]) -> None:
    for path, md_text in site.items():
        out = _html(md_text)
        assert "<script" not in out, path
        assert "javascript:" not in re.sub(r"&#?\w+;", "", " ".join(re.findall(r'href="([^"]*)"', out))), path
        assert "<iframe" not in out and "<img" not in out and "<b>" not in out, path
    page = _html(site["papers/2024-evil-title.md"])
    import html

    assert " ".join(MALICIOUS_TITLE.split()) in html.unescape(re.sub(r"<[^>]+>", "", page))


def test_paper_page_fields_bibtex_edit_link_and_results(site: dict[str, str]) -> None:
    page = site["papers/2023-gong-figstep.md"]
    html = _html(page)
    assert 'href="https://github.com/ThuCCSLab/FigStep"' in html
    assert 'href="../../tags/attack-techniques/typographic/"' in html
    assert "https://github.com/o/r/edit/main/catalog/papers/2023-gong-figstep.yaml" in html
    assert (
        'id="bibtex-entry"' in html
        and "@" in html.split('id="bibtex-entry"')[1][:200]
        and "atlas-copy" in html
    )
    assert "84.0%" in html  # reported
    assert "60.0% <small>[40.0–80.0]</small>" in html  # reproduced, with CI
    assert "Test-instrument numbers" in html and "atlas-row--instrument" in html


def test_results_page_labels_instrument_and_draws_chart(site: dict[str, str]) -> None:
    html = _html(site["results/figstep.md"])
    assert "model organism" in html and "smoke-test model" in html and "Test-instrument numbers" in html
    # the labels sit under the model's name (no separate column to clip on narrow screens)
    assert "<th>Labels</th>" not in html
    assert re.search(
        r'<tr class="atlas-result[^"]*"><td data-label="Model">[^<]+<br><span class="atlas-badge', html
    )
    assert html.count("<svg") == 2 and "refusal" in html  # one chart per result file
    assert "samples.jsonl" not in html  # only metrics are published


def test_results_index_summarises_every_result(site: dict[str, str]) -> None:
    html = _html(site["results/index.md"]).split('id="files"')[1]
    row = [r for r in html.split('<tr class="atlas-result')[1:] if "figstep</code>" in r and "organism" in r][
        0
    ]
    assert "figstep</code>" in row and ">FigStep</a>" in row  # the paper by its short name, linked
    assert "text-only: " in row and "figstep: 60.0%" in row  # the fixture's FigStep ASR, per condition
    assert "model organism" in row or "smoke-test model" in row


def test_short_titles() -> None:
    from tools.site.results import short_title

    assert short_title("FigStep: Jailbreaking Large Vision-language Models") == "FigStep"
    assert short_title("Eyes Closed, Safety On: Protecting Multimodal LLMs") == "Eyes Closed, Safety On"
    assert short_title("A Survey of Attacks on Large Vision-Language Models") == (
        "A Survey of Attacks on Large Vision-Language Models"
    )
    long = "An extremely long first half of a title that goes on and on: and a subtitle"
    assert short_title(long) == long


def test_breakable_identifiers_are_escaped_then_broken() -> None:
    from tools.site.results import breakable

    assert breakable("figstep+adashield_a") == "figstep+<wbr>adashield&#95;<wbr>a"
    assert breakable("<b>x_y</b>") == "&lt;b&gt;x&#95;<wbr>y&lt;/b&gt;"


def test_baselines_page_lists_params_and_command(site: dict[str, str]) -> None:
    html = _text(_html(site["baselines.md"]))
    assert "font_size" in html and "80" in html and "font size in px" in html
    assert "mllm-safety run figstep" in html and "mllm-safety run figstep --judge refusal" in html


def test_home_fragments_counts_and_chart(site: dict[str, str]) -> None:
    home = site["index.md"]
    assert re.search(r'atlas-stat__n">6<', home)  # six papers in the fixture
    assert "<svg" in home and "Papers per quarter" in home


def test_svg_charts_are_well_formed() -> None:
    import xml.etree.ElementTree as ET

    ET.fromstring(papers_per_quarter_svg({(2023, 4): {"attack": 3}, (2024, 2): {"defense": 1}}, title="<t>"))
    ET.fromstring(rate_bars_svg([("figstep · refusal <x>", 0.5, 0.3, 0.7)], title="a & b"))


def test_render_is_deterministic(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "c")
    a = render_site(make_ctx(load_catalog(root, check=False), BASELINES))
    b = render_site(make_ctx(load_catalog(root, check=False), BASELINES))
    assert a == b


def test_docs_cli_rejects_a_missing_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tools.cli.main import main

    assert (
        main(["docs", "build", "--catalog", str(tmp_path / "nope"), "--site-dir", str(tmp_path / "s")]) == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_fast_path_gives_the_same_html(site: dict[str, str]) -> None:
    from tools.site.fastpath import restore_html_blocks, stash_html_blocks

    stashed_any = 0
    for path, md_text in site.items():
        body = re.sub(r"\A---\n.*?\n---\n", "", md_text, flags=re.S)
        slim, chunks = stash_html_blocks(body)
        stashed_any += len(chunks)
        fast = restore_html_blocks(markdown.markdown(slim, extensions=EXTENSIONS), chunks)
        slow = markdown.markdown(body, extensions=EXTENSIONS)

        def same(x: str) -> str:  # Markdown puts a newline between adjacent raw block tags; nothing else
            return re.sub(r">\s+<", "><", x)

        assert same(fast) == same(slow), path
    assert stashed_any > 20
