"""Shared helpers of the gradient attacks (Qi et al. ``visual_adv``, ``imgjp``, ``hades``, ``jailbreak_in_pieces``).

- :func:`linf_pgd` — the one signed-gradient L-inf PGD in [0, 1] pixel space (BASELINES.md §18.1-18.4): descent
  on a loss, ``x <- clip(x - alpha * sign(grad), 0, 1)`` with an optional eps-ball around the clean image
  (Qi et al. ``visual_attacker.py``: ``delta <- clip(delta - alpha*sign(grad), -eps, eps)``, then
  ``delta <- clip(x + delta, 0, 1) - x``), a uniform random start, and an optional mask (HADES's patch: only
  the masked pixels move; with a random start they start from U(0, 1) noise).
- :func:`require_white_box` — the clear refusal for back-ends without gradient access.
- :func:`frozen` — parameters frozen and the model in eval mode while attacking (gradients only to pixels).
- :func:`assistant_prefix` — what separates the generation prompt from the assistant's first word, so that
  targets tokenise as the model would generate them (" Sure" after ``ASSISTANT:`` for byte-level BPE,
  "Sure" for SentencePiece tokenizers that add their own prefix space).
- :func:`neutral_image` — a seeded, harmless stand-in picture for attacks whose paper starts from a photo that
  is not redistributable here.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from baselines.base import Model, WhiteBox, WhiteBoxRequiredError

LossFn = Callable[[Any, int], Any]  # (pixels in [0, 1], step index) -> scalar loss tensor


@dataclass
class PGDResult:
    """The adversarial pixels, the loss at every step (before that step's update) and the settings used."""

    pixels: Any
    losses: list[float] = field(default_factory=list)
    eps: float | None = None
    alpha: float = 1 / 255
    steps: int = 0


def require_white_box(attack: str, model: Model) -> WhiteBox:
    """``model.white_box`` or WhiteBoxRequiredError saying what is needed and how to get it."""
    wb = model.white_box
    if wb is None:
        backend = getattr(model, "name", "") or type(model).__name__
        raise WhiteBoxRequiredError(
            f"attack {attack!r} needs gradient access (white-box) to the model, but the {backend!r} back-end "
            f"has none; use --model organism or --model hf:<a local or hub LLaVA-family model>"
        )
    return wb


@contextlib.contextmanager
def frozen(wb: WhiteBox) -> Iterator[None]:
    """Model parameters not requiring gradients and the model in eval mode, restored afterwards."""
    model = getattr(wb, "model", None)
    if model is None:
        yield
        return
    saved = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    for p, _ in saved:
        p.requires_grad_(False)
    model.eval()
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
        model.train(was_training)


def linf_pgd(
    loss_fn: LossFn,
    x0: Any,
    *,
    steps: int,
    alpha: float = 1 / 255,
    eps: float | None = None,
    random_start: bool = False,
    mask: Any = None,
    generator: Any = None,
    progress: str | None = None,
) -> PGDResult:
    """Signed-gradient descent on ``loss_fn`` over pixels in [0, 1] (see the module docstring).

    ``x0``: clean pixels (B, 3, H, W) in [0, 1]. ``eps``: L-inf radius around ``x0`` (None: unconstrained,
    only [0, 1]). ``random_start``: constrained -> delta ~ U(-eps, eps); unconstrained -> x ~ U(0, 1) (inside
    ``mask`` only, when given). ``mask``: broadcastable to ``x0``, 1 where pixels may change. Losses are kept on
    the device and read once at the end (no per-step synchronisation). ``progress``: a tqdm bar label.
    """
    import torch
    from tqdm import tqdm

    x0 = x0.detach().float()
    m = None if mask is None else mask.to(device=x0.device, dtype=x0.dtype)

    def rand_like(t: Any) -> Any:
        return torch.rand(t.shape, generator=generator, device="cpu", dtype=t.dtype).to(t.device)

    if eps is None:
        x = rand_like(x0) if random_start else x0.clone()
        if m is not None:
            x = x0 * (1 - m) + x * m
        delta = None
    else:
        delta = (rand_like(x0) * 2 - 1) * eps if random_start else torch.zeros_like(x0)
        if m is not None:
            delta = delta * m
        delta = (x0 + delta).clamp(0, 1) - x0
        x = x0 + delta
    history = []
    for t in tqdm(range(steps), desc=progress, unit="step", disable=progress is None, leave=False):
        x = x.detach().requires_grad_(True)
        loss = loss_fn(x, t)
        (grad,) = torch.autograd.grad(loss, x)
        history.append(loss.detach())
        with torch.no_grad():
            step = alpha * grad.sign()
            if m is not None:
                step = step * m
            if delta is None:
                x = (x - step).clamp(0, 1)
            else:
                delta = (delta - step).clamp(-eps, eps)
                delta = (x0 + delta).clamp(0, 1) - x0
                x = x0 + delta
    losses = torch.stack(history).float().cpu().tolist() if history else []
    return PGDResult(pixels=x.detach(), losses=losses, eps=eps, alpha=alpha, steps=steps)


def assistant_prefix(wb: WhiteBox) -> str:
    """The text between the generation prompt and the assistant's first word ("" or " ")."""
    proc = getattr(wb, "processor", None)
    if proc is None:
        return ""
    try:
        user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
        gen = proc.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
        full = proc.apply_chat_template(
            [*user, {"role": "assistant", "content": [{"type": "text", "text": "Sure"}]}], tokenize=False
        )
    except Exception:  # noqa: BLE001 - a template without an assistant turn: assume no separator
        return ""
    if not full.startswith(gen) or "Sure" not in full[len(gen) :]:
        return ""
    prefix = full[len(gen) :].split("Sure", 1)[0]
    if prefix == " ":
        tok = proc.tokenizer
        first = tok.convert_ids_to_tokens(tok("Sure", add_special_tokens=False)["input_ids"])[0]
        if first.startswith("\u2581"):  # SentencePiece adds the space itself
            return ""
    return prefix


def as_targets(wb: WhiteBox, texts: list[str]) -> list[str]:
    """Targets as the continuation of the generation prompt (see :func:`assistant_prefix`)."""
    prefix = assistant_prefix(wb)
    return [t if (not prefix or t[:1].isspace()) else prefix + t for t in texts]


def neutral_image(size: tuple[int, int] = (400, 400), seed: int = 0) -> Any:
    """A seeded harmless picture (smooth colour gradient with a few soft shapes), PIL RGB of ``size`` (w, h)."""
    from PIL import Image, ImageDraw, ImageFilter

    w, h = size
    rng = random.Random(seed)
    c0 = [rng.randint(60, 200) for _ in range(3)]
    c1 = [rng.randint(60, 200) for _ in range(3)]
    import numpy as np

    a = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    grad = np.asarray(c0, np.float32) * (1 - a) + np.asarray(c1, np.float32) * a
    img = Image.fromarray(np.broadcast_to(grad, (h, w, 3)).round().astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x, y, r = rng.randint(0, w), rng.randint(0, h), rng.randint(w // 10, w // 4)
        color = tuple(rng.randint(40, 230) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    return img.filter(ImageFilter.GaussianBlur(radius=max(1, w // 100)))


def save_png(image: Any, path: str) -> str:
    """Save an adversarial image losslessly (PNG) and return the path (JPEG would destroy the perturbation)."""
    from pathlib import Path

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    image.save(p, format="PNG")
    return str(p)
