"""The run command's one source of defaults (RunRequest), --attack in the run config, rerun of old results,
the write-back decision and the per-condition generation figures (issue 11, items 4, 6 and 10)."""

from __future__ import annotations

import shlex

import pytest
import yaml
from test_harness import make_comps, make_config

from baselines.harness import execute
from baselines.pipeline import ConditionStats
from baselines.rerun import rerun_config, write_back_skipped
from baselines.runconfig import GenerationSettings, RunConfig, RunConfigError, build_run_config
from baselines.runrequest import RunRequest, field_default
from tools.cli.main import build_parser, main
from tools.cli.report import format_generation
from tools.cli.run import run_request


def parse(command: str):
    """The parsed arguments of an `mllm-safety ...` command line."""
    return build_parser().parse_args(shlex.split(command)[1:])


def test_cli_defaults_are_the_run_configs():
    args = parse("mllm-safety run figstep")
    request = run_request(args)
    assert request == RunRequest(baseline="figstep")
    assert request.batch_size == field_default(RunConfig, "batch_size") == 8
    assert request.max_new_tokens == field_default(GenerationSettings, "max_new_tokens") == 128
    assert request.model == field_default(RunConfig, "model") == "organism"
    config = request.config()
    assert config == build_run_config("figstep")
    assert config.batch_size == 8 and config.generation == GenerationSettings()


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default organism)" in text and "(default 8)" in text and "(default 128)" in text
    assert "judge(s), repeatable (default refusal)" in text and "(default None)" not in text


@pytest.mark.parametrize(
    "command",
    [
        "mllm-safety run figstep",
        "mllm-safety run figstep --judge refusal --judge keyword --limit 4 --set variant=figstep_pro",
        "mllm-safety run ecso --attack mmsafetybench --batch-size 2 --temperature 0.5 --seed 3 --no-write-back",
        "mllm-safety run figstep --model openai:gpt-x --base-url http://127.0.0.1:9/v1 --shard 1/4",
    ],
)
def test_command_line_leaves_defaults_out_and_parses_back(command):
    args = parse(command)
    request = run_request(args)
    line = request.command_line(runs_dir=args.runs_dir, no_write_back=args.no_write_back)
    assert line == command  # defaults left out, everything else kept in order
    assert run_request(parse(line)) == request


def test_command_line_names_a_non_default_runs_dir():
    line = RunRequest(baseline="figstep", limit=2).command_line(runs_dir="/tmp/elsewhere")
    assert line == "mllm-safety run figstep --limit 2 --runs-dir /tmp/elsewhere"


def test_list_shows_each_defenses_default_attack(capsys):
    assert main(["list", "defenses"]) == 0
    out = capsys.readouterr().out
    cider = next(line for line in out.splitlines() if line.strip().startswith("cider "))
    ecso = next(line for line in out.splitlines() if line.strip().startswith("ecso "))
    assert cider.endswith("[--attack default: visual_adv]") and ecso.endswith("[--attack default: figstep]")


def test_rerun_reads_a_result_recorded_before_attack_left_the_defense_params(tmp_path):
    new = build_run_config("safety_prompt", attack="mmsafetybench", limit=2)
    old = new.model_dump(mode="json")
    old["defense"]["params"]["attack"] = "mmsafetybench"  # the shape results had before
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"config": old, "run_id": "x"}), encoding="utf-8")
    got = rerun_config(path, tmp_path / "runs", batch_size=2)
    assert got.model_copy(update={"batch_size": new.batch_size}) == new and got.batch_size == 2
    assert got.attack.name == "mmsafetybench" and "attack" not in got.defense.params


def test_rerun_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(RunConfigError, match="result file not found"):
        rerun_config(tmp_path / "missing.yaml", tmp_path)
    (tmp_path / "bad.yaml").write_text("just text\n", encoding="utf-8")
    with pytest.raises(RunConfigError, match="not a result file with a 'config' mapping"):
        rerun_config(tmp_path / "bad.yaml", tmp_path)


def test_write_back_decision():
    config = build_run_config("figstep", limit=2)
    assert write_back_skipped(config, False) is None
    assert write_back_skipped(config, True) == "result not written (--no-write-back)"
    sharded = build_run_config("figstep", shard="1/2")
    assert "shard 1/2: no result written" in write_back_skipped(sharded, False)
    assert write_back_skipped(None, True) == "result not written (--no-write-back)"


def test_records_do_not_embed_the_config_hash(tmp_path):
    """The run id (config hash) changed with the config's shape; samples.jsonl must not depend on it."""
    config = make_config()
    out = execute(config, make_comps(), tmp_path, progress=False)
    text = (out.run_dir / "samples.jsonl").read_text(encoding="utf-8")
    assert config.hash()[:12] in out.run_dir.name and config.hash()[:12] not in text
    assert "run_id" not in text and "config" not in text


def test_generation_latency_is_reported_not_recorded(tmp_path):
    out = execute(make_config(), make_comps(), tmp_path, progress=False)
    assert set(out.conditions) == {"text-only", "figstep"}
    st = out.conditions["figstep"]
    assert st.n == 12 and st.generate_s > 0 and st.samples_per_s == pytest.approx(12 / st.generate_s)
    assert "latency" not in (out.run_dir / "samples.jsonl").read_text(encoding="utf-8")
    assert "latency" not in yaml.safe_dump(out.result)
    line = format_generation({"a": ConditionStats(n=4, generate_s=2.0, latency_s=1.0), "b": ConditionStats()})
    assert line == "  generation in a: 4 answers, latency 0.250 s/answer, throughput 2.0 answers/s"
    # resuming answers nothing new: nothing to report
    again = execute(make_config(), make_comps(), tmp_path, progress=False)
    assert again.conditions == {} and format_generation(again.conditions) == ""
