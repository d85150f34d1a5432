"""One SuperNode = one hospital: partition-id 0..3 is the FLamby centre id."""
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flheart.task import NUM_CENTRES, load_centre, local_train, loss_acc

app = ClientApp()


def _centre(context: Context) -> int:
    n_parts = int(context.node_config["num-partitions"])
    if n_parts != NUM_CENTRES:
        raise ValueError(f"Fed-Heart-Disease has {NUM_CENTRES} centres, got {n_parts} partitions")
    return int(context.node_config["partition-id"])


@app.train()
def train(msg: Message, context: Context):
    centre = _centre(context)
    X, y = load_centre(centre, "train")
    server_round = int(msg.content["config"]["server-round"])
    new = local_train(msg.content["arrays"].to_numpy_ndarrays(), X, y, server_round, centre)
    loss, acc = loss_acc(new, X, y)
    content = RecordDict({
        "arrays": ArrayRecord(new),
        "metrics": MetricRecord({"train_loss": loss, "train_acc": acc, "num-examples": len(y)}),
    })
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context):
    centre = _centre(context)
    X, y = load_centre(centre, "test")
    loss, acc = loss_acc(msg.content["arrays"].to_numpy_ndarrays(), X, y)
    content = RecordDict({"metrics": MetricRecord({
        "eval_loss": loss, "eval_acc": acc, "num-examples": len(y), "centre": centre})})
    return Message(content=content, reply_to=msg)
