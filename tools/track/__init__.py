"""The literature tracker: arXiv intake, new-paper tracking, curated-list importers, facet suggestions
and the link checker.
"""
