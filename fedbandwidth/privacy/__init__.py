"""What privacy costs in bytes: secure aggregation (SecAgg+) stage by stage, its packing lever, differential privacy."""
