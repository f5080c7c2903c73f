"""White-box (gradient) access to LLaVA-family hf models: the ``baselines.base.WhiteBox`` implementation.

Pixels are float tensors in [0, 1] at the vision tower's resolution; normalisation with the processor's
mean/std happens inside the graph, so gradients reach the [0, 1] pixels and the processor's own resize is not
part of an attack's graph. ``target_loss`` builds the padded token batch once per (prompts, targets) and
caches it, so a PGD step is one forward + backward of the model with no Python loop over examples.

Batch layout: ``[left pads | prompt (image tokens expanded) | target | right pads]``; every prompt ends at
the same column, so the target logits are the last ``T + 1`` positions (``logits_to_keep``: the LM head runs
on the target positions only) and position ids follow the attention mask, which makes a batched loss equal to
the per-example losses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from baselines.base import WhiteBox

_CACHE_SIZE = 8


class LlavaWhiteBox(WhiteBox):
    """Gradient access to a ``LlavaForConditionalGeneration`` (CLIP-style tower, fixed resolution)."""

    def __init__(self, model: Any, processor: Any) -> None:
        import torch

        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        ip = processor.image_processor
        side = int(model.config.vision_config.image_size)
        self._size = (side, side)
        dev = self.device
        self._mean = torch.tensor(ip.image_mean, dtype=torch.float32, device=dev).view(1, 3, 1, 1)
        self._std = torch.tensor(ip.image_std, dtype=torch.float32, device=dev).view(1, 3, 1, 1)
        self._batches: OrderedDict[tuple, dict[str, Any]] = OrderedDict()

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the vision tower's input."""
        return self._size

    @property
    def device(self) -> Any:
        """Device of the model's input embeddings."""
        return self.model.get_input_embeddings().weight.device

    # -- pixels <-> images -----------------------------------------------------------------------------------
    def pixels_from_images(self, images: Sequence[Any]) -> Any:
        """PIL images -> (B, 3, H, W) float32 in [0, 1], resized/cropped exactly as the processor does."""
        out = self.processor.image_processor(
            [im.convert("RGB") for im in images], do_normalize=False, return_tensors="pt"
        )
        return out["pixel_values"].float().clamp(0, 1).to(self.device)

    def images_from_pixels(self, pixels: Any) -> list[Any]:
        """(B, 3, H, W) in [0, 1] -> PIL RGB images (rounded to 8 bits)."""
        from PIL import Image

        arr = (pixels.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a, mode="RGB") for a in arr]

    def normalize(self, pixels: Any) -> Any:
        """[0, 1] pixels -> the tower's normalised input (differentiable), in the model's dtype."""
        return ((pixels.float() - self._mean) / self._std).to(self.model.dtype)

    # -- features and losses -------------------------------------------------------------------------------
    def image_embeddings(self, pixels: Any) -> Any:
        """Projected image features the language model sees, (B, n_image_tokens, d)."""
        import torch

        cfg = self.model.config
        out = self.model.get_image_features(
            pixel_values=self.normalize(pixels),
            vision_feature_layer=cfg.vision_feature_layer,
            vision_feature_select_strategy=cfg.vision_feature_select_strategy,
        )
        feats = out.pooler_output if hasattr(out, "pooler_output") else out
        return torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats

    def prompt_text(self, prompt: str, system: str | None = None) -> str:
        """The chat-formatted user turn (one image, then ``prompt``) with the generation prompt."""
        msgs: list[dict[str, Any]] = []
        if system:
            msgs.append({"role": "system", "content": [{"type": "text", "text": system}]})
        msgs.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]})
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def tokenize_pairs(
        self, prompts: Sequence[str], targets: Sequence[str], system: str | None = None
    ) -> tuple[Any, Any]:
        """Teacher-forcing inputs of a (prompt, target) batch: the chat-formatted prompts with one blank image
        each, left-padded, and the targets tokenized on their own, right-padded (a leading space matters).
        Shared by ``target_loss`` and attacks with their own loss masks (ImgJP)."""
        from PIL import Image

        tok = self.tokenizer
        blank = Image.new("RGB", (self._size[1], self._size[0]))
        side = tok.padding_side
        try:
            tok.padding_side = "left"
            p = self.processor(
                text=[self.prompt_text(x, system) for x in prompts],
                images=[blank] * len(prompts),
                padding=True,
                return_tensors="pt",
            )
            tok.padding_side = "right"
            t = tok(list(targets), add_special_tokens=False, padding=True, return_tensors="pt")
        finally:
            tok.padding_side = side
        return p, t

    def _batch(self, prompts: Sequence[str], targets: Sequence[str], system: str | None) -> dict[str, Any]:
        """The padded token batch for (prompts, targets), built once and cached."""
        import torch

        key = (tuple(prompts), tuple(targets), system)
        if key in self._batches:
            self._batches.move_to_end(key)
            return self._batches[key]
        p, t = self.tokenize_pairs(prompts, targets, system)
        if (t["attention_mask"].sum(1) == 0).any():
            raise ValueError("target_loss: every target must have at least one token")
        ids = torch.cat([p["input_ids"], t["input_ids"]], dim=1)
        mask = torch.cat([p["attention_mask"], t["attention_mask"]], dim=1)
        labels = t["input_ids"].masked_fill(t["attention_mask"] == 0, -100)
        dev = self.device
        batch = {
            "input_ids": ids.to(dev),
            "attention_mask": mask.to(dev),
            "position_ids": (mask.cumsum(-1) - 1).clamp(min=0).to(dev),
            "labels": labels.to(dev),
            "n_target": t["attention_mask"].sum(1).to(dev),
        }
        self._batches[key] = batch
        while len(self._batches) > _CACHE_SIZE:
            self._batches.popitem(last=False)
        return batch

    def target_loss(
        self, pixels: Any, prompts: Sequence[str], targets: Sequence[str], *, system: str | None = None
    ) -> Any:
        """Per-example mean cross-entropy (B,) of ``targets[i]`` after the user turn (image ``pixels[i]``,
        text ``prompts[i]``). ``pixels`` may have batch 1 (one image for every prompt: universal attacks).

        Targets are tokenised separately, as given, without special tokens: pass the exact continuation of
        the generation prompt (for the LLaVA-1.5 template, ``"ASSISTANT:"`` is followed by a space, so a
        byte-level BPE tokenizer needs the target with its leading space, e.g. ``" Sure"``).
        """
        import torch.nn.functional as F

        if len(prompts) != len(targets):
            raise ValueError(f"target_loss: {len(prompts)} prompts but {len(targets)} targets")
        b = len(prompts)
        if pixels.dim() != 4 or pixels.shape[0] not in (1, b):
            raise ValueError(f"target_loss: pixels must be (1 or {b}, 3, H, W), got {tuple(pixels.shape)}")
        batch = self._batch(prompts, targets, system)
        labels = batch["labels"]
        n_t = labels.shape[1]
        pv = self.normalize(pixels)
        if pv.shape[0] != b:
            pv = pv.expand(b, -1, -1, -1)
        out = self.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            pixel_values=pv,
            use_cache=False,
            logits_to_keep=n_t + 1,
        )
        logits = out.logits[:, :n_t].float()
        ce = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
        return ce.sum(1) / batch["n_target"]
