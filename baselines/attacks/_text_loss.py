"""ImgJP's loss: cross-entropy over every text token of the rendered conversation (BASELINES.md §6.2, §18.3).

``WhiteBox.target_loss`` scores the target tokens only (Qi et al., HADES). ImgJP's official code scores all
text tokens of prompt + goal + target and ignores only the image positions; this module computes that on
LLaVA-family white boxes (``baselines.models._hf_whitebox.LlavaWhiteBox``: it needs ``model``, ``processor``,
``normalize`` and ``prompt_text``). Batch layout as there: ``[left pads | prompt | target | right pads]``,
position ids from the attention mask, token batches cached per (prompts, targets).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baselines.base import WhiteBoxRequiredError

_NEEDED = ("model", "processor", "normalize", "tokenize_pairs")


class TextTokenLoss:
    """Callable ``(pixels, prompts, targets, reduce=False)`` -> per-example mean CE over all text tokens
    (shape (B,)), or with ``reduce=True`` the token-weighted mean over the batch (a scalar)."""

    def __init__(self, wb: Any) -> None:
        missing = [a for a in _NEEDED if not hasattr(wb, a)]
        if missing:
            raise WhiteBoxRequiredError(
                f"the all-text-token loss needs a LLaVA-family white box (missing {', '.join(missing)}); "
                "use --set loss=target"
            )
        self.wb = wb
        cfg = wb.model.config
        self.image_token_id = getattr(cfg, "image_token_id", None)
        if self.image_token_id is None:
            self.image_token_id = cfg.image_token_index
        self._cache: dict[tuple, dict[str, Any]] = {}

    def batch(self, prompts: Sequence[str], targets: Sequence[str]) -> dict[str, Any]:
        """Token ids, attention mask, position ids and labels (image and pad positions -100), cached."""
        import torch

        key = (tuple(prompts), tuple(targets))
        if key in self._cache:
            return self._cache[key]
        wb = self.wb
        p, t = wb.tokenize_pairs(prompts, targets)
        ids = torch.cat([p["input_ids"], t["input_ids"]], dim=1)
        mask = torch.cat([p["attention_mask"], t["attention_mask"]], dim=1)
        labels = ids.masked_fill((mask == 0) | (ids == self.image_token_id), -100)[:, 1:]
        dev = wb.device
        out = {
            "input_ids": ids.to(dev),
            "attention_mask": mask.to(dev),
            "position_ids": (mask.cumsum(-1) - 1).clamp(min=0).to(dev),
            "labels": labels.to(dev),
            "n": (labels != -100).sum(1).clamp(min=1).to(dev),
        }
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    def __call__(
        self, pixels: Any, prompts: Sequence[str], targets: Sequence[str], *, reduce: bool = False
    ) -> Any:
        import torch.nn.functional as F

        b = self.batch(prompts, targets)
        pv = self.wb.normalize(pixels)
        if pv.shape[0] != len(prompts):
            pv = pv.expand(len(prompts), -1, -1, -1)
        out = self.wb.model(
            input_ids=b["input_ids"],
            attention_mask=b["attention_mask"],
            position_ids=b["position_ids"],
            pixel_values=pv,
            use_cache=False,
        )
        logits = out.logits[:, :-1].float()
        ce = F.cross_entropy(logits.transpose(1, 2), b["labels"], ignore_index=-100, reduction="none").sum(1)
        return ce.sum() / b["n"].sum() if reduce else ce / b["n"]
