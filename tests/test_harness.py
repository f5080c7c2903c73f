"""The harness on fakes: batching, records, resume after a kill, shards + merge, judge errors, the Result."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from baselines.attacks.figstep import FigStep
from baselines.base import Judge, LoadedDataset, Model
from baselines.harness import Components, execute, select_samples, shard_of
from baselines.judges.refusal import RefusalJudge
from baselines.runconfig import ComponentSpec, Condition, RunConfig
from baselines.runresult import merge_runs
from baselines.runstore import RunStore, RunStoreError, normalise
from baselines.types import GenerationConfig, Response, Sample, Verdict
from tools.catalog.schema import Result


class FakeModel(Model):
    """Refuses text-only requests, complies when there is an image; records the batch sizes it saw."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__({})
        self.batches: list[int] = []

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        self.batches.append(len(samples))
        out = []
        for s in samples:
            if s.label == "benign" and not s.images:
                text = "Sure: here you go."
            elif s.images:
                text = f"1. First, about {s.id}."
            else:
                text = "I'm sorry, I cannot help with that."
            out.append(Response(sample_id=s.id, text=text, n_output_tokens=len(text.split())))
        return out

    def info(self) -> dict:
        return {"backend": "fake", "id": "fake-model", "device": "cpu", "labels": ["smoke-test model"]}


class BrokenJudge(Judge):
    """A judge whose backend is down: it always raises."""

    name = "broken"

    def judge(self, samples, responses):
        raise ConnectionError("judge endpoint unreachable")


def make_samples(n: int = 12) -> list[Sample]:
    cats = ["01-Illegal_Activity", "02-HateSpeech"]
    return [
        Sample(
            id=f"s{i:02d}",
            text=f"How can I do thing number {i}?",
            label="harmful" if i % 3 else "benign",
            category=cats[i % 2],
            meta={"instruction": f"Steps to do thing number {i}."},
        )
        for i in range(n)
    ]


def make_config(**kw) -> RunConfig:
    data = dict(
        baseline="figstep",
        baseline_kind="attack",
        attack=ComponentSpec(name="figstep", params=FigStep.Params().model_dump()),
        model="fake",
        dataset=ComponentSpec(name="fakeset"),
        judges=[ComponentSpec(name="refusal", params=RefusalJudge.Params().model_dump())],
        batch_size=4,
        conditions=[Condition(name="text-only"), Condition(name="figstep", attack="figstep")],
    )
    data.update(kw)
    return RunConfig(**data)


def make_comps(samples=None, judges=None) -> Components:
    samples = samples if samples is not None else make_samples()
    ds = LoadedDataset(name="fakeset", samples=samples, checksum="sha256:abc", source="test", skipped=[])
    return Components(
        dataset=ds,
        model=FakeModel(),
        attacks={"figstep": FigStep()},
        judges=judges or {"refusal": RefusalJudge()},
    )


def test_run_records_metrics_and_result(tmp_path):
    comps = make_comps()
    out = execute(make_config(), comps, tmp_path, progress=False, batches_per_call=1)
    recs = RunStore(out.run_dir).load()
    assert len(recs) == 24 and out.n_new == 24
    assert comps.model.batches == [4, 4, 4, 4, 4, 4]  # batched end to end
    fig = [r for r in recs if r["condition"] == "figstep"]
    assert all(len(r["images"]) == 1 and len(r["images"][0]) == 64 for r in fig)
    assert all(r["meta"]["font_file"] == "FreeMonoBold.ttf" for r in fig)
    res = Result.model_validate(out.result)
    by = {c.condition: c.judges[0] for c in res.conditions}
    assert by["text-only"].asr.value == 0.0 and by["figstep"].asr.value == 1.0
    assert by["text-only"].refusal_rate_benign.value == 0.0
    assert by["figstep"].asr.n == 8 and set(by["figstep"].per_category) == {
        "01-Illegal_Activity",
        "02-HateSpeech",
    }
    prov = res.provenance
    assert prov["samples_jsonl_sha256"] == RunStore(out.run_dir).sha256()
    assert {"torch", "transformers", "pillow", "pydantic"} <= set(prov["libraries"])
    assert prov["package_version"] and "git_commit" in prov and prov["seeds"]["generation"] == 0
    assert res.judges[0]["sha256"] and res.model["id"] == "fake-model" and res.labels == ["smoke-test model"]
    assert res.dataset["checksum"] == "sha256:abc"
    # raw responses never reach the Result
    assert "I'm sorry" not in json.dumps(out.result)


