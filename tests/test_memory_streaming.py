"""The streaming data path (issue 16, memory): lazily built samples, records streamed from samples.jsonl, metrics
from counts. Each streaming piece is checked against the in-memory computation it replaces; memory itself is
measured by benchmarks/bench_dataset_memory.py, never here."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest
from PIL import Image
from test_harness import make_comps, make_config, make_samples

from baselines import runstore
from baselines.base import DatasetError, LoadedDataset
from baselines.datasets._common import Checksum, read_csv
from baselines.datasets._lazy import LazySamples, SampleView, csv_record_at, iter_csv_records
from baselines.datasets.jailbreakv import COLUMNS, JailBreakVDataset
from baselines.harness import KeySet, execute, select_samples
from baselines.metrics import cohen_kappa, paired_difference_ci, proportion_ci, summarize
from baselines.runresult import StoredRecords, build_result
from baselines.runstore import RunStore, RunStoreError, records_sha256

TRICKY = (
    "\ufeffid,text,note\r\n"
    '1,"a quoted, comma","multi\nline\nfield"\r\n'
    "\r\n"
    "2,plain,é ü 漢字\r\n"
    '3,"sep\u2028inside quotes",x\r\n'
    "4,last,no newline at the end"
)


def test_csv_records_match_read_csv_and_read_back_by_offset(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(TRICKY.encode("utf-8"))
    want = read_csv(path, ["id", "text", "note"], "t", Checksum(tmp_path))
    got = list(iter_csv_records(path))
    header, rows = got[0][2], [g for g in got[1:] if g[2]]
    assert header == ["id", "text", "note"]
    assert [(line, dict(zip(header, fields, strict=True))) for line, _, fields in rows] == want
    for _, offset, fields in rows:
        assert csv_record_at(path, offset) == fields


def test_csv_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,text\n1,ok\n2,\xff\xfe\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        list(iter_csv_records(path))


def write_jailbreakv(root: Path, n: int) -> Path:
    folder = root / "JailBreakV_28K"
    (folder / "img").mkdir(parents=True)
    with open(folder / "JailBreakV_28K.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(n):
            Image.new("RGB", (8 + i, 6), (i, 0, 0)).save(folder / f"img/{i}.png")
            query = f"Query {i},\nwith a newline" if i % 2 else f"Query {i}"
            w.writerow([i, query, f"goal {i}", "FigStep", f"P{i % 2}", f"img/{i}.png", "x", "False", ""])
    return folder / "JailBreakV_28K.csv"


def test_jailbreakv_samples_are_built_when_used(tmp_path):
    csv_path = write_jailbreakv(tmp_path, 5)
    ds = JailBreakVDataset({"path": str(tmp_path), "split": "full"}).load()
    assert isinstance(ds.samples, LazySamples) and len(ds.samples) == 5
    s = ds.samples[3]
    assert (s.id, s.text, s.goal, s.category) == ("3", "Query 3,\nwith a newline", "goal 3", "P1")
    assert s.images[0].size == (11, 6) and s.images[0].getpixel((0, 0)) == (3, 0, 0)
    assert (
        s.meta["source_line"] == 7 and s.meta["image_path"] == "img/3.png"
    )  # where the row ends, as csv counts
    assert [x.id for x in ds.samples[1:3]] == ["1", "2"] and ds.samples[-1].id == "4"
    assert ds.samples[2] is not ds.samples[2]  # never cached: a run holds only what it is answering
    # the file changed since loading: refused, never a silently different sample
    time.sleep(0.01)
    csv_path.write_text(csv_path.read_text(encoding="utf-8") + "", encoding="utf-8")
    os.utime(csv_path, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(DatasetError, match="changed since"):
        ds.samples[0]


def test_jailbreakv_duplicate_id_names_its_line(tmp_path):
    csv_path = write_jailbreakv(tmp_path, 4)
    text = csv_path.read_text(encoding="utf-8")
    csv_path.write_text(text + "2,again,g,FigStep,P0,img/0.png,x,False,\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"JailBreakV_28K.csv:8: duplicate id '2'"):
        JailBreakVDataset({"path": str(tmp_path), "split": "full"}).load()
    # another format's row with the same id is filtered out before the check
    csv_path.write_text(text + "2,again,g,Other,P0,img/0.png,x,False,\n", encoding="utf-8")
    assert (
        len(
            JailBreakVDataset({"path": str(tmp_path), "split": "full", "formats": ["FigStep"]}).load().samples
        )
        == 4
    )


def lazy_comps(n: int = 12):
    """make_comps() whose dataset is a LazySamples over the same samples."""
    samples = make_samples(n)
    comps = make_comps(samples)
    comps.dataset = LoadedDataset(
        name="fakeset", samples=LazySamples(n, samples.__getitem__), checksum="sha256:abc", source="test"
    )
    return comps


def test_lazy_dataset_runs_resumes_and_shards_like_a_list(tmp_path):
    plain = execute(make_config(), make_comps(), tmp_path / "a", progress=False)

    class Boom(RuntimeError):
        pass

    def kill(k: int) -> None:
        if k == 2:
            raise Boom

    with pytest.raises(Boom):
        execute(
            make_config(), lazy_comps(), tmp_path / "b", progress=False, after_batch=kill, batches_per_call=1
        )
    comps = lazy_comps()
    lazy = execute(make_config(), comps, tmp_path / "b", progress=False)
    assert lazy.n_resumed == 8 and lazy.n_new == 16 and sum(comps.model.batches) == 16
    assert runstore.normalise(RunStore(lazy.run_dir).load()) == runstore.normalise(
        RunStore(plain.run_dir).load()
    )
    assert lazy.result["conditions"] == plain.result["conditions"]
    assert lazy.result["provenance"]["records_sha256"] == plain.result["provenance"]["records_sha256"]
    view = select_samples(lazy_comps(20).dataset.samples, make_config(limit=15, shard=(1, 3)))
    want = select_samples(make_samples(20), make_config(limit=15, shard=(1, 3)))
    assert isinstance(view, SampleView) and [s.id for s in view] == [s.id for s in want]


def records(n: int = 40) -> list[dict]:
    out = []
    for cond in ("a", "b"):
        for i in range(n):
            ok = (i * 7 + len(cond)) % 3 == 0
            out.append(
                {
                    "condition": cond,
                    "id": f"x{i}",
                    "label": "harmful" if i % 4 else "benign",
                    "category": f"c{i % 3}",
                    "error": "boom" if i == 5 else None,
                    "response_meta": {"guard": {"flagged": ok}},
                    "meta": {"attack_queries": i},
                    "verdicts": {
                        "j1": {
                            "success": None if i == 5 else ok,
                            "refused": not ok,
                            "score": 0.5 if ok else 0.25,
                        },
                        "j2": {"success": i % 2 == 0, "refused": None},
                    },
                    "timings": {"generate_s": i / 7},
                }
            )
    return out


def test_records_sha256_through_files_equals_in_memory(monkeypatch):
    recs = records()
    recs.append(dict(recs[3], response="a repeated key keeps its input order"))
    want = records_sha256(recs)
    monkeypatch.setattr(runstore, "SORT_CHUNK_BYTES", 200)  # a few records per sorted run: many files merged
    assert records_sha256(recs) == want
    assert records_sha256(reversed(recs[:-1])) != want  # the repeated key's order is part of the content


def test_iter_records_keeps_the_last_retry_in_place_of_the_first(tmp_path):
    store = RunStore(tmp_path)
    store.append([{"condition": "c", "id": "1", "error": "down"}, {"condition": "c", "id": "2", "v": 1}])
    store.append([{"condition": "c", "id": "1", "error": None, "v": 2}])
    with open(store.samples_path, "a") as f:
        f.write('{"condition": "c", "id": "3"')  # killed mid-write
    got = list(store.iter_records(repair=False))
    assert [(r["id"], r.get("v")) for r in got] == [("1", 2), ("2", 1)]
    assert store.samples_path.read_text().endswith('"id": "3"')  # not repaired when asked not to
    assert store.load() == got and store.samples_path.read_text().endswith("\n")


def test_iter_records_raises_on_a_corrupt_middle_line_before_yielding(tmp_path):
    store = RunStore(tmp_path)
    store.append([{"condition": "c", "id": "1"}])
    with open(store.samples_path, "a") as f:
        f.write("garbage\n")
    store.append([{"condition": "c", "id": "2"}])
    it = store.iter_records()
    with pytest.raises(RunStoreError, match="samples.jsonl:2"):
        next(it)


def test_streaming_summary_equals_list_computations():
    recs = records()
    recs.append(
        dict(recs[41], verdicts={"j1": {"success": True}, "j2": {"success": True}})
    )  # id x1 again in b
    got = summarize(iter(recs), ["j1", "j2"], conditions={"a": {}, "b": {}})
    a = {
        r["id"]: r["verdicts"]["j1"]["success"]
        for r in recs
        if r["condition"] == "a" and r["label"] == "harmful"
    }
    b = {
        r["id"]: r["verdicts"]["j1"]["success"]
        for r in recs
        if r["condition"] == "b" and r["label"] == "harmful"
    }
    ids = sorted(
        i for i in set(a) & set(b) if a[i] is not None and b[i] is not None
    )  # the last record counts
    diff = next(d for d in got["differences"] if d["judge"] == "j1")
    assert {k: diff[k] for k in ("value", "ci_low", "ci_high", "n")} == paired_difference_ci(
        [b[i] for i in ids], [a[i] for i in ids]
    )
    harmful_a = [r for r in recs if r["condition"] == "a" and r["label"] == "harmful"]
    asr = got["conditions"][0]["judges"][0]["asr"]
    decided = [
        r["verdicts"]["j1"]["success"] for r in harmful_a if r["verdicts"]["j1"]["success"] is not None
    ]
    assert asr == proportion_ci(decided) and got["conditions"][0]["judges"][0]["unjudged"] == 1
    pairs = [
        (r["verdicts"]["j1"]["success"], r["verdicts"]["j2"]["success"])
        for r in recs
        if r["label"] == "harmful" and r["verdicts"]["j1"]["success"] is not None
    ]
    assert got["agreement"][0]["kappa"] == cohen_kappa([p[0] for p in pairs], [p[1] for p in pairs])


def test_build_result_from_stored_records_equals_from_the_list(tmp_path):
    out = execute(make_config(), make_comps(), tmp_path, progress=False)
    store = RunStore(out.run_dir)
    meta = store.read_meta()
    a = build_result(meta, store.load(), store.sha256())
    b = build_result(meta, StoredRecords(store), store.sha256())
    for r in (a, b):
        r.pop("created")
        r["provenance"].pop("date")
    assert a == b and a["provenance"]["n_records"] == 24
    keep = StoredRecords(store, keep=lambda r: r["id"] == "s01")
    assert {r["condition"] for r in keep} == {"text-only", "figstep"} and len(list(keep)) == 2


def test_keyset_membership():
    keys = KeySet()
    for i in range(100):
        keys.add("cond", f"id{i}")
    keys.add("cond", "id3")
    assert len(keys) == 100 and ("cond", "id99") in keys and ("cond", "id100") not in keys
    assert ("other", "id3") not in keys


def test_eval_reads_no_record_for_a_benchmark_without_scores():
    """`mllm-safety eval jailbreakv` (no scoring of its own) adds empty scores without reading the records (a
    28,000-record run is never held); a benchmark with scores reads them (streamed from the run directory)."""
    from baselines.evaluate import add_scores

    class Unreadable:
        def __iter__(self):
            raise AssertionError("records read")

    result = {"judges": [{"label": "refusal"}], "conditions": [{"condition": "no-attack"}]}
    assert add_scores(result, Unreadable(), "jailbreakv", 0) == {} and result["conditions"][0]["scores"] == {}
    with pytest.raises(AssertionError, match="records read"):
        add_scores(
            {"judges": [{"label": "refusal"}], "conditions": [{"condition": "c"}]}, Unreadable(), "vlguard", 0
        )


def test_checksum_spilled_to_sorted_runs_equals_in_memory(tmp_path, monkeypatch):
    """The dataset checksum is the same when its entries go through temporary files: one entry per path (the
    last recorded), sorted."""
    files = []
    for i in range(23):
        p = tmp_path / f"d{i % 3}" / f"f{i}.bin"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(bytes([i]) * (i + 1))
        files.append(p)

    def digest(spill: int) -> str:
        monkeypatch.setattr(Checksum, "SPILL_ENTRIES", spill)
        c = Checksum(tmp_path)
        for k, p in enumerate(files):
            c.add(p)
            if k % 5 == 0:
                c.add(files[0], data=f"changed {k}".encode())  # re-recorded: the last value counts
        c.add_file(files[7])
        return c.hexdigest()

    want = digest(10**9)
    assert digest(2) == digest(3) == digest(7) == want
    assert want != digest_without_rerecord(tmp_path, files)


def digest_without_rerecord(root, files):
    c = Checksum(root)
    for p in files:
        c.add(p)
    return c.hexdigest()
