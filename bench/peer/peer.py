#!/usr/bin/env python3
"""The PyTorch peer of musicrec's two models, layer for layer (bench/peer/README.md).

  peer.py parity DIR [--device cuda|cpu]
      replays the steps `musicrec_peer parity` wrote to DIR (init.h5, batches.h5, ours.json) from the
      same initial weights on the same batches and writes DIR/peer.json: both sides' loss at every step
      and the largest relative difference. TF32 is off, as on our side.
  peer.py speed --model cf|pairs --batch B[,B...] [--device cuda --mode eager|compile --steps 50 --repeats 5]
      times whole training steps on batches already on the device, as `musicrec_peer speed` does, and
      prints one JSON line per batch size (median over repeats).
  peer.py infer [--n 141000 --mode eager|compile]
      scores one seed against an N-song catalogue with the pair head from tower vectors (no gradients).
  peer.py kde [--n 127000]
      exact Gaussian KDE inverse-density weights (bandwidth 0.2), as engine/kde.h defines them.
  peer.py table FILE...
      reads the JSON lines of both sides and prints the markdown table of ratios (ours / PyTorch).

Optimizers are PyTorch's own: Adam for dense parameters, SparseAdam for the CF embedding tables (ours is
the same lazy Adam). Our Adam folds bias correction into eps as eps * sqrt(1 - beta2^t) (PyTorch's Adam
does the same algebraically); SparseAdam adds eps to the uncorrected sqrt(v), so the peer sets its eps to
eps * sqrt(1 - beta2^t) before each step to compute the same update.
"""
import argparse
import json
import math
import statistics
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def no_tf32():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


# ---- the two models ----
class CfNet(nn.Module):
    """models/cf_model.cpp: id embeddings, their dot, feature embeddings, numerics -> 128 ReLU -> 2."""

    def __init__(self, cardinality, id_dim=64, feature_dim=8, hidden=128, numeric=2, dropout=0.5):
        super().__init__()
        dims = [id_dim if f < 2 else min(feature_dim, max(2, c)) for f, c in enumerate(cardinality)]
        self.emb = nn.ModuleList(nn.Embedding(c, d, sparse=True) for c, d in zip(cardinality, dims))
        self.hidden = nn.Linear(1 + numeric + sum(dims), hidden)
        self.out = nn.Linear(hidden, 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, cat, num):
        member, song = self.emb[0](cat[0]), self.emb[1](cat[1])
        parts = [member, song, (member * song).sum(1, keepdim=True)]
        parts += [self.emb[f](cat[f]) for f in range(2, len(self.emb))]
        parts.append(num)
        return self.out(self.drop(F.relu(self.hidden(torch.cat(parts, 1)))))

    def load(self, h5):
        with torch.no_grad():
            for f, e in enumerate(self.emb):
                e.weight.copy_(torch.from_numpy(h5[f"model/emb{f}/weight"][...]))
            for name in ("hidden", "out"):
                getattr(self, name).weight.copy_(torch.from_numpy(h5[f"model/{name}/weight"][...]))
                getattr(self, name).bias.copy_(torch.from_numpy(h5[f"model/{name}/bias"][...]))

    def loss(self, b):
        return F.cross_entropy(self(b["cat"], b["num"]), b["target"])


class PairNet(nn.Module):
    """models/pair_cnn.cpp (flattened tower): 3 x (conv, 2x2 max pool, bias + sigmoid), the order
    Conv2d::forward_maxpool2x2 runs (the same function as conv + bias, sigmoid, pool: both are
    monotone per channel); pool_last=True gives that usual order. Head on centred vectors."""

    def __init__(self, filters=(16, 32, 32), dense1=100, dense2=30, height=40, width=120, pool_last=False):
        super().__init__()
        self.pool_last = pool_last
        self.conv1 = nn.Conv2d(1, filters[0], (5, 10))
        self.conv2 = nn.Conv2d(filters[0], filters[1], 2)
        self.conv3 = nn.Conv2d(filters[1], filters[2], 2)
        h, w = height, width
        for kh, kw in ((5, 10), (2, 2), (2, 2)):
            h, w = (h - kh + 1) // 2, (w - kw + 1) // 2
        self.width = filters[2] * h * w
        self.dot_scale = 1.0 / math.sqrt(self.width)
        self.dense1 = nn.Linear(2 * self.width + 1, dense1)
        self.dense2 = nn.Linear(dense1, dense2)
        self.out = nn.Linear(dense2, 1)

    def tower(self, x):
        for conv in (self.conv1, self.conv2, self.conv3):
            if self.pool_last:
                x = F.max_pool2d(torch.sigmoid(conv(x)), 2)
            else:
                x = torch.sigmoid(F.max_pool2d(F.conv2d(x, conv.weight), 2) + conv.bias[:, None, None])
        return torch.flatten(x, 1)

    def forward(self, images, side_a, side_b):
        h = self.tower(images)
        c1, c2 = h[side_a] - 0.5, h[side_b] - 0.5
        z = torch.cat([c1, c2, (c1 * c2).sum(1, keepdim=True) * self.dot_scale], 1)
        return self.out(F.relu(self.dense2(torch.sigmoid(self.dense1(z)))))

    def load(self, h5):
        with torch.no_grad():
            for name in ("conv1", "conv2", "conv3", "dense1", "dense2", "out"):
                getattr(self, name).weight.copy_(torch.from_numpy(h5[f"model/{name}/weight"][...]))
                getattr(self, name).bias.copy_(torch.from_numpy(h5[f"model/{name}/bias"][...]))

    def loss(self, b):
        logits = self(b["images"], b["side_a"], b["side_b"])
        return (F.binary_cross_entropy_with_logits(logits, b["label"], reduction="none") * b["weight"]).mean()


