"""Turning samples into model inputs for the hf back-end: prompt texts and a fast, exact image path.

The fast image path: an image processor with the PIL back-end converts every image to numpy, back to PIL and
resizes it there — for a 760x760 FigStep image and a 64 px tower that is ~5 ms of copies and resampling per
image. :func:`pre_resize` makes that very same PIL ``resize`` call (same target size, same filter) once, up
front, so the processor then meets an image that already has its target size: its own resize is an identity
(``Image.resize`` to the same size returns a copy) and the ``pixel_values`` are bit-identical to the slow path.
Processors whose resizing this module cannot mirror exactly (torchvision back-ends, custom ``resize`` methods
such as LLaVA-NeXT's any-res tiling) are left alone.

Heavy imports stay inside functions.
"""

from __future__ import annotations

from typing import Any

from baselines.types import Sample


def _generic_target(ip: Any, height: int, width: int) -> tuple[int, int] | None:
    """(height, width) that ``PilBackend.resize`` would produce for this input size, or None if unknown."""
    from transformers.image_transforms import get_size_with_aspect_ratio

    size = ip.size
    get = size.get if hasattr(size, "get") else lambda k, d=None: getattr(size, k, d)
    short, long_ = get("shortest_edge"), get("longest_edge")
    if short and long_:
        return tuple(get_size_with_aspect_ratio((height, width), short, long_))  # type: ignore[return-value]
    if short:
        s, lg = (width, height) if width <= height else (height, width)
        new_short, new_long = short, int(short * lg / s)
        return (new_long, new_short) if width <= height else (new_short, new_long)
    if get("height") and get("width") and not get("max_height"):
        return int(get("height")), int(get("width"))
    return None


def _qwen_target(ip: Any, height: int, width: int) -> tuple[int, int] | None:
    """(height, width) that the Qwen2-VL PIL image processor resizes to (``smart_resize``)."""
    import importlib

    mod = importlib.import_module(type(ip).__module__)
    size = ip.size
    get = size.get if hasattr(size, "get") else lambda k, d=None: getattr(size, k, d)
    lo, hi = get("shortest_edge"), get("longest_edge")
    if not (lo and hi):
        return None
    return tuple(
        mod.smart_resize(height, width, factor=ip.patch_size * ip.merge_size, min_pixels=lo, max_pixels=hi)
    )  # type: ignore[return-value]


def resize_rule(ip: Any):  # noqa: ANN201 - a callable or None
    """The function (h, w) -> target (h, w) mirroring ``ip``'s own resizing, or None when not mirrored."""
    try:
        from transformers.image_processing_backends import PilBackend
    except ImportError:  # pragma: no cover - older transformers: no fast path
        return None
    if not isinstance(ip, PilBackend) or not getattr(ip, "do_resize", False):
        return None
    resize = type(ip).resize
    if resize is PilBackend.resize:
        return lambda h, w: _generic_target(ip, h, w)
    if type(ip).__name__ in ("Qwen2VLImageProcessorPil", "Qwen2_5_VLImageProcessorPil"):
        return lambda h, w: _qwen_target(ip, h, w)
    return None


def pre_resize(image: Any, ip: Any, rule: Any) -> Any:
    """``image`` as RGB and, where ``rule`` mirrors the processor exactly, already at its target size."""
    im = image if image.mode == "RGB" else image.convert("RGB")
    if rule is None or 0 in im.size:
        return im
    w, h = im.size
    target = rule(h, w)
    if target is None or tuple(target) == (h, w) or rule(*target) != tuple(target):
        return im  # unknown, nothing to do, or not idempotent (the processor would resize again)
    th, tw = target
    resample = ip.resample if ip.resample is not None else 2  # PilBackend's default: BILINEAR
    return im.resize((tw, th), resample=int(resample))


def count_image_parts(messages: Any) -> int:
    """Number of ``{"type": "image"}`` parts in a chat ``messages`` list."""
    n = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            n += sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image")
    return n


def literal_image_token(text: str, token: str | None) -> str:
    """``text`` with every literal ``token`` (the processor's image placeholder, e.g. LLaVA's ``<image>``) written
    with the case of its first letter swapped (``<Image>``), so that the processor does not expand it into image
    tokens: in a chat prompt the images are the message's image parts, and a placeholder that is part of the text
    (VLSBench's judge template holds ``[INPUT]\n<image>``, written for GPT-4o, which reads it as text) stays
    text. Recorded in the hf back-end's deviations ledger."""
    if not token or token not in text:
        return text
    i = next((k for k, ch in enumerate(token) if ch.isalpha()), None)
    if i is None:
        return text
    return text.replace(token, token[:i] + token[i].swapcase() + token[i + 1 :])


def sample_mode(sample: Sample) -> str:
    """How a sample's prompt is built: "raw" (meta raw_prompt), "messages" (meta messages) or "chat"."""
    if sample.meta.get("raw_prompt"):
        return "raw"
    if sample.meta.get("messages") is not None:
        return "messages"
    return "chat"
