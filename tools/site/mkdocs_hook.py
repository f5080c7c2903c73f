"""MkDocs hook: generates the catalog's pages at build time (never written to disk, never committed).

Wired in mkdocs.yml (``hooks: [tools/site/mkdocs_hook.py]``). On every build it loads the catalog
(``$MLLM_SAFETY_CATALOG`` or ``catalog/``), collects the registered baselines, calls the pure renderer
``tools.site.render`` and adds each page to MkDocs' file collection with ``File.generated``. It also fills the
markers ``<!-- atlas:NAME -->`` of the hand-written home page, points the "edit" action of a paper page
at its YAML file, publishes the downloads and the Atom feed, puts the catalog's commit and last-change date in
``config.extra.atlas_build`` (the footer prints them on every page) and, after the build, replaces the paper
pages' sections in the search index with one short entry per paper (``tools/site/search.py``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:  # plain `mkdocs build` from a fresh clone, without `pip install -e .`
    sys.path.insert(0, str(_REPO))

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.plugins import event_priority  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402

log = logging.getLogger("mkdocs.hooks.atlas")
_STATE: dict[str, Any] = {"fragments": {}, "edit": {}, "generated": set(), "ctx": None, "chunks": {}}


def collect_baselines() -> list[Any]:
    """Every registered component as a ``BaselineInfo`` (attacks, defenses, judges, datasets, models)."""
    from baselines import registry
    from baselines.base import describe_params
    from tools.site.ctx import BaselineInfo

    out = []
    for kind in ("attack", "defense", "judge", "dataset", "model"):
        for name, cls in registry.all_components(kind).items():
            out.append(
                BaselineInfo(
                    kind=kind,
                    name=name,
                    paper_id=getattr(cls, "paper_id", None),
                    summary=str(getattr(cls, "summary", "") or ""),
                    params=describe_params(cls.Params),
                    needs_white_box=bool(getattr(cls, "needs_white_box", False)),
                    deviations=_deviations(cls),
                )
            )
    return out


def _deviations(cls: type) -> list[dict[str, Any]]:
    """A component's declared deviations from the official code (``deviations``: dicts or objects with
    what / official / ours / why / effect), as dicts; [] when it declares none."""
    out = []
    for d in getattr(cls, "deviations", None) or []:
        if isinstance(d, dict):
            out.append({k: str(v) for k, v in d.items()})
        else:
            fields = ("what", "official", "ours", "why", "effect")
            out.append({k: str(getattr(d, k)) for k in fields if getattr(d, k, None) is not None})
    return out


def build_pages(repo_url: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Load the catalog and render: (pages, home fragments, page path -> edit URL); the context is kept
    for the downloads and the search index."""
    from tools.catalog.bibtex import paper_bibtex
    from tools.catalog.store import CatalogError, load_catalog
    from tools.site.ctx import paper_page
    from tools.site.gitinfo import added_dates, build_info
    from tools.site.render import make_ctx, render_home_fragments, render_site
    from tools.site.util import slug

    try:
        catalog = load_catalog(check=True)
    except CatalogError as e:
        issues = "\n".join(f"  {i}" for i in e.issues[:30])
        more = f"\n  ... and {len(e.issues) - 30} more" if len(e.issues) > 30 else ""
        raise PluginError(
            f"the catalog has errors, so the site cannot be built:\n{issues}{more}\n"
            "Fix them (run `mllm-safety catalog check`) and build again."
        ) from None
    added, note = added_dates(catalog.root, list(catalog.papers))
    ctx = make_ctx(catalog, collect_baselines(), repo_url=repo_url, bibtex=paper_bibtex, added=added,
                   added_note=note, build=build_info(catalog.root))  # fmt: skip
    _STATE["ctx"] = ctx
    edit = {paper_page(pid): ctx.edit_url(f"catalog/papers/{slug(pid)}.yaml") for pid in ctx.papers}
    return render_site(ctx), render_home_fragments(ctx), edit


def on_files(files: Files, *, config: Any) -> Files:
    """Add the generated pages to the build."""
    repo_url = config.get("repo_url") or "https://github.com/mllm-safety-atlas/mllm-safety-atlas"
    pages, fragments, edit = build_pages(repo_url)
    for path, markdown in pages.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            raise PluginError(
                f"docs/{path} is hand-written but the catalog generates that page; remove the file"
            )
        files.append(File.generated(config, path, content=markdown))
    from tools.site.downloads import download_files

    site_url = config.get("site_url") or "https://mllm-safety-atlas.github.io/mllm-safety-atlas/"
    for path, content in download_files(_STATE["ctx"], site_url).items():
        files.append(File.generated(config, path, content=content))
    build = _STATE["ctx"].build
    config.extra["atlas_build"] = {
        "commit": build.get("commit", "")[:12],
        "commit_url": f"{repo_url.rstrip('/')}/tree/{build['commit']}" if build.get("commit") else "",
        "date": build.get("date", ""),
        "source": build.get("source", ""),
    }
    _STATE.update(fragments=fragments, edit=edit, generated=set(pages))
    log.info("atlas: generated %d pages from the catalog", len(pages))
    return files


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Files) -> str:
    """Generated pages: their raw HTML blocks wait outside Markdown (``tools/site/fastpath.py``). The home
    page: ``<!-- atlas:NAME -->`` markers become generated HTML."""
    if page.file.src_uri in _STATE["generated"]:
        from tools.site.fastpath import stash_html_blocks

        markdown, _STATE["chunks"][page.file.src_uri] = stash_html_blocks(markdown)
        return markdown
    if "<!-- atlas:" not in markdown:
        return markdown
    for name, html in _STATE["fragments"].items():
        markdown = markdown.replace(f"<!-- atlas:{name} -->", html)
    return markdown


def on_page_content(html: str, *, page: Any, config: Any, files: Files) -> str:
    """Put a generated page's raw HTML blocks back into its converted content."""
    chunks = _STATE["chunks"].pop(page.file.src_uri, None)
    if not chunks:
        return html
    from tools.site.fastpath import restore_html_blocks

    return restore_html_blocks(html, chunks)


def on_page_context(context: dict, *, page: Any, config: Any, nav: Any) -> dict:
    """Generated pages have no Markdown source: their edit action points at the YAML file, or is hidden."""
    src = page.file.src_uri
    if src in _STATE["generated"]:
        page.edit_url = _STATE["edit"].get(src)
    return context


@event_priority(-100)  # after Material's search plugin has written the index
def on_post_build(*, config: Any) -> None:
    """One short search entry per paper instead of the paper pages' sections."""
    from tools.site.search import add_paper_entries

    index = Path(config["site_dir"]) / "search" / "search_index.json"
    if index.is_file() and _STATE["ctx"] is not None:
        size = add_paper_entries(index, _STATE["ctx"])
        log.info("atlas: search index %.0f kB", size / 1e3)