def build(spec, dropout, pool_last=False):
    if spec["model"] == "cf":
        return CfNet(spec["cardinality"], spec["id_dim"], spec["feature_dim"], spec["hidden"], spec["numeric"], dropout)
    return PairNet(spec["filters"], spec["dense1"], spec["dense2"], spec["height"], spec["width"], pool_last)


class Optim:
    """Adam over dense parameters, SparseAdam over sparse embedding tables, with eps as ours (see top)."""

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        sparse = [p for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse for p in m.parameters()]
        ids = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if id(p) not in ids]
        self.eps, self.beta2, self.t = eps, betas[1], 0
        self.dense = torch.optim.Adam(dense, lr=lr, betas=betas, eps=eps)
        self.sparse = torch.optim.SparseAdam(sparse, lr=lr, betas=betas, eps=eps) if sparse else None

    def zero_grad(self):
        self.dense.zero_grad(set_to_none=True)
        if self.sparse:
            self.sparse.zero_grad(set_to_none=True)

    def step(self):
        self.t += 1
        self.dense.step()
        if self.sparse:
            self.sparse.param_groups[0]["eps"] = self.eps * math.sqrt(1 - self.beta2 ** self.t)
            self.sparse.step()


def to_batch(group, device):
    b = {k: torch.from_numpy(group[k][...]).to(device) for k in group.keys()}
    for k in ("cat", "target", "side_a", "side_b"):
        if k in b:
            b[k] = b[k].long()
    return b


def parity(args):
    no_tf32()
    ours = json.load(open(f"{args.dir}/ours.json"))
    device = torch.device(args.device)
    model = build(ours, dropout=0.0)
    with h5py.File(f"{args.dir}/init.h5", "r") as h5:
        model.load(h5)
    model.to(device).train()
    o = ours["optimizer"]
    opt = Optim(model, o["lr"], (o["beta1"], o["beta2"]), o["eps"])
    losses = []
    with h5py.File(f"{args.dir}/batches.h5", "r") as h5:
        for s in range(ours["steps"]):
            b = to_batch(h5[f"step{s:03d}"], device)
            opt.zero_grad()
            loss = model.loss(b)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    rel = [abs(a - b) / max(abs(b), 1e-30) for a, b in zip(ours["losses"], losses)]
    worst = max(range(len(rel)), key=lambda i: rel[i])
    result = {"model": ours["model"], "steps": len(rel), "ours_device": ours["device"], "peer_device": str(device),
              "torch": torch.__version__, "max_rel_diff": rel[worst], "worst_step": worst,
              "first_step_rel_diff": rel[0], "ours": ours["losses"], "peer": losses, "rel_diff": rel}
    with open(f"{args.dir}/peer.json", "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: result[k] for k in ("model", "steps", "ours_device", "peer_device", "max_rel_diff",
                                             "worst_step", "first_step_rel_diff")}))
    for s in sorted({0, 1, 9, 24, len(rel) - 1}):
        if s < len(rel):
            print(f"  step {s:3d}: ours {ours['losses'][s]:.8f}  torch {losses[s]:.8f}  rel {rel[s]:.2e}")


