"""MkDocs hook: generates the catalog's pages at build time (never written to disk, never committed).

Wired in mkdocs.yml (``hooks: [tools/site/mkdocs_hook.py]``). On every build it loads the catalog
(``$MLLM_SAFETY_CATALOG`` or ``catalog/``), collects the registered baselines, calls the pure renderer
``tools.site.render`` and adds each page to MkDocs' file collection with ``File.generated``. It also fills the
markers ``<!-- atlas:NAME -->`` of the hand-written home page and points the "edit" action of a paper page
at its YAML file.
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
from mkdocs.structure.files import File, Files  # noqa: E402

log = logging.getLogger("mkdocs.hooks.atlas")
_STATE: dict[str, Any] = {"fragments": {}, "edit": {}, "generated": set()}


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
                )
            )
    return out


def build_pages(repo_url: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Load the catalog and render: (pages, home fragments, page path -> edit URL)."""
    from tools.catalog.bibtex import paper_bibtex
    from tools.catalog.store import CatalogError, load_catalog
    from tools.site.render import make_ctx, render_home_fragments, render_site
    from tools.site.ctx import paper_page
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
    ctx = make_ctx(catalog, collect_baselines(), repo_url=repo_url, bibtex=paper_bibtex)
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
    _STATE.update(fragments=fragments, edit=edit, generated=set(pages))
    log.info("atlas: generated %d pages from the catalog", len(pages))
    return files


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Files) -> str:
    """Replace ``<!-- atlas:NAME -->`` markers (home page) with generated HTML."""
    if "<!-- atlas:" not in markdown:
        return markdown
    for name, html in _STATE["fragments"].items():
        markdown = markdown.replace(f"<!-- atlas:{name} -->", html)
    return markdown


def on_page_context(context: dict, *, page: Any, config: Any, nav: Any) -> dict:
    """Generated pages have no Markdown source: their edit action points at the YAML file, or is hidden."""
    src = page.file.src_uri
    if src in _STATE["generated"]:
        page.edit_url = _STATE["edit"].get(src)
    return context
