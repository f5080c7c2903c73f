"""CoCA's decoding loop: two branches (with / without the principle) stepped in lock-step on one model.

At every step each branch runs one forward pass (with a KV cache by default, or re-running the whole sequence
as OmniSafeBench does); the next-token logits L_p (principle in the prompt) and L_0 (without) are combined by
:func:`calibrate` and the next token is chosen from the calibrated logits (argmax, or a sample under the run's
temperature / top-p); the *same* token is appended to both branches. A row stops at the back-end's EOS ids.

Each branch is prepared exactly as the back-end prepares a batch for ``generate`` (its prompt text, its
processor call through ``_hf_gen.prepare``, left padding) and positioned as ``transformers`` ``generate`` does
(position ids from the attention mask, an all-ones mask dropped), so that with ``alpha = 0`` the tokens are
those of the back-end's own greedy decoding of the with-principle prompts. Heavy imports stay inside functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from baselines.types import GenerationConfig, Sample


def calibrate(l_p: Any, l_0: Any, alpha: float, base: str = "principle") -> Any:
    """Calibrated logits: ``L_base + alpha * (L_p - L_0)``, base = L_p ("principle", OmniSafeBench) or L_0."""
    delta = l_p - l_0
    return (l_p if base == "principle" else l_0) + alpha * delta


def top_p_filter(logits: Any, top_p: float) -> Any:
    """``logits`` with the tokens outside the top-p nucleus set to -inf (as transformers' TopPLogitsWarper:
    the smallest set whose probability reaches ``top_p``; at least one token kept)."""
    import torch

    if top_p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cum <= (1 - top_p)
    remove[..., -1:] = False
    mask = remove.scatter(-1, sorted_idx, remove)
    return logits.masked_fill(mask, float("-inf"))


def choose(logits: Any, config: GenerationConfig, generator: Any) -> Any:
    """Next token per row: argmax when greedy, else a sample at the run's temperature and top-p."""
    import torch

    if config.greedy:
        return torch.argmax(logits, dim=-1)
    scores = top_p_filter(logits / config.temperature, config.top_p)
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs.cpu(), num_samples=1, generator=generator).squeeze(1).to(logits.device)


def initial_positions(model: Any, inputs: dict[str, Any]) -> Any:
    """Position ids of the prompt as ``generate`` makes them: the model's own rule where it has one (3-D
    rope models), else the cumulative attention mask (0 at left padding)."""
    mask = inputs["attention_mask"]
    own = getattr(model, "_prepare_position_ids_for_generation", None)
    if own is not None:
        return own(inputs["input_ids"], dict(inputs))
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)