def random_batch(spec_model, batch, device, gen):
    """The same shapes as musicrec_peer's batches (bench/peer/peer_main.cpp), random contents."""
    if spec_model == "cf":
        card = CF_CARDINALITY
        cat = torch.stack([torch.randint(0, c, (batch,), generator=gen) for c in card])
        return {"cat": cat.to(device), "num": torch.randn(batch, 2, generator=gen).to(device),
                "target": torch.randint(0, 2, (batch,), generator=gen).to(device)}
    label = (torch.rand(batch, 1, generator=gen) < 0.1).float()
    return {"images": torch.randn(batch, 1, 40, 120, generator=gen).to(device),
            "side_a": torch.randint(0, batch, (batch,), generator=gen).to(device),
            "side_b": torch.randint(0, batch, (batch,), generator=gen).to(device),
            "label": label.to(device), "weight": (1 + 9 * label).to(device)}


# Kept equal to kKkboxCardinality in bench/peer/peer_main.cpp.
CF_CARDINALITY = [30756, 359967, 9, 22, 14, 574, 40583, 11, 22, 4, 6, 10]
PAIR_SPEC = {"model": "pairs", "filters": [16, 32, 32], "dense1": 100, "dense2": 30, "height": 40, "width": 120}
CF_SPEC = {"model": "cf", "cardinality": CF_CARDINALITY, "id_dim": 64, "feature_dim": 8, "hidden": 128, "numeric": 2}


