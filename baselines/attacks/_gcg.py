"""Greedy coordinate gradient (GCG) pieces for attacks that optimise a text suffix jointly with an image (UMK).

Works on LLaVA-family white boxes (``baselines.models._hf_whitebox.LlavaWhiteBox``: ``model``, ``processor``,
``tokenizer``, ``prompt_text``, ``image_embeddings``). Token batches follow the official UMK prompt wrapper
(spec 21 §1.2): the user turn is split around the suffix and each segment is tokenised on its own — the part
before the suffix with the processor (chat prefix, BOS, expanded image tokens), the suffix and the part after it
without special tokens — then concatenated, so the suffix occupies known positions whatever its neighbours.

- :class:`SuffixBatch` — ids, masks and the suffix/target positions of a (prompts, suffix, targets) batch;
  :func:`embed_batch` its input embeddings with the image features written over the image-token positions
  (differentiable in both the pixels and the embeddings), :func:`batch_loss` the target-only cross-entropy.
- :func:`sample_control` — GCG candidates: ``n`` suffixes, candidate ``c`` changes position
  ``int(c * L / n)`` to a token drawn uniformly from that position's top-k (most negative gradient).
- :func:`filter_candidates` — the official filter: keep a candidate whose decoded string differs from the
  current suffix and re-tokenises to the same length; rejected slots are back-filled with the last kept one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from baselines.base import WhiteBoxRequiredError

MARK = "\u0000SUFFIX\u0000"
_NEEDED = ("model", "processor", "tokenizer", "prompt_text", "image_embeddings")


def require_llava_white_box(attack: str, wb: Any) -> None:
    """Raise WhiteBoxRequiredError when ``wb`` lacks what the token-level suffix search needs."""
    missing = [a for a in _NEEDED if not hasattr(wb, a)]
    if missing:
        raise WhiteBoxRequiredError(
            f"attack {attack!r} optimises a text suffix and needs a LLaVA-family white box "
            f"(missing {', '.join(missing)}); use --model organism or --model hf:<a LLaVA model>"
        )


@dataclass
class SuffixBatch:
    """A left-padded batch ``[pads | before-suffix | suffix | after-suffix | target | pads]``."""

    input_ids: Any  # (B, T) long
    attention_mask: Any  # (B, T)
    position_ids: Any  # (B, T)
    labels: Any  # (B, T) target token ids at their positions, -100 elsewhere
    suffix_start: list[int]  # column where each row's suffix begins
    suffix_len: int


def encode_suffix(tokenizer: Any, suffix: str) -> list[int]:
    """Token ids of ``suffix`` on its own, without special tokens."""
    return list(tokenizer(suffix, add_special_tokens=False)["input_ids"])


def build_batch(
    wb: Any,
    prompts: Sequence[str],
    suffix_ids: Sequence[int],
    targets: Sequence[str],
    template: str = "{prompt}{suffix}",
) -> SuffixBatch:
    """The token batch of ``template`` (``{prompt}`` and ``{suffix}`` filled per row) after the chat prefix,
    with ``targets`` (tokenised as given, no special tokens) as the labelled continuation."""
    import torch
    from PIL import Image

    tok = wb.tokenizer
    h, w = wb.image_size
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    cache = _segment_cache(wb)
    rows, label_rows, starts = [], [], []
    for prompt, target in zip(prompts, targets, strict=True):
        key = (template, prompt, target)
        if key not in cache:
            text = wb.prompt_text(template.format(prompt=prompt, suffix=MARK))
            before, after = text.split(MARK, 1)
            blank = Image.new("RGB", (w, h))
            cache[key] = (
                wb.processor(text=[before], images=[blank], return_tensors="pt")["input_ids"][0].tolist(),
                list(tok(after, add_special_tokens=False)["input_ids"]) if after else [],
                list(tok(target, add_special_tokens=False)["input_ids"]),
            )
        ids_before, ids_after, ids_target = cache[key]
        if not ids_target:
            raise ValueError(f"target {target!r} has no tokens")
        ids = [*ids_before, *suffix_ids, *ids_after, *ids_target]
        rows.append(ids)
        label_rows.append([-100] * (len(ids) - len(ids_target)) + ids_target)
        starts.append(len(ids_before))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, label_rows, strict=True)):
        off = width - len(r)
        ids[i, off:] = torch.tensor(r)
        labels[i, off:] = torch.tensor(lab)
        mask[i, off:] = 1
        starts[i] += off
    dev = wb.device
    return SuffixBatch(
        input_ids=ids.to(dev),
        attention_mask=mask.to(dev),
        position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(dev),
        labels=labels.to(dev),
        suffix_start=starts,
        suffix_len=len(suffix_ids),
    )


def _segment_cache(wb: Any) -> dict[tuple[str, str, str], tuple[list[int], list[int], list[int]]]:
    """Per white box: (template, prompt, target) -> token ids of the parts before and after the suffix and of
    the target (the processor call that expands the image tokens is the slow part)."""
    cache = getattr(wb, "_suffix_segments", None)
    if cache is None:
        cache = {}
        wb._suffix_segments = cache
    if len(cache) > 4096:
        cache.clear()
    return cache


def image_token_id(wb: Any) -> int:
    """The id of the image placeholder token of a LLaVA config."""
    cfg = wb.model.config
    tid = getattr(cfg, "image_token_id", None)
    return int(cfg.image_token_index if tid is None else tid)


def embed_batch(wb: Any, batch: SuffixBatch, image_feats: Any, token_embeds: Any = None) -> Any:
    """Input embeddings of ``batch`` with ``image_feats`` (1 or B, n_image_tokens, d) at the image positions;
    ``token_embeds``: the token embeddings to start from (e.g. a leaf tensor whose gradient is wanted)."""
    emb = wb.model.get_input_embeddings()(batch.input_ids) if token_embeds is None else token_embeds
    is_img = (batch.input_ids == image_token_id(wb)).unsqueeze(-1)
    feats = image_feats.to(emb.dtype)
    if feats.shape[0] != emb.shape[0]:
        feats = feats.expand(emb.shape[0], -1, -1)
    return emb.masked_scatter(is_img.expand_as(emb), feats.reshape(-1, feats.shape[-1]))


def batch_loss(wb: Any, batch: SuffixBatch, embeds: Any, reduce: str = "tokens") -> Any:
    """Cross-entropy of the target tokens: ``reduce="tokens"`` the mean over every target token of the batch
    (as the models' own LM loss, the official ``outputs.loss``), ``"parts"`` the per-row (sum, count)."""
    import torch.nn.functional as F

    out = wb.model(
        inputs_embeds=embeds,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    )
    logits = out.logits[:, :-1].float()
    labels = batch.labels[:, 1:]
    ce = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
    n = (labels != -100).sum(1)
    if reduce == "parts":
        return ce.sum(1), n
    return ce.sum() / n.sum().clamp(min=1)


def token_gradient(wb: Any, batch: SuffixBatch, embeds_grad: Any) -> Any:
    """(L, V): per row, the embedding gradient at the suffix positions times the embedding matrix transposed
    (the one-hot token gradient), L2-normalised per position, summed over the rows (official UMK)."""
    weight = wb.model.get_input_embeddings().weight
    total = None
    for i, s in enumerate(batch.suffix_start):
        g = embeds_grad[i, s : s + batch.suffix_len].float() @ weight.float().T
        g = g / g.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        total = g if total is None else total + g
    return total


def sample_control(current: Sequence[int], grad: Any, n: int, topk: int, generator: Any) -> list[list[int]]:
    """``n`` candidates, each changing one position of ``current``: candidate ``c`` changes position
    ``int(c * L / n)`` to one of that position's ``topk`` tokens with the most negative gradient."""
    import torch

    length = len(current)
    top = (-grad).topk(min(topk, grad.shape[-1]), dim=-1).indices.cpu()
    picks = torch.randint(0, top.shape[1], (n,), generator=generator)
    out = []
    for c in range(n):
        pos = int(c * length / n)
        cand = list(current)
        cand[pos] = int(top[pos, picks[c]])
        out.append(cand)
    return out


def filter_candidates(tokenizer: Any, candidates: Sequence[Sequence[int]], current: str) -> list[str]:
    """Decoded candidates that differ from ``current`` and re-tokenise to their own length; the rejected
    slots are back-filled with the last kept candidate (official ``get_filtered_cands``); [] if none is kept."""
    kept: list[str] = []
    for cand in candidates:
        text = tokenizer.decode(list(cand), skip_special_tokens=True)
        if text != current and len(encode_suffix(tokenizer, text)) == len(cand):
            kept.append(text)
    if not kept:
        return []
    return kept + [kept[-1]] * (len(candidates) - len(kept))