@dataclass
class Branch:
    """One prompt variant of a batch: model inputs, positions, mask and (optionally) the KV cache."""

    inputs: dict[str, Any]
    use_cache: bool
    model: Any = None  # the transformers model (for its own position-id rule)
    position_ids: Any = None
    mask: Any = None  # None when the prompt batch has no padding (as generate drops an all-ones mask)
    cache: Any = None
    generated: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        mask = self.inputs["attention_mask"]
        self.position_ids = initial_positions(self.model, self.inputs)
        self.mask = None if bool((mask == 1).all()) else mask

    def logits(self, model: Any) -> Any:
        """(B, V) float32 next-token logits after the prompt and every token appended so far."""
        import torch

        n = len(self.generated)
        with torch.inference_mode():
            if self.use_cache and n > 0:
                kw = {k: v[..., -1:] for k, v in self._typed(n).items()}
                kw.update(
                    input_ids=self.generated[-1].unsqueeze(1),
                    attention_mask=None if self.mask is None else self._mask(n),
                    position_ids=self.position_ids[..., -1:] + n,
                )
                out = model(**kw, cache=self.cache, use_cache=True)
            else:
                kw = dict(self.inputs)
                kw.update(self._typed(n))
                if n:
                    kw["input_ids"] = torch.cat([kw["input_ids"], torch.stack(self.generated, 1)], dim=1)
                kw["attention_mask"] = None if self.mask is None else self._mask(n)
                last = self.position_ids[..., -1:]
                steps = torch.arange(1, n + 1, device=last.device, dtype=last.dtype)
                kw["position_ids"] = torch.cat([self.position_ids, last + steps], dim=-1)
                out = model(**kw, use_cache=self.use_cache, logits_to_keep=1)
            if self.use_cache:
                cache = getattr(out, "cache", None)
                self.cache = cache if cache is not None else getattr(out, "past_key_values", None)
        return out.logits[:, -1, :].float()

    def _typed(self, n: int) -> dict[str, Any]:
        """Per-token type inputs extended over ``n`` generated tokens, as ``generate`` extends them
        (``token_type_ids`` repeat the last value, ``mm_token_type_ids`` are 0 for text)."""
        import torch

        out = {}
        for key in ("token_type_ids", "mm_token_type_ids"):
            v = self.inputs.get(key)
            if v is not None:
                tail = v[:, -1:].expand(-1, n) if key == "token_type_ids" else v.new_zeros((v.shape[0], n))
                out[key] = torch.cat([v, tail], dim=-1) if n else v
        return out

    def _mask(self, n: int) -> Any:
        import torch

        ones = torch.ones((self.mask.shape[0], n), dtype=self.mask.dtype, device=self.mask.device)
        return torch.cat([self.mask, ones], dim=1)


@dataclass
class Decoded:
    """Generated ids of one row (up to and including EOS) and per-row diagnostics."""

    ids: list[int]
    n_changed: int  # steps whose chosen token differs from the argmax of the with-principle logits


def batch_inputs(backend: Any, samples: Sequence[Sample], texts: Sequence[str]) -> dict[str, Any]:
    """The processor output for one batch, on the model's device, exactly as the back-end's ``generate``."""
    from baselines.models._hf_gen import prepare

    inputs, _ = prepare(backend, list(samples), list(texts))
    inputs = inputs.to(backend.device)
    if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
        inputs["pixel_values"] = inputs["pixel_values"].to(backend.model.dtype)
    return dict(inputs)


def decode(
    backend: Any,
    with_p: dict[str, Any],
    without_p: dict[str, Any],
    config: GenerationConfig,
    *,
    alpha: float,
    base: str,
    use_cache: bool,
    eos_ids: set[int],
    pad_id: int | None,
    generator: Any = None,
) -> list[Decoded]:
    """Lock-step calibrated decoding of one batch (rows i of both branches belong to one sample)."""
    import torch

    bp, b0 = Branch(with_p, use_cache, model=backend.model), Branch(without_p, use_cache, model=backend.model)
    rows = with_p["input_ids"].shape[0]
    if without_p["input_ids"].shape[0] != rows:
        raise ValueError("coca: both branches must hold the same samples")
    device = with_p["input_ids"].device
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device) if eos_ids else None
    out: list[list[int]] = [[] for _ in range(rows)]
    changed = [0] * rows
    pad = pad_id if pad_id is not None else 0
    for _ in range(config.max_new_tokens):
        l_p, l_0 = bp.logits(backend.model), b0.logits(backend.model)
        cal = calibrate(l_p, l_0, alpha, base)
        nxt = choose(cal, config, generator)
        differs = (nxt != torch.argmax(l_p, dim=-1)) & ~done
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        for i, (t, d, c) in enumerate(zip(nxt.tolist(), done.tolist(), differs.tolist(), strict=True)):
            if not d:
                out[i].append(t)
                changed[i] += int(c)
        bp.generated.append(nxt)
        b0.generated.append(nxt)
        if eos is not None:
            done = done | torch.isin(nxt, eos)
        if bool(done.all()):
            break
    return [Decoded(ids, n) for ids, n in zip(out, changed, strict=True)]
