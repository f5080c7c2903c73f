"""Repeating a published run: the RunConfig recorded in a result file, and whether a run's result is written back.

A result's ``config`` is validated (and migrated from older shapes, see :func:`baselines.runconfig.migrate_config`);
when it hides local paths (``<local>/name``, see :mod:`baselines.runresult`) the full config comes from the
original run's run.json, if that run directory is at hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from baselines.runconfig import RunConfig, RunConfigError
from baselines.runresult import LOCAL, public_paths
from baselines.runstore import RunStore, RunStoreError


def hidden_paths(value: Any, where: str = "config") -> list[str]:
    """Where a recorded config holds a hidden local path ("<local>/name")."""
    if isinstance(value, dict):
        return [h for k, v in value.items() for h in hidden_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [h for i, v in enumerate(value) for h in hidden_paths(v, f"{where}[{i}]")]
    return [f"{where}={value}"] if isinstance(value, str) and LOCAL in value else []


def local_config(data: dict[str, Any], runs_dir: Path) -> RunConfig | None:
    """The full RunConfig of a published result whose local paths are hidden, from the original run's
    run.json under ``runs_dir`` (only when it is the same run: same config once paths are hidden); else None."""
    try:
        cfg = RunStore(Path(runs_dir) / str(data.get("run_id"))).read_meta()["config"]
    except (RunStoreError, OSError, KeyError, TypeError, ValueError):
        return None
    return RunConfig.model_validate(cfg) if public_paths(cfg) == data["config"] else None


def read_result_yaml(path: Path) -> Any:
    """A result file's data, parsed without anchors and aliases (a "billion laughs" file is refused at once
    instead of expanding) and without any tag beyond plain YAML's. The CLI passes the catalog's own hardened
    loader (``tools.catalog.yamlio``) instead; this one keeps :func:`rerun_config` safe on its own."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
                raise yaml.YAMLError(
                    f"anchors and aliases are not allowed in a result file ({self.peek_event().start_mark})"
                )
            return super().compose_node(parent, index)

    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=NoAliasLoader)  # noqa: S506 - safe loader


def rerun_config(
    result_file: Path,
    runs_dir: Path,
    *,
    batch_size: int | None = None,
    read: Callable[[Path], Any] = read_result_yaml,
) -> RunConfig:
    """The RunConfig recorded in ``result_file`` (a catalog result YAML, parsed by ``read``), ready to run
    again; ``batch_size`` replaces the recorded one. Raises RunConfigError saying what is wrong with the file
    and how to fix it."""
    import yaml
    from pydantic import ValidationError

    result_file = Path(result_file)
    try:
        data = read(result_file)
        config = RunConfig.model_validate(data["config"])
    except FileNotFoundError:
        raise RunConfigError(f"result file not found: {result_file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunConfigError(f"{result_file}: cannot read it ({type(e).__name__}: {e})") from None
    except (yaml.YAMLError, TypeError, KeyError, ValueError) as e:
        raise RunConfigError(
            f"{result_file}: not a result file with a 'config' mapping ({type(e).__name__}: {e})"
        ) from None
    except ValidationError as e:
        raise RunConfigError(f"{result_file}: recorded config is invalid: {e.errors()[0]['msg']}") from None
    hidden = hidden_paths(data["config"])
    if hidden:
        config = local_config(data, runs_dir)
        if config is None:
            raise RunConfigError(
                f"{result_file}: the recorded config hides local paths ({', '.join(hidden)}; results "
                f"never publish local folders) and {Path(runs_dir) / str(data.get('run_id'))}/run.json "
                "is not here to restore them; use --runs-dir <the runs folder of the original run>, or "
                "repeat it with `mllm-safety run` giving those paths"
            )
    if batch_size:
        config = config.model_copy(update={"batch_size": batch_size})
    return config


def write_back_skipped(config: RunConfig | None, no_write_back: bool) -> str | None:
    """Why a finished run's result is not written into the catalog (None: it is written)."""
    if config is not None and config.shard:
        i, n = config.shard
        return f"shard {i}/{n}: no result written; combine shards with `mllm-safety merge`"
    if no_write_back:
        return "result not written (--no-write-back)"
    return None
