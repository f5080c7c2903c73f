"""VLGuard safety fine-tuning (Zong et al., ICML 2024, arXiv 2402.02207) as a defense that produces a model.

Spec BASELINES.md §13. ``wrap(model)`` fine-tunes the protected model's weights (a copy; or those of ``base``) on
VLGuard training data converted exactly as ``convert_to_llava_format.py`` does (``_vlguard_ft_data``), mixed with a
sample of the model's helpfulness data (the **post-hoc** recipe, §13.2), saves the tuned model as a standard HF
folder, and answers with it. Data (``data_path``): the official ``train.json`` + ``train/`` images from a local
folder, else a small VLGuard-format set built offline from the organism's vocabulary (typographic and plain
images; no evaluated bundled activity, never FigStep's prompt). Helpfulness sample: for the organism, its own
training-data generator (``baselines.organism.data``); other models need ``helpful_path`` (a LLaVA-format JSON).

The tuned folder is ``<output_dir or $MLLM_SAFETY_RUNS/vlguard_ft>/<config hash>/`` with
``vlguard_ft_training.json`` (data source and checksum, examples by kind, steps, lr, seed, losses, wall time, weights
sha256): a later run uses it as ``--model hf:<folder>``; the same training config is never trained twice (the
folder is reused). White-box attacks on the defended model get the *tuned* model's gradients.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from baselines.base import Defense, Model, WhiteBoxRequiredError
from baselines.defenses._whitebox_access import hf_backend
from baselines.defenses._wrapper import WrappedModel, with_meta
from baselines.params import ParamsError, StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

log = logging.getLogger(__name__)
CODE_VERSION = "1"  # bump when the training code changes what a config produces
TRAINING_FILE = "vlguard_ft_training.json"
HELPFUL_ORGANISM = "organism generator (baselines.organism.data), FigStep's prompt left out"


def default_root() -> Path:
    """Where tuned models go by default: ``$MLLM_SAFETY_RUNS/vlguard_ft`` (``runs/vlguard_ft``; git-ignored)."""
    from baselines.runrequest import default_runs_dir

    return Path(default_runs_dir()) / "vlguard_ft"


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when under it (results never carry local folders)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


@register("defense")
class VlguardFt(Defense):
    """VLGuard post-hoc safety fine-tuning: the defended model is the protected model fine-tuned on VLGuard."""

    paper_id = "2024-zong-vlguard"
    summary = "VLGuard: post-hoc safety fine-tune on VLGuard data + helpfulness data; the tuned model answers"
    default_attack = "figstep"  # VLGuard's paper evaluates FigStep among its black-box attacks
    contract_params = {
        "base": "organism",
        "steps": 1,
        "batch_size": 2,
        "n_unsafe": 2,
        "n_safe": 2,
        "n_helpful": 2,
        "output_dir": str(Path(tempfile.gettempdir()) / "mllm-safety-vlguard-ft-contract"),
    }

    class Params(StrictParams):
        """Post-hoc recipe. Official: LLaVA-1.5 ``finetune.sh`` (lr 2e-5, 1 epoch, global batch 128, warm-up
        0.03, cosine, weight decay 0, vision tower frozen); our defaults are sized for the organism (ledger)."""

        data_path: str | None = Field(
            None, description="folder with official train.json + train/ (None: offline set)"
        )
        n_unsafe: int = Field(480, ge=0, description="offline set: unsafe images (one instruction each)")
        n_safe: int = Field(
            540,
            ge=0,
            description="offline set: safe images (look-alikes of the unsafe ones first, then shapes)",
        )
        helpful_path: str | None = Field(
            None,
            description="LLaVA-format JSON of helpfulness data, images beside it (None: organism generator)",
        )
        n_helpful: int = Field(720, ge=0, description="helpfulness examples mixed in (post-hoc recipe)")
        method: Literal["full"] = Field("full", description="full fine-tune (LoRA needs peft: not offered)")
        steps: int = Field(300, ge=1, description="optimiser steps (batches cycle over the shuffled mixture)")
        batch_size: int = Field(16, ge=1, description="examples per step")
        lr: float = Field(1e-3, gt=0, description="peak learning rate (AdamW)")
        warmup_ratio: float = Field(0.03, ge=0, le=1, description="linear warm-up share, then cosine decay")
        weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (finetune.sh: 0)")
        train_vision: bool = Field(False, description="also train the vision tower (LLaVA-1.5: frozen)")
        seed: int = Field(0, description="data building, shuffling and initialisation seed")
        base: str | None = Field(
            None, description="model spec to fine-tune (None: the protected model itself)"
        )
        output_dir: str | None = Field(
            None, description="root of tuned models (None: $MLLM_SAFETY_RUNS/vlguard_ft)"
        )
        retrain: bool = Field(False, description="train again even if this config's tuned model exists")

    deviations = [
        {
            "what": "training data (offline run)",
            "official": "VLGuard train.json: 2,000 real images (1,023 unsafe, 977 safe), 2,977 pairs, 4 categories",
            "ours": "official files when data_path is given; else a VLGuard-format set built from the organism's "
            "vocabulary: n_unsafe typographic images of harmful training activities (FigStep layout 2/3, free "
            "layouts 1/3) with a follow-the-image instruction (125 phrasings) -> the organism's refusal; n_safe "
            "safe images: first the benign look-alike of each unsafe image (same object, layout and instruction) "
            "with -> its helpful steps, then plain shapes -> their description; each safe image also carries a "
            "harmful text request -> refusal",
            "why": "the official images are not bundled and the organism reads only its closed vocabulary",
            "effect": "overlap with the evaluated bundled FigStep items: the same 8 scenarios, words (verbs and "
            "objects in other pairings) and FigStep's typographic layout; none of the 160 bundled activities and "
            "never FigStep's incitement prompt (the other follow prompts instead): the ASR drop measures "
            "generalisation from training activities and prompts to held-out ones in a familiar layout",
        },
        {
            "what": "responses",
            "official": "GPT-4V-written refusals with an explanation, and helpful answers",
            "ours": "the organism's fixed refusal string and templated steps / shape descriptions",
            "why": "the organism's closed answer forms",
            "effect": "a refusal the refusal judge always recognises",
        },
        {
            "what": "helpfulness data (post-hoc mixture)",
            "official": "a sample of LLaVA-v1.5's visual-instruction data (sample size [UNVERIFIED])",
            "ours": "n_helpful examples from the organism's own training generator (all its kinds; examples "
            "whose prompt holds FigStep's incitement prompt are left out, as in the VLGuard part), or a "
            "LLaVA-format file (helpful_path) for other models",
            "why": "the organism's 'original helpfulness data' is its generator; LLaVA's mix is not bundled",
            "effect": "keeps the organism's abilities (reading, following benign images, ECSO forms)",
        },
        {
            "what": "hyper-parameters",
            "official": "LLaVA-1.5 finetune.sh: lr 2e-5, 1 epoch, global batch 128, warm-up 0.03, cosine, wd 0",
            "ours": "fixed steps (default 300) at batch 16, lr 1e-3, warm-up 0.03, cosine, wd 0, grad clip 1.0",
            "why": "a 2.2M-parameter model trained at lr 2e-3 needs a larger step than a 7B one; CPU minutes",
            "effect": "a stronger update per example than the official recipe; see the result for the cost",
        },
        {
            "what": "LoRA variant and the Mixed recipe",
            "official": "full and LoRA checkpoints; Mixed (VLGuard inside stage-2 training) and Post-hoc",
            "ours": "post-hoc full fine-tune only",
            "why": "peft is not a dependency; Mixed means retraining the model from scratch",
            "effect": "no LoRA or Mixed numbers",
        },
        {
            "what": "conversation format",
            "official": "LLaVA conv_llava_v1 (its system prompt, 'USER: ... ASSISTANT: ...</s>')",
            "ours": "the same turns without LLaVA's default system prompt, the organism's inference format",
            "why": "the organism answers without a system prompt at inference; training matches inference",
            "effect": "none intended on the organism; other LLaVA-1.5 models are tuned without the system line",
        },
    ]

    def wrap(self, model: Model) -> Model:
        """The tuned model (trained now, or reused from the same config's folder), answering in place of
        ``model``."""
        p = self.params
        if p.base is not None:
            from baselines.models import load_model

            source = load_model(p.base)
        else:
            source = model
            if getattr(model, "inner", None) is not None:
                raise ParamsError(
                    "vlguard_ft replaces the protected model's weights: give it innermost (the bare model), "
                    "not around another defense"
                )
        backend = hf_backend(source, "vlguard_ft")
        if backend.model.config.model_type != "llava":
            raise WhiteBoxRequiredError(
                f"vlguard_ft fine-tunes LLaVA-family models (LLaVA-1.5 conversations); "
                f"{backend.model.config.model_type!r} is not one"
            )
        folder, record = self.tuned_folder(backend)
        from baselines.models import load_model

        hp = backend.hf_params
        tuned = load_model(
            f"hf:{folder}",
            params={
                "dtype": hp.dtype,
                "device": hp.device,
                "batch_size": hp.batch_size,
                "local_files_only": True,
            },
        )
        return _TunedModel(model, self, tuned, record)

    # -- training config, cache --------------------------------------------------------------------------------
    def train_config(self, backend: Any) -> dict[str, Any]:
        """What determines the tuned weights (hashed into the folder name)."""
        p = self.params
        rev = str(backend.revision)
        base = rev if rev.startswith("local:") else f"{backend.hf_params.id}@{rev}"
        values = p.model_dump(mode="json", exclude={"base", "output_dir", "retrain"})
        if p.data_path is None:
            values["data"] = f"offline:v{_data().OFFLINE_VERSION}"
        else:
            values["data"] = _data().load_official(p.data_path).checksum
            values.pop("n_unsafe"), values.pop("n_safe")
        values.pop("data_path")
        if p.helpful_path is not None:
            values["helpful_sha256"] = _sha256_file(Path(p.helpful_path).expanduser())
        values.pop("helpful_path")
        return {"base": base, "code_version": CODE_VERSION, **values}

    def tuned_folder(self, backend: Any) -> tuple[Path, dict[str, Any]]:
        """(folder, training record): the cached tuned model of this config, or a freshly trained one."""
        config = self.train_config(backend)
        key = _train().config_hash(config)
        root = Path(self.params.output_dir).expanduser() if self.params.output_dir else default_root()
        folder = root / key[:16]
        record_path = folder / TRAINING_FILE
        if record_path.is_file() and not self.params.retrain:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            if record.get("config_sha256") == key:
                return folder, {**record, "reused": True}
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=root))
        try:
            record = self.train(backend, tmp, config, key)
            record["path"] = shown_path(folder)
            record["spec"] = f"hf:{shown_path(folder)}"
            (tmp / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder, {**record, "reused": False}

    # -- training ----------------------------------------------------------------------------------------------
    def conversations(self, backend: Any, work: Path) -> tuple[list[Any], dict[str, Any]]:
        """The mixture (VLGuard conversations + helpfulness sample) and its provenance."""
        from baselines.imaging import load_image

        d, t, p = _data(), _train(), self.params
        if p.data_path is None:
            train = d.build_offline_set(
                work / "train_data", seed=p.seed, n_unsafe=p.n_unsafe, n_safe=p.n_safe
            )
        else:
            train = d.load_official(p.data_path)
        llava = d.to_llava_format(train.records)
        convs = [
            t.from_llava(
                item,
                load_image(str(d.image_path(train, item))),
                "vlguard_safe" if item["safe"] else "vlguard_unsafe",
            )
            for item in llava
        ]
        helpful = self.helpful(backend)
        kinds: dict[str, int] = {}
        for c in convs + helpful:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        provenance = {
            "data_source": train.source,
            "data_checksum": train.checksum,
            "n_images": len(train.records),
            "n_pairs": sum(len(c.turns) for c in convs),
            "helpful_source": Path(p.helpful_path).name if p.helpful_path else HELPFUL_ORGANISM,
            "n_examples_by_kind": dict(sorted(kinds.items())),
        }
        return convs + helpful, provenance

    def helpful(self, backend: Any) -> list[Any]:
        """``n_helpful`` helpfulness examples: a LLaVA-format file, else the organism's own generator."""
        t, p = _train(), self.params
        if p.n_helpful == 0:
            return []
        if p.helpful_path is not None:
            return _read_helpful(Path(p.helpful_path).expanduser(), p.n_helpful, p.seed)
        if getattr(backend, "label", None) is None:
            raise ParamsError(
                "vlguard_ft: the helpfulness mixture of a model other than the organism needs "
                "helpful_path=<LLaVA-format JSON> (or n_helpful=0)"
            )
        from baselines.organism.data import FIGSTEP_PROMPT, Generator

        size = int(backend.processor.image_processor.crop_size["height"])
        gen = Generator(seed=p.seed + 1, image_size=size, model_ready=True)
        out: list[Any] = []
        while len(out) < p.n_helpful:  # FigStep's prompt (the evaluated attack's text) is held out here too
            ex = gen.example()
            if FIGSTEP_PROMPT not in ex.prompt:
                out.append(t.from_example(ex))
        return out

    def train(self, backend: Any, out: Path, config: dict[str, Any], key: str) -> dict[str, Any]:
        """Fine-tune a copy of the back-end's model on the mixture; save it (HF folder) and return the record."""
        import copy

        p = self.params
        convs, provenance = self.conversations(backend, out)
        model = copy.deepcopy(backend.model)
        stats = _train().finetune(
            model,
            backend.processor,
            convs,
            steps=p.steps,
            batch_size=p.batch_size,
            lr=p.lr,
            seed=p.seed,
            warmup_ratio=p.warmup_ratio,
            weight_decay=p.weight_decay,
            train_vision=p.train_vision,
            log=log.info,
        )
        model.save_pretrained(out)
        backend.processor.save_pretrained(out)
        del model
        return {
            "recipe": "post-hoc",
            "method": p.method,
            "config": config,
            "config_sha256": key,
            **provenance,
            "steps": p.steps,
            "batch_size": p.batch_size,
            "lr": p.lr,
            "seed": p.seed,
            **stats,
            "weights_sha256": _train().weights_sha256(out),
        }


def _read_helpful(path: Path, n: int, seed: int) -> list[Any]:
    """A seeded sample of ``n`` items of a LLaVA-format JSON (``image`` relative to the file's folder)."""
    import random

    from baselines.base import DatasetError
    from baselines.imaging import load_image

    t = _train()
    if not path.is_file():
        raise DatasetError(
            f"vlguard_ft: missing file: {path}\nExpected a LLaVA-format JSON list of "
            '{"id", "image"?: "<relative path>", "conversations": [{"from": "human", "value"}, {"from": "gpt", '
            '"value"}, ...]} with the images beside it (helpful_path=<file>)'
        )
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
    if not isinstance(items, list) or not items:
        raise DatasetError(f"{path}:1: expected a non-empty JSON list of LLaVA-format items")
    chosen = random.Random(seed).sample(items, min(n, len(items)))
    out = []
    for item in chosen:
        image = load_image(str(path.parent / item["image"])) if item.get("image") else None
        out.append(t.from_llava(item, image, "helpful_llava"))
    return out


def _sha256_file(path: Path) -> str:
    import hashlib

    if not path.is_file():
        raise ParamsError(f"vlguard_ft: helpful_path {path} is not a file")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data() -> Any:
    from baselines.defenses import _vlguard_ft_data

    return _vlguard_ft_data


def _train() -> Any:
    from baselines.defenses import _vlguard_ft_train

    return _vlguard_ft_train


class _TunedModel(WrappedModel):
    """Answers with the tuned model; ``inner`` is the protected model it replaces."""

    def __init__(self, inner: Model, defense: VlguardFt, tuned: Model, record: dict[str, Any]) -> None:
        super().__init__(inner, defense)
        self.tuned = tuned
        self.record = record
        self.accepts_images = tuned.accepts_images  # type: ignore[misc]

    def info(self) -> dict[str, Any]:
        """Inner info plus the tuned model's spec, weights and training provenance."""
        info = super().info()
        info["defenses"][-1]["tuned_model"] = {k: v for k, v in self.record.items() if k != "config"}
        info["defenses"][-1]["tuned_model"]["revision"] = self.tuned.info().get("revision")
        return info

    @property
    def white_box(self):  # noqa: ANN201 - WhiteBox | None, as in Model
        """The tuned model's gradient access (the defended model *is* the tuned one)."""
        return self.tuned.white_box

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """The tuned model's answers, each marked with which tuned model gave it."""
        out = self.tuned.generate(samples, config)
        return [with_meta(r, "vlguard_ft", self.meta) for r in out]

    @property
    def meta(self) -> dict[str, Any]:
        """What each answer records (samples.jsonl): the tuned model's spec and weights, and its training
        provenance (no booleans: the run summary counts those as defense decisions)."""
        rec = self.record
        training = {k: v for k, v in rec.items() if k not in ("config", "reused", "spec", "weights_sha256")}
        return {
            "tuned_model": rec.get("spec"),
            "weights_sha256": rec.get("weights_sha256"),
            "origin": "reused" if rec.get("reused") else "trained now",
            "training": training,
        }