class Boom(RuntimeError):
    pass


def test_killed_run_resumes_to_the_same_records(tmp_path):
    full = execute(make_config(), make_comps(), tmp_path / "a", progress=False)

    def kill_after(k: int) -> None:
        if k == 3:
            raise Boom

    with pytest.raises(Boom):
        execute(
            make_config(),
            make_comps(),
            tmp_path / "b",
            progress=False,
            after_batch=kill_after,
            batches_per_call=1,
        )
    run_dir = tmp_path / "b" / make_config().run_id()
    assert len(RunStore(run_dir).load()) == 12
    # a kill in the middle of a write leaves a truncated last line: it is dropped, not fatal
    with open(run_dir / "samples.jsonl", "a") as f:
        f.write('{"condition": "figstep", "id": "s0')
    comps = make_comps()
    resumed = execute(make_config(), comps, tmp_path / "b", progress=False)
    assert resumed.n_resumed == 12 and resumed.n_new == 12 and sum(comps.model.batches) == 12
    assert normalise(RunStore(run_dir).load()) == normalise(RunStore(full.run_dir).load())
    assert resumed.result["conditions"] == full.result["conditions"]
    # running again does nothing new
    again = execute(make_config(), make_comps(), tmp_path / "b", progress=False)
    assert again.n_new == 0


def test_corrupt_middle_line_is_reported(tmp_path):
    store = RunStore(tmp_path)
    store.append([{"condition": "c", "id": "1"}])
    with open(store.samples_path, "a") as f:
        f.write("garbage\n")
    store.append([{"condition": "c", "id": "2"}])
    with pytest.raises(RunStoreError, match="samples.jsonl:2"):
        store.load()


def test_shards_partition_and_merge(tmp_path):
    samples = make_samples(20)
    parts = [select_samples(samples, make_config(shard=(i, 3))) for i in range(3)]
    assert sorted(s.id for p in parts for s in p) == sorted(s.id for s in samples)
    assert all(shard_of(s.id, 3) == i for i, p in enumerate(parts) for s in p)
    dirs = [
        execute(make_config(shard=(i, 3)), make_comps(samples), tmp_path, progress=False).run_dir
        for i in range(3)
    ]
    assert len(set(dirs)) == 3
    whole = execute(make_config(), make_comps(samples), tmp_path / "whole", progress=False)
    result, merged_dir = merge_runs(dirs, tmp_path / "merged")
    assert merged_dir.name == make_config().run_id()
    assert normalise(RunStore(merged_dir).load()) == normalise(RunStore(whole.run_dir).load())
    assert result["conditions"] == whole.result["conditions"]
    Result.model_validate(result)
    with pytest.raises(RunStoreError, match="each shard"):
        merge_runs(dirs[:2], tmp_path / "merged2")


def test_a_merge_streams_through_sorted_files_in_order_and_keeps_the_first_record(tmp_path, monkeypatch):
    import baselines.runstore as runstore

    samples = make_samples(20)
    dirs = [
        execute(make_config(shard=(i, 3)), make_comps(samples), tmp_path, progress=False).run_dir
        for i in range(3)
    ]
    clash = dict(RunStore(dirs[1]).load()[0], response="shard 2 also has this pair")
    RunStore(dirs[2]).append([clash])  # a pair in two shards: the first shard given wins, as before
    first = RunStore(dirs[1]).load()[0]
    monkeypatch.setattr(runstore, "SORT_CHUNK_BYTES", 600)  # a few records per sorted file: the merge path
    result, merged_dir = merge_runs(dirs, tmp_path / "merged")
    got = RunStore(merged_dir).load()
    order = [c.name for c in make_config().conditions]
    assert [(order.index(r["condition"]), r["id"]) for r in got] == sorted(
        (order.index(r["condition"]), r["id"]) for r in got
    )
    assert len(got) == len({(r["condition"], r["id"]) for r in got}) == 20 * len(order)
    kept = next(r for r in got if (r["condition"], r["id"]) == (first["condition"], first["id"]))
    assert kept == first
    whole = execute(make_config(), make_comps(samples), tmp_path / "whole", progress=False)
    assert result["conditions"] == whole.result["conditions"]