def speed_one(args, batch):
    device = torch.device(args.device)
    spec = CF_SPEC if args.model == "cf" else PAIR_SPEC
    torch.manual_seed(args.seed)
    model = build(spec, dropout=0.5, pool_last=args.pool_last).to(device).train()
    opt = Optim(model)
    gen = torch.Generator().manual_seed(args.seed)
    batches = [random_batch(args.model, batch, device, gen) for _ in range(4)]
    loss_fn = model.loss
    graphs = args.mode == "compile" and device.type == "cuda"
    if args.mode == "compile":
        loss_fn = torch.compile(model.loss, mode="reduce-overhead")

    def run(n):
        loss = None
        for s in range(n):
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            opt.zero_grad()
            loss = loss_fn(batches[s % len(batches)])
            loss.backward()
            opt.step()
        return loss.item()  # waits for the device

    t0 = time.perf_counter()
    run(max(5, args.steps // 5))  # warm-up (and compilation)
    warm_s = time.perf_counter() - t0
    ms = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run(args.steps)
        ms.append((time.perf_counter() - t0) * 1000 / args.steps)
    med = statistics.median(ms)
    side = f"torch-{args.mode}" + ("-pool-last" if args.pool_last and args.model == "pairs" else "")
    return {"side": side, "model": args.model, "batch": batch, "device": str(device),
            "ms_per_step": med, "samples_per_s": batch * 1000 / med, "ms_per_step_all": ms,
            "warmup_s": warm_s, "torch": torch.__version__}


def speed(args):
    no_tf32()
    for batch in [int(b) for b in str(args.batch).split(",")]:
        try:
            result = speed_one(args, batch)
        except Exception as e:  # torch.compile does not support everything (sparse gradients): say so
            if args.mode != "compile":
                raise
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:160]
            result = {"side": "torch-compile", "model": args.model, "batch": batch, "error": msg}
        print(json.dumps(result), flush=True)


def timed(args, fn, device):
    """Median ms per call over repeats of args.steps calls, after 3 warm-up calls."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        fn()
    sync()
    ms = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            fn()
        sync()
        ms.append((time.perf_counter() - t0) * 1000 / args.steps)
    return statistics.median(ms)


def rate_line(side, what, n, device, ms):
    print(json.dumps({"side": side, "model": what, "batch": n, "device": str(device), "ms_per_step": ms,
                      "samples_per_s": n * 1000 / ms, "torch": torch.__version__}), flush=True)


def infer(args):
    """One seed against an N-song catalogue through the pair head, from tower vectors (no grad)."""
    no_tf32()
    device = torch.device(args.device)
    model = build(PAIR_SPEC, 0.0).to(device).eval()
    gen = torch.Generator().manual_seed(args.seed)
    h = torch.rand(args.n, model.width, generator=gen).to(device)
    seed = torch.full((args.n,), 7, dtype=torch.long, device=device)

    def head():
        c1, c2 = h[seed] - 0.5, h - 0.5
        z = torch.cat([c1, c2, (c1 * c2).sum(1, keepdim=True) * model.dot_scale], 1)
        return model.out(F.relu(model.dense2(torch.sigmoid(model.dense1(z)))))

    with torch.no_grad():
        rate_line("torch-eager", "pair-head", args.n, device, timed(args, head, device))
        if args.mode == "compile":
            rate_line("torch-compile", "pair-head", args.n, device,
                      timed(args, torch.compile(head, mode="reduce-overhead"), device))


def kde(args):
    """Exact Gaussian KDE inverse-density weights (engine/kde.h), in row blocks of the n x n kernel."""
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    y = torch.rand(args.n, generator=gen).to(device)
    h, block = 0.2, 4096
    norm = 1.0 / (args.n * h * math.sqrt(2 * math.pi))

    def weights():
        dens = torch.cat([torch.exp(-0.5 * ((y[i:i + block, None] - y[None, :]) / h) ** 2).sum(1)
                          for i in range(0, args.n, block)]) * norm
        inv = 1.0 / dens
        return inv / inv.mean()

    rate_line("torch-eager", "kde-exact", args.n, device, timed(args, weights, device))


def ops(args):
    """What one op costs beside its arithmetic (musicrec_peer ops): 50 x (add, ReLU) on n elements, the
    sum and the backward, the leaf's gradient dropped after each; forward ops per second."""
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    x = (torch.rand(args.n, generator=gen) * 2 - 1).to(device).requires_grad_()
    c = (torch.rand(args.n, generator=gen) * 2 - 1).to(device)

    def chain():
        h = x
        for _ in range(50):
            h = torch.relu(h + c)
        h.sum().backward()
        x.grad = None

    ms = timed(args, chain, device)
    print(json.dumps({"side": "torch-eager", "model": "op-chain (ops/s)", "batch": args.n, "device": str(device),
                      "ms_per_step": ms, "us_per_op": 1000 * ms / 100, "samples_per_s": 100 * 1000 / ms,
                      "torch": torch.__version__}), flush=True)


def table(args):
    rows = {}
    for path in args.files:
        for line in open(path):
            line = line.strip()
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            if "samples_per_s" in j:
                rows.setdefault((j["model"], j["batch"]), {})[j["side"]] = j["samples_per_s"]
            elif "error" in j:
                rows.setdefault((j["model"], j["batch"]), {})[j["side"]] = j["error"]
    # PyTorch's pair CNN in the usual layer order (speed --pool-last), where a file has it.
    last = any("torch-eager-pool-last" in r for r in rows.values())
    extra = " PyTorch eager, pool last | ratio |" if last else ""
    print("| model | batch | musicrec samples/s | PyTorch eager | ratio | torch.compile | ratio |" + extra)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if last else ""))

    def cell(v):
        return f"{v:,.0f}" if isinstance(v, float) else (v[:60] if v else "-")

    for (model, batch), r in sorted(rows.items()):
        ours, eager, comp = r.get("musicrec"), r.get("torch-eager"), r.get("torch-compile")

        def ratio(peer):
            return f"{ours / peer:.2f}" if isinstance(ours, float) and isinstance(peer, float) else "-"

        line = f"| {model} | {batch} | {cell(ours)} | {cell(eager)} | {ratio(eager)} | {cell(comp)} | {ratio(comp)} |"
        if last:
            pl = r.get("torch-eager-pool-last")
            line += f" {cell(pl)} | {ratio(pl)} |"
        print(line)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("parity")
    a.add_argument("dir")
    a.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = sub.add_parser("speed")
    a.add_argument("--model", choices=["cf", "pairs"], required=True)
    a.add_argument("--batch", required=True, help="one size or several: 256,1024,4096")
    a.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a.add_argument("--mode", choices=["eager", "compile"], default="eager")
    a.add_argument("--pool-last", action="store_true",
                   help="pair CNN towers in the usual order (conv + bias, sigmoid, pool) instead of ours")
    a.add_argument("--steps", type=int, default=50)
    a.add_argument("--repeats", type=int, default=5)
    a.add_argument("--seed", type=int, default=1)
    a = sub.add_parser("infer")
    a.add_argument("--n", type=int, default=141000)
    a.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a.add_argument("--mode", choices=["eager", "compile"], default="eager")
    a.add_argument("--steps", type=int, default=20)
    a.add_argument("--repeats", type=int, default=5)
    a.add_argument("--seed", type=int, default=1)
    a = sub.add_parser("kde")
    a.add_argument("--n", type=int, default=127000)
    a.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a.add_argument("--steps", type=int, default=5)
    a.add_argument("--repeats", type=int, default=5)
    a.add_argument("--seed", type=int, default=1)
    a = sub.add_parser("ops")
    a.add_argument("--n", type=int, default=256)
    a.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a.add_argument("--steps", type=int, default=200)
    a.add_argument("--repeats", type=int, default=5)
    a.add_argument("--seed", type=int, default=1)
    a = sub.add_parser("table")
    a.add_argument("files", nargs="+")
    args = p.parse_args()
    return {"parity": parity, "speed": speed, "infer": infer, "kde": kde, "ops": ops, "table": table}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
