"""Names the package shares, each defined once: message keys, directions, phases, node-config keys, choices."""

# What a Message's RecordDict holds (Flower's FedAvg uses these keys by default).
ARRAYS = "arrays"  # the model's ArrayRecord
METRICS = "metrics"  # a MetricRecord
CONFIG = "config"  # the ConfigRecord of a train/evaluate instruction
NUM_EXAMPLES = "num-examples"  # the metric FedAvg weights replies by

# Which way a message went, and in which phase of a round.
DOWN, UP = "down", "up"  # server -> client, client -> server
TRAIN, EVALUATE = "train", "evaluate"

# Keys of a SuperNode's node config (Flower's simulation sets both; a deployment passes them).
PARTITION_ID, NUM_PARTITIONS = "partition-id", "num-partitions"
COMPUTE_SECONDS = "compute-seconds"  # the Flower App's client waits this long before replying (a straggler)
CLIENTAPP_LOG_ENV = "FEDBANDWIDTH_CLIENTAPP_LOG"  # a folder where each ClientApp appends its clock (deploy sets it)

# Choices a run offers.
APIS = ("legacy", "message")  # NumPyClient + flwr.server FedAvg, or Message API + flwr.serverapp FedAvg
BACKENDS = ("inprocess", "ray")  # Simulation Engine backends: threads here, or Ray actors
CLIENTS = ("echo", "perturb")  # the Flower App's client: send the model back as is, or every array changed


def node_config_text(partition: int, partitions: int) -> str:
    """A SuperNode's --node-config value, e.g. 'partition-id=0 num-partitions=2'."""
    return f"{PARTITION_ID}={partition} {NUM_PARTITIONS}={partitions}"


# Who wrote a ledger row: the lesson's strategy hooks, or the Grid meter (every message the ServerApp moved).
STRATEGY, GRID = "strategy", "grid"