def test_judge_errors_are_unjudged_and_counted(tmp_path):
    comps = make_comps(judges={"refusal": RefusalJudge(), "broken": BrokenJudge()})
    cfg = make_config(judges=[ComponentSpec(name="refusal"), ComponentSpec(name="broken")])
    out = execute(cfg, comps, tmp_path, progress=False)
    res = Result.model_validate(out.result)
    for cond in res.conditions:
        broken = next(j for j in cond.judges if j.judge == "broken")
        assert broken.unjudged == 12 and broken.asr is None
        assert next(j for j in cond.judges if j.judge == "refusal").unjudged == 0
    rec = RunStore(out.run_dir).load()[0]
    assert (
        "unreachable" in rec["verdicts"]["broken"]["error"] and rec["verdicts"]["broken"]["success"] is None
    )
    assert res.agreement[0].n == 0 and res.agreement[0].kappa is None
    assert "unreachable" in out.first_errors["broken"] and "refusal" not in out.first_errors


def test_generation_errors_are_never_judged(tmp_path):
    class Flaky(FakeModel):
        def generate(self, samples, config):
            return [Response(sample_id=s.id, text="", error="timeout") for s in samples]

    comps = make_comps()
    comps.model = Flaky()
    out = execute(make_config(), comps, tmp_path, progress=False)
    for cond in out.result["conditions"]:
        assert cond["judges"][0]["unjudged"] == 12 and cond["judges"][0]["asr"] is None


def test_run_id_is_deterministic_and_ignores_batch_size():
    a, b = make_config(), make_config(batch_size=2)
    assert a.run_id() == b.run_id()
    assert a.run_id() != make_config(limit=3).run_id()
    assert make_config(shard=(1, 2)).run_id().endswith("shard1of2")


def test_generate_calls_span_several_batches_with_the_same_records(tmp_path):
    from baselines.harness import BATCHES_PER_CALL

    fine, coarse = make_comps(), make_comps()
    a = execute(make_config(), fine, tmp_path / "a", progress=False, batches_per_call=1)
    b = execute(make_config(), coarse, tmp_path / "b", progress=False)
    assert BATCHES_PER_CALL >= 2 and coarse.model.batches == [4, 8, 4, 8]  # chunks of 1, 2, ... batches of 4
    assert normalise(RunStore(a.run_dir).load()) == normalise(RunStore(b.run_dir).load())
    assert a.result["conditions"] == b.result["conditions"]


def test_chunks_grow_to_the_limit_and_cover_everything_once():
    from baselines.harness import chunks

    todo = list(range(50))
    parts = chunks(todo, 4, 4)
    assert [len(c) for c in parts] == [4, 8, 16, 16, 6]
    assert [x for c in parts for x in c] == todo
    assert [len(c) for c in chunks(todo, 4, 1)] == [4] * 12 + [2]
    assert chunks([], 4, 4) == []


def test_verdict_passthrough_by_fake_judge():
    # guards the fake: a Verdict with success None is unjudged
    assert not Verdict("x", None).judged


def test_prepare_sees_all_selected_samples_once_per_condition(tmp_path):
    seen = []

    class Universal(FigStep):
        def prepare(self, samples, model):
            seen.append([s.id for s in samples])

    comps = make_comps()
    comps.attacks["figstep"] = Universal()

    def stop(k):
        if k == 4:
            raise Boom

    with pytest.raises(Boom):
        execute(make_config(), comps, tmp_path, progress=False, after_batch=stop, batches_per_call=1)
    execute(make_config(), comps, tmp_path, progress=False)
    ids = [s.id for s in make_samples()]
    assert seen == [ids, ids]  # once before the kill, once on resume; never for the text-only condition
