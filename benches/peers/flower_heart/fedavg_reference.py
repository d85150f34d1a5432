"""Framework-free FedAvg on the flheart task: must match the Flower run's test_loss/test_acc to ~1e-12.
usage: python fedavg_reference.py [rounds]   (same FLB_* env vars as run_sim.py)"""
import sys

import numpy as np

from flheart.task import NUM_CENTRES, init_model, load_centre, local_train, loss_acc

R = int(sys.argv[1]) if len(sys.argv) > 1 else 100
params = init_model()
for rnd in range(1, R + 1):
    updates, sizes = [], []
    for c in range(NUM_CENTRES):
        X, y = load_centre(c, "train")
        updates.append(local_train(params, X, y, rnd, c))
        sizes.append(len(y))
    params = [sum(u[k] * n for u, n in zip(updates, sizes)) / sum(sizes) for k in range(2)]
    evals = [loss_acc(params, *load_centre(c, "test")) for c in range(NUM_CENTRES)]
    n_te = np.array([len(load_centre(c, "test")[1]) for c in range(NUM_CENTRES)])
    loss = float(np.dot([e[0] for e in evals], n_te) / n_te.sum())
    acc = float(np.dot([e[1] for e in evals], n_te) / n_te.sum())
    print(rnd, "test_loss=%.13f test_acc=%.10f" % (loss, acc), "centre_acc", [round(e[1], 6) for e in evals])
