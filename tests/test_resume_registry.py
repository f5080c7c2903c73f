"""Issue 13, point 3: a resumed run equals a clean one, for every registered baseline.

Each attack and defense of the registry runs on the organism (a few bundled samples, ``contract_params``:
few optimisation steps) three ways: clean with batch size 1; then interrupted after its first chunk with
batch size 2 and resumed with batch size 3. The records (without timings) must be identical: what the batch
size or a resume changes must either be in the run id or not change the records at all. A subprocess test
kills a real run with SIGKILL and checks the same on the command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baselines import registry
from baselines.harness import Components, execute
from baselines.runconfig import RunConfig, build_run_config
from baselines.runstore import RunStore, normalise

#: Run in CI (a black-box attack, the scenario-level white-box attack of the issue, a defense); every other
#: registered baseline is marked slow (`pytest -m slow tests/test_resume_registry.py` runs them all).
FAST = {"figstep", "hades", "safety_prompt"}
BASELINES = [
    pytest.param(kind, n, id=n, marks=() if n in FAST else pytest.mark.slow)
    for kind in ("attack", "defense")
    for n in registry.names(kind)
]
LIMIT = 4  # four samples of one scenario: a scenario-level attack sees them split across chunks


@pytest.fixture(scope="module")
def organism_model():
    from baselines.models import load_model

    return load_model("organism", params={"batch_size": 4})


def config_for(kind: str, name: str, batch_size: int) -> RunConfig:
    """The run of baseline ``name`` on the organism with its contract_params (cheap), ``batch_size``."""
    cls = registry.get(kind, name)
    sets = [f"{k}={v}" for k, v in (getattr(cls, "contract_params", None) or {}).items()]
    if kind == "defense":
        attack = registry.get("attack", registry.get("defense", name).default_attack)
        sets += [f"attack.{k}={v}" for k, v in (getattr(attack, "contract_params", None) or {}).items()]
    sets = [s.replace("True", "true").replace("False", "false") for s in sets]
    return build_run_config(name, limit=LIMIT, batch_size=batch_size, max_new_tokens=4, sets=sets)


def components(config: RunConfig, model) -> Components:
    """Fresh components (as a new process would build them), stand-ins where a defense needs local models."""
    ds = registry.get("dataset", config.dataset.name)(config.dataset.params).load()
    comps = Components(dataset=ds, model=model)
    if config.attack:
        comps.attacks[config.attack.name] = registry.get("attack", config.attack.name)(config.attack.params)
    if config.defense:
        name = config.defense.name
        comps.defenses[name] = _with_params(name, registry.get("defense", name), config.defense.params)
    for spec in config.judges:
        comps.judges[spec.name] = registry.get("judge", spec.name)(spec.params)
    return comps


def _with_params(name: str, cls: type, params: dict) -> object:
    """The defense with exactly the recorded params, through its contract stand-in when it has one."""
    from test_contracts import STAND_INS  # cider, mllm_protector: stand-ins for their local models

    factory = STAND_INS.get(("defense", name))
    return factory(cls, params) if factory else cls(params)


class Interrupted(Exception):
    """Raised after the first chunk (a kill, as the harness sees it)."""


def stop_after_first(k: int) -> None:
    if k == 1:
        raise Interrupted


@pytest.mark.parametrize("kind,name", BASELINES)
def test_a_resumed_run_equals_a_clean_one(kind, name, organism_model, tmp_path):
    clean_cfg = config_for(kind, name, batch_size=1)
    clean = execute(clean_cfg, components(clean_cfg, organism_model), tmp_path / "clean", progress=False)
    first = config_for(kind, name, batch_size=2)
    assert first.run_id() == clean_cfg.run_id()  # same configuration: the batch size is not in the run id
    with pytest.raises(Interrupted):
        execute(
            first,
            components(first, organism_model),
            tmp_path / "resumed",
            progress=False,
            after_batch=stop_after_first,
        )
    partial = RunStore(tmp_path / "resumed" / first.run_id()).load()
    assert 0 < len(partial) < clean.result["provenance"]["n_records"]
    again = config_for(kind, name, batch_size=3)
    resumed = execute(again, components(again, organism_model), tmp_path / "resumed", progress=False)
    assert resumed.n_resumed == len(partial) and resumed.n_new > 0
    a = normalise(RunStore(clean.run_dir).load())
    b = normalise(RunStore(resumed.run_dir).load())
    differing = [x["condition"] + "/" + x["id"] for x, y in zip(a, b, strict=True) if x != y]
    assert not differing, f"{name}: records differ after a resume: {differing}"
    assert clean.result["provenance"]["records_sha256"] == resumed.result["provenance"]["records_sha256"]


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # three command-line runs of HADES
def test_a_run_killed_with_sigkill_resumes_to_the_clean_records(tmp_path):
    """The command line, killed for real mid-run (SIGKILL), then resumed with another batch size."""
    env = {**os.environ, "MLLM_SAFETY_CATALOG": str(tmp_path / "no-catalog")}
    base = [sys.executable, "-m", "tools.cli.main", "run", "hades", "--limit", "6", "--set", "steps=1"]
    base += ["--max-new-tokens", "4", "--no-progress", "--no-write-back"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*base, "--batch-size", "1", "--runs-dir", str(killed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            files = list(killed.glob("*/samples.jsonl"))
            if files and len(files[0].read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    [run_dir] = killed.iterdir()
    n_before = len(RunStore(run_dir).load())
    assert 0 < n_before < 12
    done = subprocess.run([*base, "--batch-size", "4", "--runs-dir", str(killed)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    clean = subprocess.run([*base, "--batch-size", "2", "--runs-dir", str(tmp_path / "clean")], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert clean.returncode == 0, clean.stderr[-2000:]
    [clean_dir] = (tmp_path / "clean").iterdir()
    assert clean_dir.name == run_dir.name
    assert normalise(RunStore(run_dir).load()) == normalise(RunStore(clean_dir).load())
