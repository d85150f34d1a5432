"""FedAvg over the 4 hospitals; every round ends with federated evaluation on each hospital's test
split. The sample-weighted mean of the 4 test accuracies is the pooled test accuracy (254 rows)."""
import json
import os
import time

from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from flheart.task import BATCH, LOCAL_EPOCHS, LR, NUM_CENTRES, SEED, init_model

app = ServerApp()
STATE = {"t": None, "rows": [], "total_rounds_s": None}


class TimedFedAvg(FedAvg):
    """FedAvg that prints one BENCH line when a round's federated evaluation is aggregated."""

    def aggregate_evaluate(self, server_round, replies):
        replies = list(replies)
        metrics = super().aggregate_evaluate(server_round, replies)
        now = time.perf_counter()
        per_centre = {}
        for m in replies:
            if not m.has_error():
                mr = m.content["metrics"]
                per_centre[int(mr["centre"])] = round(float(mr["eval_acc"]), 6)
        row = {"round": server_round, "round_s": now - STATE["t"],
               "test_loss": None if metrics is None else float(metrics["eval_loss"]),
               "test_acc": None if metrics is None else float(metrics["eval_acc"]),
               "centre_acc": [per_centre.get(c) for c in range(NUM_CENTRES)]}
        STATE["t"] = now
        STATE["rows"].append(row)
        print("BENCH " + json.dumps(row), flush=True)
        return metrics


@app.main()
def main(grid: Grid, context: Context) -> None:
    num_rounds = int(os.environ.get("FLB_ROUNDS", context.run_config.get("num-server-rounds", 100)))
    n = NUM_CENTRES
    strategy = TimedFedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=n,
                           min_evaluate_nodes=n, min_available_nodes=n)
    print("BENCH " + json.dumps({"config": {"rounds": num_rounds, "local_epochs": LOCAL_EPOCHS,
                                            "lr": LR, "batch": BATCH, "seed": SEED}}), flush=True)
    t0 = STATE["t"] = time.perf_counter()
    strategy.start(grid=grid, initial_arrays=ArrayRecord(init_model()), num_rounds=num_rounds)
    STATE["total_rounds_s"] = time.perf_counter() - t0
    print("BENCH " + json.dumps({"total_rounds_s": STATE["total_rounds_s"]}), flush=True)
