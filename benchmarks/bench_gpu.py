"""GPU figures of the harness on 7B-shaped models with random weights (nothing downloaded), in one script.

    python benchmarks/bench_gpu.py                 # GPU: LLaVA-1.5-7B- and Qwen2-VL-7B-shaped, bf16
    python benchmarks/bench_gpu.py --tiny          # the same code paths on small configs (CPU check)
    python benchmarks/bench_gpu.py --models llava --n 64 --batch-size 64 --bare-n 8 --max-new-tokens 128

For each model it prints, in s/sample on the same FigStep samples: the bare one-at-a-time ``generate`` loop
(on ``--bare-n`` samples: at ~5 s/sample a 64-sample bare loop would not fit a device check), the harness
(``baselines.harness.execute``: render, hash, generate, refusal judge, records) and the plain batched loop
(render, template, one processor call, ``generate``, decode per batch), each with its peak GPU memory; and for
LLaVA the ``visual_adv`` PGD step (forward + backward to the pixels) at batch 1 and 8 next to the bare
transformers step. Every answer is forced to exactly ``--max-new-tokens`` tokens (``min_new_tokens``), as in
the anchors of ``shared/notes/gpu-anchors.md`` (H200, bf16: bare loop 4.97 s/sample, batched HF 0.113
s/sample at batch 64, PGD step at batch 8 0.415 s).

Models are built from their configs (LLaVA-1.5-7B: CLIP ViT-L/14-336 tower, 576 image tokens, Llama-7B text
model; Qwen2-VL-7B: 32-block ViT, 672 px images -> 576 merged image tokens, Qwen2-7B text model) with the
project's tiny byte-level tokenizer and processors (``baselines.models.tiny``). The model objects are handed to
the hf back-end as they are (no save/reload of 15 GB of random weights).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_harness import bare_loop, batched_loop, harness_run, make_samples, pin_threads  # noqa: E402
from bench_pgd import build as build_llava  # noqa: E402
from bench_pgd import pgd_step_times  # noqa: E402

ANCHORS = {"bare": 4.97, "batched_b64": 0.113, "pgd_b8": 0.415}  # H200, LLaVA-1.5-7B-shaped, bf16


def build_qwen(kind: str, folder: Path) -> tuple[Any, Any, Any, Any]:
    """(model, processor, device, dtype): a Qwen2-VL-7B-shaped model (``7b``) or the tiny one (``7b-tiny-shape``)."""
    import torch
    from transformers import AutoModelForImageTextToText, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from baselines.models._qwen_processor import load_qwen2vl_processor
    from baselines.models.tiny import build_tiny_qwen2vl

    big = kind == "7b"
    build_tiny_qwen2vl(folder, seed=0, image_size=672 if big else 112)
    proc = load_qwen2vl_processor(str(folder), revision=None, local_files_only=True)
    if not big:
        return (
            AutoModelForImageTextToText.from_pretrained(folder).eval(),
            proc,
            torch.device("cpu"),
            torch.float32,
        )
    tok = proc.tokenizer
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": 152064,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 32768,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [16, 24, 24],
            },
            "bos_token_id": None,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "depth": 32,
            "embed_dim": 1280,
            "hidden_size": 3584,
            "num_heads": 16,
            "mlp_ratio": 4,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    device = torch.device("cuda")
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with device:
            model = Qwen2VLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(prev)
    return model, proc, device, torch.bfloat16


def as_backend(model: Any, processor: Any, name: str, batch_size: int) -> Any:
    """The hf back-end around an already built (model, processor): what the harness queries."""
    from baselines.models.hf import HFModel

    class Prebuilt(HFModel):
        """An HFModel whose model and processor are handed in instead of loaded from a folder."""

        def _load(self) -> None:
            self.model, self.processor = model, processor
            self.revision = "random-init"
            self._white_box = None

    tok = processor.tokenizer
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return Prebuilt({"id": name, "batch_size": batch_size, "local_files_only": True})


def force_length(model: Any, n: int, tok: Any) -> None:
    """Make every answer exactly ``n`` new tokens long (as the anchors are measured)."""
    gc_ = model.generation_config
    gc_.min_new_tokens = n
    gc_.max_new_tokens = n
    gc_.do_sample = False
    gc_.eos_token_id = tok.eos_token_id
    gc_.pad_token_id = tok.pad_token_id


class Meter:
    """Wall seconds and peak GPU memory of a block (CUDA synchronised)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda

    def __call__(self, fn) -> tuple[float, float | None, Any]:
        """(seconds, peak GiB or None on CPU, result of ``fn()``)."""
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        out = fn()
        if self.cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
        return dt, peak, out


def gib(x: float | None) -> str:
    """Peak memory for printing."""
    return "peak n/a (CPU)" if x is None else f"peak {x:6.1f} GiB"


