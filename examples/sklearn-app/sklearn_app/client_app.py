"""ClientApp: trains the global model on this SuperNode's data for a few local epochs.

Its data: the node config's `data-path` (a directory with train.npz, copied there by `flwrazure start
--client-data DIR`) when given, else partition `partition-id` of `num-partitions` of the bundled digits (both set by
flwrazure in each SuperNode's --node-config)."""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from sklearn_app import task

app = ClientApp()


def _data(context: Context):
    """(x, y, read from data-path: 1 or 0)."""
    path = context.node_config.get("data-path")
    if path:
        return (*task.load_dir(str(path)), 1)
    pid, total = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    return (*task.partition(pid, total), 0)


@app.train()
def train(msg: Message, context: Context) -> Message:
    x, y, from_path = _data(context)
    seed = int(context.node_config.get("partition-id", 0))
    clf = task.model(msg.content["arrays"].to_numpy_ndarrays(), float(context.run_config["learning-rate"]), seed)
    arrays = task.train(clf, x, y, int(context.run_config["local-epochs"]))
    metrics = MetricRecord({"num-examples": len(y), "train-accuracy": task.accuracy(arrays, x, y),
                            "from-data-path": from_path})
    return Message(RecordDict({"arrays": ArrayRecord(arrays), "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Accuracy on the local data (sent only when the run config's fraction-evaluate is above 0)."""
    x, y, from_path = _data(context)
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    metrics = MetricRecord({"num-examples": len(y), "accuracy": task.accuracy(arrays, x, y),
                            "from-data-path": from_path})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
