#!/usr/bin/env python3
"""The GPU check's summary (bench/gpu_check.sh): one markdown row per step from the logs folder it
wrote: steps.txt (name|exit|seconds a line), each step's NAME.log, the test shards' tests0-3.json
(GoogleTest's JSON). Usage: gpu_summary.py LOGS CARD > summary.md. Kept apart from the script so that
the test suite can run it on made-up logs (Bench.GpuCheckSummaryReadsEveryKindOfStep): a GPU run is
rare, and a summary that breaks on it loses its report."""
import bisect, json, sys, os, datetime
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
def gpu_busy(name):
    """From NAME.trace.json (the training steps' --trace): the share of the "step" phases' wall time in
    which the GPU stream was running an op; the rest is the host's (launches, host work, waits)."""
    try:
        ev = json.load(open(os.path.join(logs, name + ".trace.json"))).get("traceEvents", [])
    except (OSError, ValueError):
        return ""
    gpu = {e.get("tid") for e in ev if e.get("ph") == "M" and e.get("name") == "thread_name"
           and e.get("args", {}).get("name") == "GPU stream"}
    steps = sorted((e["ts"], e["ts"] + e["dur"]) for e in ev
                   if e.get("ph") == "X" and e.get("cat") == "phase" and e.get("name") == "step")
    wall = sum(b - a for a, b in steps)
    if not gpu or wall <= 0:
        return ""
    starts, busy = [a for a, _ in steps], 0.0
    for e in ev:
        if e.get("ph") == "X" and e.get("tid") in gpu:
            i = bisect.bisect_right(starts, e["ts"]) - 1
            if i >= 0 and e["ts"] <= steps[i][1]:
                busy += min(e["dur"], steps[i][1] - e["ts"])
    return f"; GPU busy {100 * busy / wall:.0f} % of the steps' wall time"
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
    elif name == "compile_warm":
        # Its timings are of one step each and worth nothing; what it took to compile each is the news.
        detail = "; ".join(f'{j["model"]}@{j["batch"]} ' + (f'warm-up {j["warmup_s"]:.1f} s' if "warmup_s" in j else j.get("error", "compiled")[:60])
                           for j in (json.loads(l) for l in log if l.startswith("{")) if j.get("side") != "torch-eager")[:300]
    elif name.startswith(("peer_speed", "peer_infer", "peer_kde", "peer_ops", "cudnn_speed", "direct_all_speed")):
        detail = "; ".join(f'{j["model"]}@{j["batch"]} ' + (f'{j["samples_per_s"]:,.0f}/s' if "samples_per_s" in j else j.get("error", "?")[:60])
                           for j in (json.loads(l) for l in log if l.startswith("{")))[:300]
    elif name.startswith(("cf_gpu", "pairs_gpu")):
        ep = [l for l in log if l.startswith("epoch")]
        # The final evaluation's line; the --profile table below it has a phase named "test" too.
        te = [l for l in log if l.startswith(("test (", "balanced test (")) and ":" in l]
        detail = (ep[-1].split("|")[-1].strip() if ep else "no epoch line") + ("; " + te[-1].split(":", 1)[1].split("[")[0].strip() if te else "") + gpu_busy(name)
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
# The whole run: the check is to run every step in under 8 minutes (issue 6), the device's start aside.
try:
    total_s, budget_s = (int(v) for v in open(os.path.join(logs, "run.txt")).read().split("|"))
    skipped = [name for name, rc, _ in steps if rc == "skipped"]
    cut = [name for name, rc, _ in steps if rc == "124"]
    print(f"\nWhole run: {total_s} s (budget {budget_s} s; 8 minutes = 480 s): " +
          (f"{len(skipped)} step(s) skipped for time ({', '.join(skipped)})" if skipped else f"all {len(steps)} steps ran") +
          (f", {len(cut)} cut at their limit ({', '.join(cut)})" if cut else "") + ".")
except (OSError, ValueError):
    print("\nWhole run: no run.txt (the script stopped before its summary)")
