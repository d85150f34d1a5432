"""FLamby Fed-Heart-Disease with logistic regression in plain numpy (peer task for `cohort demo`).

Data: UCI Heart Disease (CC BY 4.0; Janosi, Steinbrunn, Pfisterer, Detrano), four centres, rows and
train/test membership taken from flamby-split.csv. 13 features per row:
  age, sex, trestbps, chol, fbs, thalach, exang, oldpeak,
  cp==2, cp==3, cp==4, restecg==1, restecg==2
label = 1 if num > 0 else 0.
Scaling: z-score with the mean and population std (ddof=0) of the POOLED train rows of all four
centres (what a federated sum / sum-of-squares standardisation gives).
Model: w (13) + b (1), initialised to zero; loss = mean log-loss, no regularisation.
Local training: LOCAL_EPOCHS passes of mini-batch SGD (batch BATCH, last batch may be short, lr LR);
each pass visits the rows in an order drawn by np.random.default_rng([SEED, round, centre]).
"""
import os
from pathlib import Path

import numpy as np

LOCAL_EPOCHS = int(os.environ.get("FLB_LOCAL_EPOCHS", 1))
LR = float(os.environ.get("FLB_LR", 0.1))
BATCH = int(os.environ.get("FLB_BATCH", 32))
SEED = int(os.environ.get("FLB_SEED", 0))
NUM_CENTRES = 4
DIM = 13

CENTRE_FILES = {
    0: "processed.cleveland.data",
    1: "processed.hungarian.data",
    2: "processed.switzerland.data",
    3: "processed.va.data",
}
_CACHE: dict = {}


def data_dir() -> Path:
    """FLB_HEART_DATA, else the cohort checkout's data/heart-disease (next to this file, or /work/main)."""
    if "FLB_HEART_DATA" in os.environ:
        return Path(os.environ["FLB_HEART_DATA"])
    parents = Path(__file__).resolve().parents
    here = parents[4] / "data" / "heart-disease" if len(parents) > 4 else None
    return here if here is not None and here.is_dir() else Path("/work/main/data/heart-disease")


def _features(row: list) -> list:
    age, sex, cp, trestbps, chol, fbs, restecg, thalach, exang, oldpeak = row[:10]
    return [age, sex, trestbps, chol, fbs, thalach, exang, oldpeak,
            float(cp == 2), float(cp == 3), float(cp == 4),
            float(restecg == 1), float(restecg == 2)]


def _raw():
    """{(centre, 'train'|'test'): (X unscaled, y)} in flamby-split.csv order."""
    if "raw" in _CACHE:
        return _CACHE["raw"]
    d = data_dir()
    lines = {c: (d / f).read_text().splitlines() for c, f in CENTRE_FILES.items()}
    rows: dict = {}
    split_lines = (d / "flamby-split.csv").read_text().splitlines()
    for rec in split_lines[1:]:
        centre, _name, line_no, split = rec.strip().split(",")
        vals = [float(v) for v in lines[int(centre)][int(line_no) - 1].split(",")]
        x, num = _features(vals), vals[13]
        if any(np.isnan(x)):
            raise ValueError(f"centre {centre} line {line_no}: missing value in a kept row")
        rows.setdefault((int(centre), split), []).append((x, 1.0 if num > 0 else 0.0))
    out = {k: (np.array([r[0] for r in v]), np.array([r[1] for r in v])) for k, v in rows.items()}
    _CACHE["raw"] = out
    return out


def scaler():
    """Mean and population std of the pooled train rows of all centres."""
    if "scaler" not in _CACHE:
        raw = _raw()
        Xtr = np.concatenate([raw[(c, "train")][0] for c in range(NUM_CENTRES)])
        _CACHE["scaler"] = (Xtr.mean(axis=0), Xtr.std(axis=0))
    return _CACHE["scaler"]


def load_centre(centre: int, split: str):
    """(X standardised, y) for one centre's 'train' or 'test' split."""
    key = ("scaled", centre, split)
    if key not in _CACHE:
        mu, sd = scaler()
        X, y = _raw()[(centre, split)]
        _CACHE[key] = ((X - mu) / sd, y)
    return _CACHE[key]


def init_model():
    return [np.zeros(DIM), np.zeros(1)]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def loss_acc(params, X, y):
    w, b = params
    p = np.clip(_sigmoid(X @ w + b[0]), 1e-12, 1 - 1e-12)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    acc = float(np.mean((p >= 0.5) == (y == 1.0)))
    return loss, acc


def local_train(params, X, y, server_round: int, centre: int,
                epochs: int = LOCAL_EPOCHS, lr: float = LR, batch: int = BATCH):
    w, b = params[0].astype(np.float64).copy(), params[1].astype(np.float64).copy()
    rng = np.random.default_rng([SEED, server_round, centre])
    n = len(y)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            err = _sigmoid(X[idx] @ w + b[0]) - y[idx]
            w -= lr * (X[idx].T @ err) / len(idx)
            b -= lr * np.array([err.mean()])
    return [w, b]
