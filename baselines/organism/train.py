"""Train the model organism: ``python -m baselines.organism.train --out baselines/organism/artifact``.

Reproducible: fixed seed, data generated on the fly by ``baselines.organism.data``, fixed number of steps. Runs on
CPU (about 29 minutes on an idle 2-core machine with the defaults: a vision-only stage, then everything) and
uses a GPU when one is present. Writes a standard HF LLaVA folder (safetensors + config + processor/tokenizer)
loadable offline by ``AutoProcessor`` and ``AutoModelForImageTextToText``, plus ``training.json`` (recipe,
steps, loss, wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ARCH = {
    "image_size": 192,
    "patch_size": 24,
    "vision_hidden": 128,
    "vision_layers": 4,
    "text_hidden": 160,
    "text_layers": 4,
    "text_heads": 4,
    "text_kv_heads": 4,
    "vocab_size": 1024,
}


def build(out: Path, seed: int) -> None:
    """Build the untrained model + processor folder (tokenizer trained on the generated corpus)."""
    from transformers import LlavaImageProcessorPil, LlavaProcessor

    from baselines.models.tiny import LLAVA_CHAT_TEMPLATE, build_tiny_llava
    from baselines.organism.data import corpus

    s = ARCH["image_size"]
    build_tiny_llava(out, seed=seed, corpus=corpus(), **ARCH)
    cfg_path = out / "config.json"  # the last layer's features (the tower is shallow; -2 wastes a layer)
    cfg = json.loads(cfg_path.read_text())
    cfg["vision_feature_layer"] = -1
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
    processor = LlavaProcessor.from_pretrained(out)
    # Pad to a square (LLaVA-1.5's "pad" mode) before resizing, so wide typography is not cropped away.
    ip = LlavaImageProcessorPil(
        do_pad=True, size={"shortest_edge": s}, crop_size={"height": s, "width": s}, do_center_crop=True
    )
    LlavaProcessor(
        image_processor=ip,
        tokenizer=processor.tokenizer,
        patch_size=ARCH["patch_size"],
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    ).save_pretrained(out)


def prompt_text(system: str | None, prompt: str, has_image: bool) -> str:
    """The LLaVA-1.5 prompt string the chat template produces (with the generation prompt)."""
    head = f"{system}\n\n" if system else ""
    return f"{head}USER: {'<image>' + chr(10) if has_image else ''}{prompt} ASSISTANT:"


def encode(examples: list[Any], processor: Any, n_image_tokens: int) -> dict[str, Any]:
    """Token ids (prompt + " answer</s>"), loss only on the answer, right-padded; pixel values in order."""

    tok = processor.tokenizer
    image_tok = tok.convert_tokens_to_ids("<image>")
    seqs, labels = [], []
    for e in examples:
        p = tok(prompt_text(e.system, e.prompt, e.image is not None))["input_ids"]
        p = [t for i in p for t in ([image_tok] * n_image_tokens if i == image_tok else [i])]
        a = tok(" " + e.answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        seqs.append(p + a)
        labels.append([-100] * len(p) + a)
    return pad_batch(seqs, labels, tok.pad_token_id, [e.image for e in examples], processor)


def pad_batch(
    seqs: list[list[int]], labels: list[list[int]], pad_id: int, images: list[Any], processor: Any
) -> dict[str, Any]:
    """Right-padded ``input_ids``/``attention_mask``/``labels`` (-100 on padding) and the ``pixel_values`` of
    the images that are not None, in order (what a LLaVA training step takes)."""
    import torch

    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id)
    lab = torch.full((len(seqs), n), -100)
    att = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, (s, lb) in enumerate(zip(seqs, labels, strict=True)):
        ids[i, : len(s)] = torch.tensor(s)
        lab[i, : len(s)] = torch.tensor(lb)
        att[i, : len(s)] = 1
    batch = {"input_ids": ids, "attention_mask": att, "labels": lab}
    images = [im for im in images if im is not None]
    if images:
        batch["pixel_values"] = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    return batch


def batches(folder: str, seed: int, batch_size: int, aux_batch: int) -> Any:
    """A ``torch`` iterable dataset of :class:`Batches` (torch is imported lazily)."""
    import torch

    class _Iterable(torch.utils.data.IterableDataset):
        def __iter__(self) -> Any:
            return iter(Batches(folder, seed, batch_size, aux_batch))

    return _Iterable()


class Batches:
    """Endless training batches (one example kind per batch) plus the auxiliary task's images and labels.

    Iterable in a ``DataLoader`` worker process, so that rendering overlaps the optimisation; with one worker
    (or none) the sequence is the same for a given seed."""

    def __init__(self, folder: str, seed: int, batch_size: int, aux_batch: int) -> None:
        self.folder, self.seed, self.batch_size, self.aux_batch = folder, seed, batch_size, aux_batch

    def __iter__(self) -> Any:
        from transformers import LlavaProcessor

        from baselines.organism.aux import GridTask
        from baselines.organism.data import Generator

        processor = LlavaProcessor.from_pretrained(self.folder)
        gen = Generator(seed=self.seed, image_size=ARCH["image_size"], model_ready=True)
        grid = GridTask(ARCH["image_size"], ARCH["patch_size"], seed=self.seed + 1)
        n_img = (ARCH["image_size"] // ARCH["patch_size"]) ** 2
        while True:
            kind = gen.kind()  # one kind per batch: similar lengths, little padding
            batch = encode([gen.example(kind) for _ in range(self.batch_size)], processor, n_img)
            if self.aux_batch:
                batch["aux_pixels"], batch["aux_labels"] = grid.batch(self.aux_batch, processor)
            yield batch


def pretrain_vision(
    model: Any,
    head: Any,
    params: list,
    processor: Any,
    steps: int,
    aux_batch: int,
    lr: float,
    seed: int,
    n_words: int,
    t0: float,
) -> None:
    """Stage 1: the vision tower and projector learn the auxiliary reading task alone (no language model),
    at ``2 * aux_batch`` images per step, so that stage 2 starts from features that already carry the words."""
    import torch

    from baselines.organism.aux import GridTask, aux_loss

    grid = GridTask(ARCH["image_size"], ARCH["patch_size"], seed=seed + 2)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    device = next(model.parameters()).device
    losses: list[float] = []
    for step in range(steps):
        pixels, labels = grid.batch(2 * aux_batch, processor)
        loss = aux_loss(model, head, pixels.to(device), labels.to(device), n_words)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            print(
                f"vision step {step + 1}/{steps} aux loss {sum(losses[-100:]) / 100:.4f} "
                f"{time.time() - t0:.0f}s",
                flush=True,
            )


def train(
    out: Path,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    log_every: int = 50,
    aux_weight: float = 1.0,
    aux_batch: int = 8,
    workers: int = 0,
    vision_steps: int = 0,
) -> dict:
    """Build, train and save the organism at ``out``; returns the training record."""
    import torch
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    from baselines.organism.aux import aux_loss, head_size, vocabulary
    from baselines.organism.data import Generator

    device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), seed)
        processor = LlavaProcessor.from_pretrained(tmp)
        model = LlavaForConditionalGeneration.from_pretrained(tmp).to(device).train()
        torch.manual_seed(seed)
        # training-only head of the auxiliary loss (baselines/organism/aux.py); not saved
        n_words = len(vocabulary(Generator(seed=seed, image_size=ARCH["image_size"])))
        head = torch.nn.Linear(model.config.text_config.hidden_size, head_size(n_words)).to(device)
        params = list(model.parameters()) + list(head.parameters())
        lm_ids = {id(q) for q in model.model.language_model.parameters()} | {
            id(q) for q in model.lm_head.parameters()
        }
        # clipped separately, so that the auxiliary loss's gradients never shrink the language model's steps
        groups = [[q for q in params if id(q) in lm_ids], [q for q in params if id(q) not in lm_ids]]
        if vision_steps:
            pretrain_vision(model, head, groups[1], processor, vision_steps, aux_batch, lr, seed, n_words, t0)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
        warm = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
        )
        data = batches(tmp, seed, batch_size, aux_batch if aux_weight > 0 else 0)
        loader = torch.utils.data.DataLoader(
            data, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None
        )
        losses: list[float] = []
        for step, batch in zip(range(steps), loader, strict=False):
            batch = {k: v.to(device) for k, v in batch.items()}
            aux_pixels, aux_labels = batch.pop("aux_pixels", None), batch.pop("aux_labels", None)
            loss = model(**batch).loss
            if aux_pixels is not None:
                loss = loss + aux_weight * aux_loss(model, head, aux_pixels, aux_labels, n_words)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for g in groups:
                torch.nn.utils.clip_grad_norm_(g, 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if (step + 1) % log_every == 0 or step == 0:
                avg = sum(losses[-log_every:]) / len(losses[-log_every:])
                print(f"step {step + 1}/{steps} loss {avg:.4f} {time.time() - t0:.0f}s", flush=True)
        model.eval()
        out.mkdir(parents=True, exist_ok=True)
        for f in out.iterdir():
            if f.is_file():
                f.unlink()
        model.save_pretrained(out)
        processor.save_pretrained(out)
        record = {
            "seed": seed,
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "aux_weight": aux_weight,
            "aux_batch": aux_batch,
            "vision_steps": vision_steps,
            "vision_feature_layer": -1,
            "arch": ARCH,
            "parameters": sum(p.numel() for p in model.parameters()),
            "device": device,
            "torch_threads": torch.get_num_threads(),
            "data_workers": workers,
            "final_loss": sum(losses[-log_every:]) / len(losses[-log_every:]),
            "train_seconds": round(time.time() - t0, 1),
        }
        (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description="Train the model organism (tiny LLaVA) and save it.")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "artifact")
    ap.add_argument("--steps", type=int, default=5600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--aux-weight", type=float, default=1.0, help="weight of the auxiliary reading loss (0: off)"
    )
    ap.add_argument("--aux-batch", type=int, default=8, help="images per step for the auxiliary loss")
    ap.add_argument(
        "--vision-steps",
        type=int,
        default=1500,
        help="stage 1: steps of the auxiliary task alone, before the rest",
    )
    ap.add_argument("--workers", type=int, default=0, help="data worker processes (0: render in-process)")
    args = ap.parse_args(argv)
    if (
        args.steps < 1
        or args.batch_size < 1
        or args.aux_batch < 0
        or args.workers < 0
        or args.vision_steps < 0
    ):
        print(
            "error: --steps and --batch-size must be positive, --aux-batch and --workers >= 0",
            file=sys.stderr,
        )
        return 2
    rec = train(
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        aux_weight=args.aux_weight,
        aux_batch=args.aux_batch,
        workers=args.workers,
        vision_steps=args.vision_steps,
    )
    print(json.dumps(rec, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