failed = [k for k, v in tests.items() if v == "FAILED"]
if failed:
    print("\nFailed tests: " + ", ".join(failed))

# The choices a GPU run is to settle: each kernel or setting that is in the code but not (yet) the
# default, against what the default runs today, from the same run, beside the device test that must pass
# before it can become the default. Speed-up = the default's time / the candidate's (> 1: candidate faster).
# Settled by the H200 run of 2026-11-28 (session 24) and gone from the table: the 2 x 2 filter and data
# gradients, bias (+ sigmoid) v2 and max-pool backward v2 became the defaults; left, the 2 x 2 forward.
def row_times():
    """Each bench row's median time in us, from the progress lines (a run cut short still has them)."""
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    times = {}
    for l in lines("bench"):
        if not l.startswith("bench: [") or "_median" not in l:
            continue
        parts = l.split("]", 1)[1].split()
        if len(parts) >= 3 and parts[2] in scale:
            try:
                times[parts[0].replace("/manual_time_median", "").replace("_median", "")] = float(parts[1]) * scale[parts[2]]
            except ValueError:
                pass
    return times
def rates(name):
    """samples/s by "model@batch" from a peer step's JSON lines."""
    out = {}
    for l in lines(name):
        if l.startswith("{"):
            try:
                j = json.loads(l)
                out[f'{j["model"]}@{j["batch"]}'] = j["samples_per_s"]
            except (ValueError, KeyError):
                pass
    return out
times, ours, all_direct = row_times(), rates("peer_speed_ours"), rates("direct_all_speed_ours")
conv_kernels = "CudaParity.ConvPoolDirectForwardEqualsItsHostEmulation, CudaParity.ConvFilterGradDirectEqualsItsHostEmulation, " \
               "CudaParity.ConvDataGradDirectEqualsItsHostEmulation, CudaParity.PairCnnTrainingRepeatsBitForBitOnTheDevice"
choices = []  # (what, candidate, default, speed-up or None, device tests)
for b in (256, 1024, 4096):
    key = f"pairs@{b}"
    sp = all_direct[key] / ours[key] if key in all_direct and key in ours and ours[key] > 0 else None
    choices.append((f"pair CNN training at {b}, samples/s", "MUSICREC_CONV_KERNELS=direct-all", "direct", sp, conv_kernels))
def kernel(what, candidate, default, tests):
    sp = times[default] / times[candidate] if candidate in times and default in times and times[candidate] > 0 else None
    choices.append((what, candidate, default, sp, tests))
for layer in (2, 3):
    kernel(f"conv {layer} + pool forward", f"BM_ConvPoolForward/{layer}/1024/2", f"BM_ConvPoolForward/{layer}/1024/1",
           "CudaParity.ConvPoolDirectForwardEqualsItsHostEmulation")
    kernel(f"conv {layer} layer, forward + backward", f"BM_ConvSigmoidPool_Direct_ForwardBackward/{layer}/1024",
           f"BM_ConvSigmoidPool_Default_ForwardBackward/{layer}/1024", conv_kernels)
print("\n## Pending choices\n")
print("Candidates in the code but not the default, against the default, from this run (speed-up = the default's "
      "time / the candidate's; a candidate joins the default when faster and its device tests pass).\n")
print("| choice | candidate | default | speed-up | verdict | device tests |\n| --- | --- | --- | --- | --- | --- |")
for what, cand, default, sp, names in choices:
    verdict = ("not measured" if sp is None else "faster" if sp >= 1.05 else "slower" if sp <= 0.95 else "within 5 %")
    status = [tests.get(t, "not run") for t in names.split(", ")]
    summary = ("all passed" if all(x == "OK" for x in status) else
               "; ".join(f'{t.split(".")[-1]} {x}' for t, x in zip(names.split(", "), status) if x != "OK"))
    print(f'| {what} | {cand} | {default} | {"-" if sp is None else f"{sp:.2f}x"} | {verdict} | {summary} |')
