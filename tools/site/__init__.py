"""The site: a pure renderer from the catalog (and the registry's baselines) to Markdown pages, SVG
charts, and the thin mkdocs hook that feeds it.
"""
