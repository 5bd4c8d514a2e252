#!/usr/bin/env python3
"""The GPU check's summary (bench/gpu_check.sh): one markdown row per step from the logs folder it
wrote: steps.txt (name|exit|seconds a line), each step's NAME.log, the test shards' tests0-3.json
(GoogleTest's JSON). Usage: gpu_summary.py LOGS CARD > summary.md. Kept apart from the script so that
the test suite can run it on made-up logs (Bench.GpuCheckSummaryReadsEveryKindOfStep): a GPU run is
rare, and a summary that breaks on it loses its report."""
import json, sys, os, datetime
logs, card = sys.argv[1], sys.argv[2]
print(f"# GPU check, {datetime.date.today()}, {card}\n")
print("| step | exit | seconds | detail |\n| --- | --- | --- | --- |")
steps = [line.strip().split("|") for line in open(os.path.join(logs, "steps.txt")) if line.strip()]
tests = {}
# The shards' results, of those the run had (MUSICREC_GPU_STEPS can leave some or all out).
shards = sorted(int(name[5:]) for name, _, _ in steps if name[:5] == "tests" and name[5:].isdigit())
for shard in shards:
    try:
        j = json.load(open(os.path.join(logs, f"tests{shard}.json")))
        for s in j["testsuites"]:
            for t in s["testsuite"]:
                tests[f'{s["name"]}.{t["name"]}'] = ("FAILED" if t.get("failures") else
                                                     "SKIPPED" if t.get("result") == "SKIPPED" else "OK")
    except Exception as e:
        tests[f"(no tests{shard}.json)"] = "FAILED"
def lines(name):
    try:
        return open(os.path.join(logs, name + ".log"), errors="replace").read().splitlines()
    except OSError:
        return []
for name, rc, secs in steps:
    log, detail = lines(name), ""
    if shards and name == f"tests{shards[0]}":
        vals = list(tests.values())
        which = "all four shards" if len(shards) == 4 else "shard" + ("s " if len(shards) > 1 else " ") + ", ".join(map(str, shards))
        detail = f'{which}: {vals.count("OK")} passed, {vals.count("FAILED")} failed, {vals.count("SKIPPED")} skipped'
    elif name == "memcheck":
        detail = next((l.strip() for l in log if "ERROR SUMMARY" in l), "no summary line")
    elif name == "peer_parity":
        detail = "; ".join(f'{j["model"]} max rel diff {j["max_rel_diff"]:.1e}' for j in
                           (json.loads(l) for l in log if l.startswith('{"model"')))
    elif name.startswith(("peer_speed", "peer_infer", "peer_kde", "cudnn_speed", "direct_all_speed")):
        detail = "; ".join(f'{j["model"]}@{j["batch"]} ' + (f'{j["samples_per_s"]:,.0f}/s' if "samples_per_s" in j else j.get("error", "?")[:60])
                           for j in (json.loads(l) for l in log if l.startswith("{")))[:300]
    elif name.startswith(("cf_gpu", "pairs_gpu")):
        ep = [l for l in log if l.startswith("epoch")]
        te = [l for l in log if l.startswith("test") or l.startswith("balanced test")]
        detail = (ep[-1].split("|")[-1].strip() if ep else "no epoch line") + ("; " + te[-1].split(":", 1)[1].split("[")[0].strip() if te else "")
    elif name == "recommend_bench":
        detail = "; ".join(" ".join(l.split()[:3]) for l in log if l.startswith("BM_"))[:240]
    elif name == "demo":
        detail = "; ".join(l.strip() for l in log if l.startswith("precision@20") or l.startswith("demo finished"))[:200]
    elif name == "smoke_sync_check":
        detail = "; ".join(l.strip() for l in log if "loss" in l or "passed" in l)[:160]
    elif name == "bench":
        # `musicrec bench` echoes each finished row as "bench: [  12.3 s] BM_..._median  TIME us ...":
        # a run cut short by its limit still says how far it got, and at what pace.
        rows = [l.split("]", 1) for l in log if l.startswith("bench: [") and "_median" in l]
        error = next((l.strip() for l in log if "error" in l.lower()), "")
        if rc == "0" and not error:
            detail = f"{len(rows)} rows, table in bench.md"
        else:
            last = (f'; the last at {rows[-1][0].split("[")[1].strip()}: {rows[-1][1].split()[0]}' if rows else "")
            detail = (error or f"cut short: {len(rows)} rows finished") + last
        detail = detail[:240]
    print(f"| {name} | {rc} | {secs} | {detail} |")
failed = [k for k, v in tests.items() if v == "FAILED"]
if failed:
    print("\nFailed tests: " + ", ".join(failed))
