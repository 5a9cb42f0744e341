"""ServerApp: FedAvg over all SuperNodes; logs which partitions took part in each round."""

import numpy as np
from flwr.app import ArrayRecord, Context, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from numpy_app.task import FEATURES, W_TRUE

app = ServerApp()


def partitions_seen(replies: list[RecordDict], weighting_key: str) -> MetricRecord:
    seen = sorted({int(r["metrics"]["partition-id"]) for r in replies})
    total = sum(int(r["metrics"][weighting_key]) for r in replies)
    losses = [float(r["metrics"].get("train-loss", r["metrics"].get("eval-loss", 0.0))) for r in replies]
    print(f"flwrazure-example: round replies from partitions {seen}", flush=True)
    return MetricRecord({"partitions": len(seen), "num-examples": total, "loss": float(np.mean(losses))})


@app.main()
def main(grid: Grid, context: Context) -> None:
    nodes = int(context.run_config["min-nodes"])
    strategy = FedAvg(min_train_nodes=nodes, min_evaluate_nodes=nodes, min_available_nodes=nodes,
                      train_metrics_aggr_fn=partitions_seen, evaluate_metrics_aggr_fn=partitions_seen)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord([np.zeros(FEATURES)]),
                            num_rounds=int(context.run_config["num-server-rounds"]))
    w = result.arrays.to_numpy_ndarrays()[0]
    print(f"flwrazure-example: final weights {np.round(w, 3).tolist()} (true {W_TRUE.tolist()})", flush=True)
