"""Base classes of the five component kinds: Model, Attack, Defense, Judge, Dataset.

Every component declares ``class Params(StrictParams)`` (``baselines.params``) next to its code, with the paper's
defaults and a one-line doc per field (``Field(description=...)``). Class metadata (``paper_id``,
``summary``) feeds ``mllm-safety list``, the site's baselines page and the registry <-> catalog test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from baselines.params import NoParams, ParamsError, StrictParams, build_params, describe_params  # noqa: F401
from baselines.types import GenerationConfig, Response, Sample, Verdict

#: The fields of one entry of a component's deviations ledger (``Component.deviations``).
DEVIATION_KEYS: tuple[str, ...] = ("what", "official", "ours", "why", "effect")


class Component:
    """Common parts: registry metadata, the deviations ledger and validated Params."""

    name: ClassVar[str] = ""  # set by @register
    kind: ClassVar[str] = ""  # set by @register
    paper_id: ClassVar[str | None] = None  # catalog id of the paper this implements (None for plumbing)
    summary: ClassVar[str] = ""  # one line for `mllm-safety list`
    Params: ClassVar[type[BaseModel]] = NoParams
    #: The ledger of this component's departures from the official code: one dict per departure with the keys
    #: of :data:`DEVIATION_KEYS` (what, official behaviour, ours, why, expected effect). ``[]`` states that there
    #: are none; ``None`` means nobody has written the ledger yet.
    deviations: ClassVar[list[dict[str, str]] | None] = None

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        if isinstance(params, BaseModel):
            self.params = params
        else:
            self.params = build_params(self.Params, dict(params or {}), f"{self.kind} {self.name!r}")


class Model(Component, ABC):
    """A multimodal chat model. ``generate`` answers a batch of samples (one user turn each).

    Back-ends: ``hf`` (transformers), ``openai`` (any OpenAI-compatible endpoint), ``organism`` (the offline
    default). Defenses wrap a Model and are Models themselves.
    """

    accepts_images: ClassVar[bool] = True

    @abstractmethod
    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """One Response per sample, in the same order."""

    def info(self) -> dict[str, Any]:
        """Provenance of the model for results: id, resolved revision, dtype, device, labels."""
        return {"backend": self.name}

    @property
    def white_box(self) -> WhiteBox | None:
        """Gradient access for white-box attacks, or None for black-box back-ends (APIs)."""
        return None


class WhiteBox(ABC):
    """Differentiable access to a (LLaVA-style) model, used by gradient attacks.

    Pixel tensors are float in [0, 1], shape (B, 3, H, W) at ``image_size``; normalisation happens
    inside the graph, so the gradient reaches the [0, 1] pixels.
    """

    @property
    @abstractmethod
    def image_size(self) -> tuple[int, int]:
        """(height, width) the vision tower expects."""

    @property
    @abstractmethod
    def device(self) -> Any:
        """The torch device of the model."""

    @abstractmethod
    def target_loss(
        self, pixels: Any, prompts: Sequence[str], targets: Sequence[str], *, system: str | None = None
    ) -> Any:
        """Per-example mean cross-entropy (shape (B,)) of ``targets[i]`` after the chat-formatted
        user turn with image ``pixels[i]`` and text ``prompts[i]`` (teacher forcing), with an optional
        system prompt. A batch of one image is broadcast to every prompt."""

    @abstractmethod
    def image_embeddings(self, pixels: Any) -> Any:
        """The projected image features the language model sees, shape (B, n_image_tokens, d)."""

    @abstractmethod
    def pixels_from_images(self, images: Sequence[Any]) -> Any:
        """PIL images -> (B, 3, H, W) float tensor in [0, 1], resized to ``image_size``."""

    @abstractmethod
    def images_from_pixels(self, pixels: Any) -> list[Any]:
        """(B, 3, H, W) tensor in [0, 1] -> PIL RGB images (rounded to 8 bits)."""


class Attack(Component, ABC):
    """Transforms samples into attacked samples (same ids, same goal). May optimise against the model."""

    needs_white_box: ClassVar[bool] = False
    # True when ``apply`` itself queries a model (e.g. an LLM extracts key phrases): the harness then never
    # runs ``apply`` in its background worker while the target model is generating.
    queries_model: ClassVar[bool] = False
    #: Judge Params the paper's own evaluation uses with this attack (judge name -> Params values), applied by
    #: ``mllm-safety run`` under any ``--set judge.<name>.<field>`` (e.g. ImgJP checks only 100 characters).
    judge_params: ClassVar[dict[str, dict[str, Any]]] = {}

    def prepare(self, samples: Sequence[Sample], model: Model) -> None:
        """Called once with every selected sample of a condition (done or not, so that a resumed run gives
        the same result; with ``--shard`` only the shard's samples) before batching begins.

        Universal and scenario-level attacks (a single image optimised over many prompts) optimise here, so
        the result does not depend on the batch size; per-sample attacks need not override it.
        """

    @abstractmethod
    def apply(self, samples: Sequence[Sample], model: Model) -> list[Sample]:
        """The attacked samples, one per input, in order."""


class Defense(Component, ABC):
    """Wraps a model; the wrapped model is what the harness queries."""

    @abstractmethod
    def wrap(self, model: Model) -> Model:
        """A Model that applies the defense around ``model``."""


class Judge(Component, ABC):
    """Decides, per (sample, response), whether the attack succeeded (and, if it can, whether it refused)."""

    @abstractmethod
    def judge(self, samples: Sequence[Sample], responses: Sequence[Response]) -> list[Verdict]:
        """One Verdict per pair. Errors become unjudged Verdicts (success=None, error=...), never fallbacks."""

    def config(self) -> dict[str, Any]:
        """What identifies this judge's configuration in a result (hashed into provenance)."""
        return {"judge": self.name, "params": self.params.model_dump(mode="json")}


@dataclass
class LoadedDataset:
    """Samples of a dataset plus its provenance: content checksum and the items that could not be loaded."""

    name: str
    samples: list[Sample]
    checksum: str
    source: str
    skipped: list[dict[str, str]] = field(default_factory=list)  # [{"id":..., "path":..., "error":...}]


class Dataset(Component, ABC):
    """Loads a benchmark (bundled, or an official format from a local path) into Samples."""

    @abstractmethod
    def load(self) -> LoadedDataset:
        """Read the data; a missing or malformed file raises DatasetError naming the expected layout."""


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the path and the expected layout."""


class BackendError(RuntimeError):
    """A model back-end cannot serve (unreachable endpoint, missing local model); says what and how to fix."""


class WhiteBoxRequiredError(RuntimeError):
    """A gradient attack was asked to run on a back-end without gradient access."""
