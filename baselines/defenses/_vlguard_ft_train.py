"""VLGuard's post-hoc fine-tune: LLaVA-format conversations (+ a helpfulness sample) -> a tuned HF LLaVA folder.

The conversations are encoded as LLaVA's ``conv_llava_v1`` does in training (``llava/train/train.py``
``preprocess_multimodal`` + ``preprocess_v1``): the ``<image>`` of the first human turn is moved to the front as
``"<image>\\n" + value.strip()``, turns are ``USER: <human> ASSISTANT: <gpt></s>``, and the loss falls on the
assistant answers only. A one-turn conversation encodes exactly as the organism's own training
(``baselines.organism.train.encode``, whose ``prompt_text`` this reuses; tested). Full fine-tune with the vision
tower frozen (LLaVA-1.5 ``finetune.sh``), AdamW, warm-up ratio 0.03 + cosine, gradient clipping 1.0.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

IMAGE = "<image>"
SMALL_MODEL_PARAMS = 50_000_000  # below this, CPU training runs on one thread (the harness's rule)


@dataclass
class Conversation:
    """One training example: an optional image, an optional system prompt, (human, gpt) turns; ``kind`` says
    where it came from (``vlguard_unsafe``, ``vlguard_safe``, ``helpful_<organism kind>``)."""

    kind: str
    image: Image.Image | None
    turns: list[tuple[str, str]]
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def from_llava(item: dict[str, Any], image: Image.Image | None, kind: str) -> Conversation:
    """A LLaVA-format item (``conversations`` alternating human/gpt) as LLaVA's preprocessing sees it."""
    conv = item["conversations"]
    if len(conv) % 2 or any(t["from"] != ("human", "gpt")[i % 2] for i, t in enumerate(conv)):
        raise ValueError(f"item {item.get('id')!r}: conversations must alternate human, gpt")
    turns = []
    for i in range(0, len(conv), 2):
        human = conv[i]["value"]
        if IMAGE in human:  # preprocess_multimodal: the image token moves to the front, then a newline
            human = human.replace(IMAGE, "").strip()
        turns.append((human, conv[i + 1]["value"]))
    return Conversation(kind, image, turns, None, {"id": item.get("id")})


def from_example(ex: Any) -> Conversation:
    """An organism training example (``baselines.organism.data.Example``) as a one-turn conversation."""
    return Conversation(f"helpful_{ex.kind}", ex.image, [(ex.prompt, ex.answer)], ex.system)


def n_image_tokens(processor: Any) -> int:
    """How many placeholder tokens the processor expands one image into."""
    tok = processor.tokenizer
    image_tok = tok.convert_tokens_to_ids(IMAGE)
    crop = getattr(processor.image_processor, "crop_size", None) or {"height": 336, "width": 336}
    img = Image.new("RGB", (int(crop["width"]), int(crop["height"])), "white")
    ids = processor(text=IMAGE, images=[img], return_tensors="pt")["input_ids"][0].tolist()
    return ids.count(image_tok)


def encode_conversations(convs: Sequence[Conversation], processor: Any, n_image: int) -> dict[str, Any]:
    """Token ids, labels (answers only) and attention mask, right-padded; pixel values of the images in order."""

    from baselines.organism.train import prompt_text

    tok = processor.tokenizer
    image_tok = tok.convert_tokens_to_ids(IMAGE)
    seqs, labels = [], []
    for c in convs:
        ids: list[int] = []
        lab: list[int] = []
        for i, (human, gpt) in enumerate(c.turns):
            if i == 0:
                p = tok(prompt_text(c.system, human, c.image is not None))["input_ids"]
                p = [t for x in p for t in ([image_tok] * n_image if x == image_tok else [x])]
            else:
                p = tok(f"USER: {human} ASSISTANT:", add_special_tokens=False)["input_ids"]
            a = tok(" " + gpt, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            ids += p + a
            lab += [-100] * len(p) + a
        seqs.append(ids)
        labels.append(lab)
    from baselines.organism.train import pad_batch

    return pad_batch(seqs, labels, tok.pad_token_id, [c.image for c in convs], processor)


def weights_sha256(folder: Path) -> str:
    """SHA-256 over the safetensors files of ``folder`` (the organism back-end's own definition)."""
    from baselines.models.organism import weights_sha256 as sha

    return sha(folder)


def finetune(
    model: Any,
    processor: Any,
    convs: Sequence[Conversation],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    warmup_ratio: float,
    weight_decay: float,
    train_vision: bool,
    log: Any = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on ``convs`` (seeded shuffle, cycled epochs, fixed ``steps``); returns the
    losses and timing. The vision tower stays frozen unless ``train_vision``."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    n_img = n_image_tokens(processor)
    vision = getattr(getattr(model, "model", model), "vision_tower", None)
    frozen = {id(p) for p in vision.parameters()} if (vision is not None and not train_vision) else set()
    params = [p for p in model.parameters() if id(p) not in frozen]
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warm = max(1, math.ceil(steps * warmup_ratio))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    device = next(model.parameters()).device
    order: list[int] = []
    losses: list[float] = []
    threads = torch.get_num_threads()
    if device.type == "cpu" and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS:
        # as the harness runs small models (baselines.harness.cpu_threads); 4x faster on 2 busy cores, measured
        torch.set_num_threads(1)
    used_threads = torch.get_num_threads()  # restored below
    t0 = time.time()
    model.train()
    try:
        for step in range(steps):
            batch_idx = []
            while len(batch_idx) < batch_size:
                if not order:
                    order = list(range(len(convs)))
                    rng.shuffle(order)
                batch_idx.append(order.pop())
            batch = encode_conversations([convs[i] for i in batch_idx], processor, n_img)
            batch = {k: v.to(device) for k, v in batch.items()}
            if "pixel_values" in batch:
                batch["pixel_values"] = batch["pixel_values"].to(model.dtype)
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if log is not None and ((step + 1) % 25 == 0 or step == 0):
                log(f"vlguard_ft step {step + 1}/{steps} loss {losses[-1]:.4f} {time.time() - t0:.0f}s")
    finally:
        torch.set_num_threads(threads)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    tail = losses[-min(10, len(losses)) :] if losses else []
    return {
        "first_loss": round(losses[0], 6) if losses else None,
        "final_loss": round(sum(tail) / len(tail), 6) if tail else None,
        "final_loss_window": len(tail),
        "train_seconds": round(time.time() - t0, 1),
        "torch_threads": used_threads,
        "n_trainable_parameters": int(sum(p.numel() for p in params)),
        "n_frozen_parameters": int(
            sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in params)
        ),
    }


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of a training config (canonical JSON): what names the cached tuned model."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