def bench_model(which: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Build one model and print its generation figures (and PGD figures for LLaVA)."""
    import torch

    from baselines.attacks.figstep import FigStep

    kind = "7b-tiny-shape" if args.tiny else "7b"
    t0 = time.perf_counter()
    builder = build_llava if which == "llava" else build_qwen
    model, proc, device, dtype = builder(kind, tmp / which)
    n_params = sum(p.numel() for p in model.parameters())
    cuda = device.type == "cuda"
    print(
        f"\n== {which}: {kind}, {n_params / 1e9:.2f} B params, {str(dtype).replace('torch.', '')}, {device}, "
        f"built in {time.perf_counter() - t0:.1f} s"
    )
    force_length(model, args.max_new_tokens, proc.tokenizer)
    hf = as_backend(model, proc, f"random-{which}-{kind}", args.batch_size)
    meter = Meter(cuda)
    samples = make_samples(args.n)
    attack = FigStep()
    attacked = attack.apply(samples, None)
    enc = proc(text=[hf.prompt_text(attacked[0])], images=list(attacked[0].images), return_tensors="pt")
    print(
        f"prompt: {enc['input_ids'].shape[1]} tokens (image tokens included), {args.max_new_tokens} new tokens"
    )
    # warm-up of each path (kernels, allocator, the back-end's helpers) at the timed answer length
    bare_loop(hf, attacked[:1], args.max_new_tokens)
    batched_loop(hf, samples[:2], 2, args.max_new_tokens, attack)
    harness_run(hf, f"hf:{hf.hf_params.id}", samples[:2], 2, args.max_new_tokens, tmp / "warm")
    out: dict[str, Any] = {"which": which}
    t, peak, _ = meter(lambda: bare_loop(hf, attacked[: args.bare_n], args.max_new_tokens))
    out["bare"] = t / args.bare_n
    print(f"bare one-at-a-time loop : {out['bare']:8.3f} s/sample  ({args.bare_n} samples)  {gib(peak)}")
    t, peak, res = meter(
        lambda: harness_run(
            hf, f"hf:{hf.hf_params.id}", samples, args.batch_size, args.max_new_tokens, tmp / "runs"
        )
    )
    out["harness"] = t / args.n
    print(
        f"harness, batch {args.batch_size:<3}      : {out['harness']:8.3f} s/sample  ({args.n} samples)  "
        f"{gib(peak)}  (generate {res.stats['generate_s']:.1f} s of {res.stats['total_s']:.1f} s)"
    )
    t, peak, _ = meter(lambda: batched_loop(hf, samples, args.batch_size, args.max_new_tokens, attack))
    out["batched"] = t / args.n
    print(
        f"plain batched loop, b{args.batch_size:<3}: {out['batched']:8.3f} s/sample  ({args.n} samples)  {gib(peak)}"
    )
    print(
        f"harness / plain batched loop: {out['harness'] / out['batched']:.3f}x; batching speed-up over the bare "
        f"loop: {out['bare'] / out['batched']:.1f}x (plain), {out['bare'] / out['harness']:.1f}x (harness)"
    )
    if which == "llava" and not args.no_pgd:
        for b in (1, 8):
            r = pgd_step_times(
                model, proc, device, batch=b, steps=args.pgd_steps, target_tokens=64, folder=tmp / f"pgd{b}"
            )
            out[f"pgd_b{b}"] = r["attack_s"]
            print(
                f"PGD step, batch {b}       : {r['attack_s']:8.3f} s (bare fwd+bwd {r['bare_s']:.3f} s; "
                f"{r['flops'] / r['attack_s'] / 1e12:.1f} TFLOP/s; 1 + {r['n_img']} image + {r['n_text']} text "
                f"+ {r['n_target']} target tokens)"
            )
    elif which != "llava":
        print("PGD step: white-box access is implemented for LLaVA-family models only (not timed here)")
    if cuda and which == "llava" and not args.tiny:
        got = {"bare": out["bare"], "batched_b64": out["batched"], "pgd_b8": out.get("pgd_b8")}
        print(
            "anchors (H200): "
            + ", ".join(f"{k} {ANCHORS[k]:.3f} s vs {v:.3f} s" for k, v in got.items() if v is not None)
        )
    hf.model = None  # free the weights before the next model is built
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the options, check the device, run each model's figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="small configs on CPU (a check of the code paths)")
    ap.add_argument("--models", default="llava,qwen2vl", help="comma-separated: llava, qwen2vl")
    ap.add_argument("--n", type=int, default=64, help="samples for the harness and the batched loop")
    ap.add_argument("--bare-n", type=int, default=8, help="samples for the bare one-at-a-time loop")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--pgd-steps", type=int, default=5, help="timed PGD steps per repeat")
    ap.add_argument("--no-pgd", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, pinned")
    args = ap.parse_args(argv)
    pin_threads(args.threads)

    import torch

    if not args.tiny and not torch.cuda.is_available():
        print(
            "error: no CUDA device; the 7B-shaped models need a GPU (use --tiny for a CPU check)",
            file=sys.stderr,
        )
        return 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in ("llava", "qwen2vl")]
    if bad:
        print(f"error: unknown model(s) {', '.join(bad)}; choose from llava, qwen2vl", file=sys.stderr)
        return 2
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.tiny else "CPU"
    print(
        f"device: {dev}; torch {torch.__version__}; samples {args.n}, batch {args.batch_size}, "
        f"{args.max_new_tokens} new tokens per answer; torch CPU threads {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        for m in models:
            bench_model(m, args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
