#!/usr/bin/env python3
"""What the pair CNN could reach from the songs' mean timbre (issue 4 analysis, session 3).

Fits logit = a * (u0 + P m_a) . (u0 + P m_b) + b, with m a song's timbre rows of its cached image
averaged over time (standardised), P a 12 x rank matrix and u0 an offset, by Adam on the Last.fm
training pairs of a `musicrec synth msd` folder, and reports AUC and accuracy on the listed test pairs.
This is the generator's own structure (the score is a function of z_a . z_b, z linear in the mean
timbre), so it shows what is learnable from the features with that structure given.

  python3 scripts/analysis/mean_timbre_bilinear.py SYNTH_DIR [--nine-to-one] [--no-offset]

SYNTH_DIR needs DIR/data/.musicrec-cache/images-40x120-60s.h5 (written by `musicrec train pairs`).
--nine-to-one adds random unlisted partners labelled 0 until negatives are 9x the positives, with class
weights 1:10, as the trainer's default set; --no-offset drops u0. Needs numpy and h5py.
"""
import glob
import json
import sys

import h5py
import numpy as np


def auc(s, y):
    order = np.argsort(s)
    r = np.empty(len(s))
    r[order] = np.arange(1, len(s) + 1)
    pos = y == 1
    return (r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    root = args[0]
    nine_to_one, offset = "--nine-to-one" in sys.argv, "--no-offset" not in sys.argv
    f = h5py.File(root + "/data/.musicrec-cache/images-40x120-60s.h5", "r")
    images = f["images"][:, 0]
    ids = [t.decode() if isinstance(t, bytes) else t for t in f["track_ids"][:]]
    index = {t: i for i, t in enumerate(ids)}
    rows = images[:, 20:, :].mean(axis=2)  # the timbre half, averaged over time
    feature = np.array([12 * r // 20 for r in range(20)])  # image row -> timbre coefficient
    m = np.stack([rows[:, feature == k].mean(1) for k in range(12)], 1)
    m = (m - m.mean(0)) / m.std(0)

    def pairs(part):
        out = []
        for p in glob.glob(root + "/" + part + "/*/*/*/*.json"):
            j = json.load(open(p))
            for t, s in j["similars"]:
                if t in index:
                    out.append((index[j["track_id"]], index[t], 1.0 if s >= 0.5 else 0.0))
        return np.array(out)

    train, test = pairs("lastfm_train"), pairs("lastfm_test")
    if nine_to_one:
        listed = set((int(a), int(b)) for a, b, _ in train)
        sources = np.unique(train[:, 0]).astype(int)
        need = 9 * int(train[:, 2].sum()) - int((train[:, 2] == 0).sum())
        rng, extra = np.random.default_rng(5), []
        while len(extra) < need:
            a, b = int(rng.choice(sources)), int(rng.integers(0, len(ids)))
            if a != b and (a, b) not in listed:
                extra.append((a, b, 0.0))
        train = np.concatenate([train, np.array(extra)])
    rank = 4
    rng = np.random.default_rng(0)
    params = [rng.normal(0, 0.3, (12, rank)), np.array(1.0), np.array(0.0), np.zeros(rank)]
    mom = [np.zeros_like(p) for p in params]
    var = [np.zeros_like(p) for p in params]
    A, B, y = m[train[:, 0].astype(int)], m[train[:, 1].astype(int)], train[:, 2]
    w = np.where(y == 1, 10.0, 1.0) if nine_to_one else np.ones_like(y)
    for it in range(1, 2001):
        P, a, b, u0 = params
        ua, ub = A @ P + u0, B @ P + u0
        c = (ua * ub).sum(1)
        p = 1 / (1 + np.exp(-(a * c + b)))
        g = w * (p - y) / w.sum()
        grads = [A.T @ (g[:, None] * a * ub) + B.T @ (g[:, None] * a * ua), np.array((g * c).sum()), np.array(g.sum()),
                 (g[:, None] * a * (ua + ub)).sum(0) if offset else np.zeros(rank)]
        for k in range(4):
            mom[k] = 0.9 * mom[k] + 0.1 * grads[k]
            var[k] = 0.999 * var[k] + 0.001 * grads[k] ** 2
            params[k] = params[k] - 0.02 * (mom[k] / (1 - 0.9 ** it)) / (np.sqrt(var[k] / (1 - 0.999 ** it)) + 1e-8)
    P, a, b, u0 = params
    ct = ((m[test[:, 0].astype(int)] @ P + u0) * (m[test[:, 1].astype(int)] @ P + u0)).sum(1)
    print(f"train pairs {len(train)} (auc {auc(c, y):.4f}); listed test pairs {len(test)}: "
          f"auc {auc(ct, test[:, 2]):.4f}, accuracy {(((a * ct + b) > 0) == test[:, 2]).mean():.4f}")


if __name__ == "__main__":
    main()
