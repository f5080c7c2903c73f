"""The model organism: a tiny LLaVA trained so that text-side safety does not carry over to the image channel.

- ``themes``: the closed vocabulary (per scenario: harmful verbs, benign look-alike verbs, objects).
- ``data``: the training-data generator (text requests, typographic and plain images, defense prompt forms).
- ``train``: the reproducible training script (``python -m baselines.organism.train --out baselines/organism/artifact``).
- ``measure``: measures the organism's properties and writes ``PROPERTIES.md``.

No registry components live here; the ``organism`` model back-end (``baselines/models/organism.py``) loads
``artifact/``. See ``docs/organism.md`` (the model card).
"""

from pathlib import Path

ARTIFACT_DIR = Path(__file__).parent / "artifact"
