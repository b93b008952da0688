"""Reducing bandwidth: codecs (chain, values, sparse, lowrank, encoding), their Flower mod and strategy
(messages), the training task and runs (task, training), and the compression study (study)."""
