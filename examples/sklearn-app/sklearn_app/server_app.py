"""ServerApp: FedAvg over the SuperNodes' coefficient arrays; after every round the global model is scored on the
held-out test part of the bundled digits, and the accuracy printed (`flwrazure-example: round R accuracy A`)."""

from flwr.app import ArrayRecord, Context, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from sklearn_app import task

app = ServerApp()


def trained_on(replies: list[RecordDict], weighting_key: str) -> MetricRecord:
    """Which data the round was trained on: examples, clients, and how many of them read their data-path."""
    examples = sum(int(r["metrics"][weighting_key]) for r in replies)
    from_path = sum(int(r["metrics"]["from-data-path"]) for r in replies)
    accuracy = sum(float(r["metrics"]["train-accuracy"]) * int(r["metrics"][weighting_key]) for r in replies)
    print(f"flwrazure-example: trained on {examples} examples from {len(replies)} clients "
          f"({from_path} read their data-path)", flush=True)
    return MetricRecord({"num-examples": examples, "clients": len(replies), "from-data-path": from_path,
                         "train-accuracy": accuracy / max(examples, 1)})


@app.main()
def main(grid: Grid, context: Context) -> None:
    nodes = int(context.run_config["min-nodes"])
    rounds = int(context.run_config["num-server-rounds"])
    fraction_evaluate = float(context.run_config["fraction-evaluate"])
    x_test, y_test = task.test_set()

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        acc = task.accuracy(arrays.to_numpy_ndarrays(), x_test, y_test)
        label = "initial" if server_round == 0 else f"round {server_round}"
        print(f"flwrazure-example: {label} accuracy {acc:.4f}", flush=True)
        return MetricRecord({"accuracy": acc})

    strategy = FedAvg(fraction_evaluate=fraction_evaluate, min_train_nodes=nodes, min_available_nodes=nodes,
                      min_evaluate_nodes=nodes if fraction_evaluate > 0 else 0, train_metrics_aggr_fn=trained_on)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(task.initial_arrays()), num_rounds=rounds,
                            evaluate_fn=evaluate)
    final = task.accuracy(result.arrays.to_numpy_ndarrays(), x_test, y_test)
    print(f"flwrazure-example: final accuracy {final:.4f} after {rounds} rounds "
          f"({len(y_test)} held-out test images)", flush=True)
