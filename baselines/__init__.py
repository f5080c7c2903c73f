"""MLLM Safety Atlas baselines: attacks, defenses, judges, model back-ends, datasets, and the harness.

This package knows nothing about the catalog's YAML files or the site (that is ``tools``).
"""

__version__ = "0.1.0"
