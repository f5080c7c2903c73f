"""The catalog: pydantic schema, YAML I/O with line numbers, located checks and errors, export
(CSV, JSON, BibTeX) and LaTeX clean-up. The only code that reads or writes ``catalog/``.
"""
