"""Checks made before a run spends any time: a white-box attack needs a back-end with gradient access.

Run before the model is loaded (on the back-end's class: no endpoint contacted, no weights read) and again on
the loaded model, before the first condition, so that a refused run never runs its text-only condition first.
"""

from __future__ import annotations

from baselines import registry
from baselines.base import Attack, Model, WhiteBoxRequiredError
from baselines.runconfig import RunConfig


def white_box_attacks(config: RunConfig, attacks: dict[str, Attack] | None = None) -> list[str]:
    """The attacks of ``config``'s conditions that need gradient access (``Attack.needs_white_box``);
    looked up in ``attacks`` (the live objects) when given, else in the registry."""
    names = {c.attack for c in config.conditions if c.attack}
    return sorted(n for n in names if (attacks[n] if attacks else registry.get("attack", n)).needs_white_box)


def white_box_error(attack: str, backend: str) -> WhiteBoxRequiredError:
    """The one-line refusal of a gradient attack on a back-end without gradient access."""
    return WhiteBoxRequiredError(
        f"attack {attack!r} needs gradient access (white-box) to the model, but the {backend!r} back-end "
        f"has none; use --model organism or --model hf:<a local or hub LLaVA-family model>"
    )


def require_white_box(
    config: RunConfig, model: Model | type[Model], attacks: dict[str, Attack] | None = None
) -> None:
    """Refuse a run whose conditions include a white-box attack that ``model`` cannot serve.

    Given a Model class (before loading: no endpoint contacted, no weights read) only back-ends that never
    offer gradients are refused; given a loaded Model, its ``white_box`` is checked."""
    needed = white_box_attacks(config, attacks)
    if not needed:
        return
    if isinstance(model, type):
        no_gradients = model.white_box is Model.white_box  # the base class's property: always None
    else:
        no_gradients = model.white_box is None
    if no_gradients:
        raise white_box_error(needed[0], getattr(model, "name", "") or config.model)
