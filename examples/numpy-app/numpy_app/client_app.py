"""ClientApp: a few gradient steps on this SuperNode's partition; reports which partition it is."""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from numpy_app.task import gradient_steps, load_partition, loss

app = ClientApp()


def _data(context: Context):
    pid = int(context.node_config["partition-id"])
    return pid, load_partition(pid, int(context.node_config["num-partitions"]))


@app.train()
def train(msg: Message, context: Context) -> Message:
    pid, (x, y) = _data(context)
    w = msg.content["arrays"].to_numpy_ndarrays()[0]
    w = gradient_steps(w, x, y, int(context.run_config["local-steps"]), float(context.run_config["learning-rate"]))
    metrics = MetricRecord({"num-examples": len(y), "train-loss": loss(w, x, y), "partition-id": pid})
    return Message(RecordDict({"arrays": ArrayRecord([w]), "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    pid, (x, y) = _data(context)
    w = msg.content["arrays"].to_numpy_ndarrays()[0]
    metrics = MetricRecord({"num-examples": len(y), "eval-loss": loss(w, x, y), "partition-id": pid})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
