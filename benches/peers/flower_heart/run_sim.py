"""Flower simulation of FLamby Fed-Heart-Disease (4 hospitals): python run_sim.py [rounds] [num_cpus_per_client]
Env: FLB_LOCAL_EPOCHS (1), FLB_LR (0.1), FLB_BATCH (32), FLB_SEED (0), FLB_HEART_DATA (data folder)."""
import json, os, sys, time
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
cpus = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
os.environ["FLB_ROUNDS"] = str(rounds)
t0 = time.perf_counter()
from flwr.simulation import run_simulation
from flheart.client_app import app as client_app
from flheart.server_app import STATE, app as server_app
run_simulation(server_app=server_app, client_app=client_app, num_supernodes=4,
               backend_config={"client_resources": {"num_cpus": cpus, "num_gpus": 0.0}})
rows = STATE["rows"]
steady = sorted(r["round_s"] for r in rows[1:])
print("BENCH " + json.dumps({
    "wall_incl_startup_s": round(time.perf_counter() - t0, 3), "clients": 4, "rounds": rounds,
    "rounds_completed": len(rows), "first_round_s": rows[0]["round_s"] if rows else None,
    "median_round_s_after_first": steady[len(steady) // 2] if steady else None,
    "final_test_acc": rows[-1]["test_acc"] if rows else None,
    "final_test_loss": rows[-1]["test_loss"] if rows else None}), flush=True)
