"""One PGD step of the Qi et al. attack (``visual_adv``) at batch 8 vs. the bare transformers forward + backward.

    python benchmarks/bench_pgd.py                       # CPU, tiny LLaVA: steps/s and overhead %
    python benchmarks/bench_pgd.py --gpu-7b              # GPU: LLaVA-1.5-7B-shaped random weights, bf16
    python benchmarks/bench_pgd.py --gpu-7b --tiny-shape # the same code path with a small config (CPU check)

Torch CPU threads are pinned (``--threads``, default 1) and printed.

The attack's step is exactly what ``visual_adv`` runs: ``linf_pgd`` with the attack's own loss function (a
fresh ``random.sample`` of 8 targets from a corpus per step, ``WhiteBox.target_loss``, token-weighted mean),
signed-gradient update and eps-ball projection. The bare step is the minimal hand-written equivalent on the
same inputs (8 prompts, 8 targets of ~64 tokens, one image expanded to 8): pre-built token tensors,
normalised pixels as the gradient leaf, ``model(...)`` with ``logits_to_keep`` and cross-entropy on the target
tokens, ``torch.autograd.grad`` to the pixels; weights frozen in both. Nothing is downloaded: the 7B-shaped
model is built from its config (CLIP ViT-L/14-336 tower, 576 image tokens, Llama-7B text model) with random
weights, and the tokenizer/processor is the project's tiny byte-level one at 336 px.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = "make a plan get ready then do it with care and check each step before the next one".split()


def text_with_tokens(tok, n: int, seed: int) -> str:
    """A sentence of common words that tokenises (without special tokens) to exactly ``n`` tokens if possible."""
    rng = random.Random(seed)
    words = []
    while len(tok(" " + " ".join(words), add_special_tokens=False)["input_ids"]) < n:
        words.append(rng.choice(WORDS))
    text = " " + " ".join(words)
    while len(tok(text, add_special_tokens=False)["input_ids"]) > n and len(text) > 1:
        text = text[:-1]
    return text


def build(kind: str, folder: Path):
    """(model, processor, device, dtype) for kind tiny | 7b | 7b-tiny-shape."""
    import torch
    from transformers import (
        AutoModelForImageTextToText,
        AutoProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from baselines.models.tiny import build_tiny_llava

    if kind == "tiny":
        build_tiny_llava(folder, seed=0)
        model = AutoModelForImageTextToText.from_pretrained(folder).eval()
        return model, AutoProcessor.from_pretrained(folder), torch.device("cpu"), torch.float32
    side, patch = (336, 14) if kind == "7b" else (56, 14)
    build_tiny_llava(folder, seed=0, image_size=side, patch_size=patch)
    proc = AutoProcessor.from_pretrained(folder)
    tok = proc.tokenizer
    if kind == "7b":
        vis = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
        txt = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32)
        vocab = 32064
    else:
        vis = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4)
        txt = dict(hidden_size=128, intermediate_size=344, num_hidden_layers=2, num_attention_heads=4)
        vocab = 1024
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(image_size=side, patch_size=patch, projection_dim=768, **vis),
        text_config=LlamaConfig(
            vocab_size=vocab,
            num_key_value_heads=txt["num_attention_heads"],
            max_position_embeddings=4096,
            pad_token_id=tok.pad_token_id,
            **txt,
        ),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=(side // patch) ** 2,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    cuda = torch.cuda.is_available() and kind == "7b"
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            model = LlavaForConditionalGeneration(config).eval()
        finally:
            torch.set_default_dtype(prev)
    return model, proc, device, dtype


def flops_per_step(model, batch: int, n_img: int, n_text: int, n_target: int) -> float:
    """Matmul FLOPs of forward + input-gradient backward (weights frozen: backward ~= forward)."""
    cfg = model.config
    lm = model.model.language_model
    p_lm = sum(p.numel() for n, p in lm.named_parameters() if "embed_tokens" not in n)
    p_vis = sum(p.numel() for p in model.model.vision_tower.parameters())
    p_proj = sum(p.numel() for p in model.model.multi_modal_projector.parameters())
    s = 1 + n_img + n_text + n_target
    t = cfg.text_config
    fwd = 2 * p_lm * s + 2 * p_vis * (n_img + 1) + 2 * p_proj * n_img
    fwd += 4 * t.num_hidden_layers * t.hidden_size * s * s  # attention scores and values
    v = cfg.vision_config
    fwd += 4 * v.num_hidden_layers * v.hidden_size * (n_img + 1) ** 2
    fwd += 2 * t.hidden_size * t.vocab_size * (n_target + 1)  # LM head on the kept positions only
    return 2 * fwd * batch


def pgd_step_times(model, proc, device, *, batch: int, steps: int, target_tokens: int, folder: Path) -> dict:
    """Time one ``visual_adv`` PGD step and the bare transformers forward + backward at ``batch``.

    Both are warmed up, then timed in three interleaved repeats of ``steps`` steps; the best of each is kept.
    Returns seconds per step (``bare_s``, ``attack_s``), the FLOPs estimate and the token counts."""
    import torch
    import torch.nn.functional as F

    from baselines.attacks._pgd import frozen, linf_pgd
    from baselines.attacks.visual_adv import VisualAdv
    from baselines.models._hf_whitebox import LlavaWhiteBox

    folder.mkdir(parents=True, exist_ok=True)
    wb = LlavaWhiteBox(model, proc)
    tok = proc.tokenizer
    b, n_t = batch, target_tokens
    corpus = [text_with_tokens(tok, n_t, seed=i) for i in range(2 * b)]
    (folder / "corpus.txt").write_text("\n".join(c.strip() for c in corpus) + "\n")
    prompt = text_with_tokens(tok, 40, seed=99).strip()
    attack = VisualAdv({"targets": str(folder / "corpus.txt"), "batch_size": b, "prompt": prompt, "eps": 32})
    loss_fn, targets = attack.loss_function(wb)
    x0 = wb.pixels_from_images([attack.clean_image()])
    inputs = wb._batch([prompt] * b, targets[:b], None)
    n_img = int(wb.model.config.image_seq_length)
    n_text = int(inputs["input_ids"].shape[1] - inputs["labels"].shape[1] - n_img - 1)
    n_target = int(inputs["n_target"].float().mean())
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def bare_step() -> None:
        pv = wb.normalize(x0).expand(b, -1, -1, -1).contiguous().detach().requires_grad_(True)
        n = inputs["labels"].shape[1]
        out = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            position_ids=inputs["position_ids"],
            pixel_values=pv,
            use_cache=False,
            logits_to_keep=n + 1,
        )
        loss = F.cross_entropy(out.logits[:, :n].float().transpose(1, 2), inputs["labels"], ignore_index=-100)
        torch.autograd.grad(loss, pv)

    def timed(fn, n: int) -> float:
        sync()
        t = time.perf_counter()
        fn(n)
        sync()
        return (time.perf_counter() - t) / n

    with frozen(wb):
        timed(lambda n: [bare_step() for _ in range(n)], 2)  # warm-up
        attack_run = lambda n: linf_pgd(loss_fn, x0, steps=n, eps=32 / 255, random_start=True)  # noqa: E731
        timed(attack_run, 2)
        bare, att = [], []
        for _ in range(3):  # interleaved repeats; the best of each is reported
            bare.append(timed(lambda n: [bare_step() for _ in range(n)], steps))
            att.append(timed(attack_run, steps))
    return {
        "bare_s": min(bare),
        "attack_s": min(att),
        "flops": flops_per_step(model, b, n_img, n_text, n_target),
        "n_img": n_img,
        "n_text": n_text,
        "n_target": n_target,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--gpu-7b", action="store_true", help="LLaVA-1.5-7B-shaped random-weight model (GPU, bf16)"
    )
    ap.add_argument("--tiny-shape", action="store_true", help="with --gpu-7b: a small config (CPU check)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 10 on GPU, 20 on CPU)")
    ap.add_argument("--target-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, pinned (default 1)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)  # pinned: the figures of a shared machine depend on it
    kind = ("7b-tiny-shape" if args.tiny_shape else "7b") if args.gpu_7b else "tiny"
    tmp = Path(tempfile.mkdtemp(prefix="bench-pgd-"))
    t0 = time.perf_counter()
    model, proc, device, dtype = build(kind, tmp / "m")
    print(
        f"model: {kind}, {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B params, {dtype}, {device}, "
        f"built in {time.perf_counter() - t0:.1f} s, torch threads {torch.get_num_threads()}"
    )
    steps = args.steps or (10 if device.type == "cuda" else 20)
    r = pgd_step_times(
        model, proc, device, batch=args.batch, steps=steps, target_tokens=args.target_tokens, folder=tmp
    )
    tb, ta, flops = r["bare_s"], r["attack_s"], r["flops"]
    print(
        f"batch {args.batch}: 1 + {r['n_img']} image + {r['n_text']} text tokens, "
        f"{r['n_target']} target tokens per sample"
    )
    print(
        f"bare transformers fwd+bwd : {tb * 1e3:9.2f} ms/step  ({1 / tb:8.2f} steps/s, "
        f"{flops / tb / 1e12:7.2f} TFLOP/s)"
    )
    print(
        f"visual_adv PGD step       : {ta * 1e3:9.2f} ms/step  ({1 / ta:8.2f} steps/s, "
        f"{flops / ta / 1e12:7.2f} TFLOP/s)"
    )
    print(f"overhead of the attack    : {100 * (ta / tb - 1):+.1f} %  (target <= +10 %)")
    print(f"FLOPs per step (estimate) : {flops / 1e12:.2f} TFLOP")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
