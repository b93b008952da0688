# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5d: What privacy costs
#
# Privacy is why people choose federated learning. Here we measure what it costs in bytes: Flower's
# **secure aggregation** (SecAgg+), a lever that halves its biggest message, and **differential privacy**.
#
# The lesson's ledger lives in the strategy's hooks, and SecAgg+ moves most of its bytes outside them. So
# this notebook meters one level lower, **at the Grid**: every message the ServerApp pushes and every reply
# it pulls, whatever its records, with its round, node, direction and stage. Bytes are the records as Flower
# counts them (`count_bytes()`: arrays as `.npy` + keys; configs and metrics at 8 B a number, the length of
# each str or bytes, + keys); object framing, protobuf and gRPC framing are not counted.
#
# Units: bytes are integers; MiB = 2²⁰ bytes.

# %% tags=["parameters"]
model: str = "pythia-14m"  # the model whose exact arrays travel ("tiny-gptneox": 1.85 MB, quick)
num_nodes: int = 5  # SuperNodes (SecAgg+ needs at least 3)
num_rounds: int = 2  # federated rounds
shares: int = 3  # SecAgg+ num_shares: each secret is split among this many neighbours (odd, or all nodes)
threshold: int = 2  # SecAgg+ reconstruction_threshold: shares that rebuild a secret (< shares)
big_models: list = ["pythia-160m", "llama-3.2-1b"]  # models to check against Flower's 2 GiB message ceiling

# %%
import logging

import matplotlib.pyplot as plt
import pandas as pd

from fedbandwidth.architecture import model_specs, zero_arrays
from fedbandwidth.logs import setup_logging
from fedbandwidth.model import known_models, random_arrays
from fedbandwidth.privacy.secagg import SecAggConfig

setup_logging(logging.CRITICAL)  # Flower's log lines off (the node that dies below would print its traceback)
secagg = SecAggConfig(num_nodes, num_rounds, shares, threshold)  # ConfigError names a bad value before anything runs
specs = model_specs(model)
arrays = random_arrays(model) if model in known_models() else zero_arrays(specs)
print(f"{model}: {sum(s.numel for s in specs):,} parameters in {len(specs)} tensors; {num_nodes} nodes, "
      f"{num_rounds} rounds, SecAgg+ shares {shares}, threshold {threshold}")

# %% [markdown]
# ## The Grid meter, checked against the lesson's strategy
#
# First plain FedAvg, metered twice: by the lesson's `BandwidthTrackingFedAvg` (the model messages) and at
# the Grid (every message). The model bytes agree to the byte; the Grid also sees the small configs and
# metrics that travel beside the model (a status, `num_examples`).

# %%
from fedbandwidth.ledger import Ledger
from fedbandwidth.simulation import SimulationConfig, simulate

grid = Ledger()
strategy = simulate(SimulationConfig(num_nodes, num_rounds, model=model), arrays, grid_ledger=grid)
meters = grid.to_frame().groupby(["phase", "direction"])[["array_bytes", "config_bytes", "metric_bytes"]].sum()
meters["strategy_ledger"] = strategy.to_frame().groupby(["phase", "direction"]).payload_bytes.sum()
meters

# %% [markdown]
# ## SecAgg+: four stages a round
#
# Flower's `SecAggPlusWorkflow` (legacy API, with `secaggplus_mod` on the clients) turns one exchange into
# four: **setup** (each node's two public keys up), **share keys** (neighbours' keys down, encrypted key
# shares up), **collect masked vectors** (the shares and the model down; the masked model up), **unmask**
# (who survived down; the shares that remove the masks up). Next to each measured figure: the formula
# (`fedbandwidth.privacy.formula`), from the nodes, shares, parameters and modulus. The one thing that
# varies between runs is the node ids (random 64-bit numbers) written in decimal as keys in 'share keys':
# the formula takes the run's ids.

# %%
from fedbandwidth.privacy.plots import plot_stage_bytes
from fedbandwidth.privacy.secagg import run_secagg, run_stages, size_mod_view

size_mod = []  # what Flower's arrays_size_mod reports for each reply
ledger, aggregates = run_secagg(secagg, arrays, outer_mods=[size_mod_view(size_mod)])
stages = pd.DataFrame(run_stages(secagg, ledger, specs))
plot_stage_bytes(stages.to_dict("records"))
plt.show()
stages

# %% [markdown]
# The masked model goes up as **int64**, 8 B a parameter: twice the float32 model. And it travels inside a
# `ConfigRecord`, not an `ArrayRecord`. So Flower's own size mod (`arrays_size_mod`), and any tracker that
# counts ArrayRecords, reports **0 bytes** for the largest message of the protocol:

# %%
seen = pd.DataFrame(size_mod).groupby("stage").size_mod_bytes.sum()
meter = stages[stages.direction == "up"].groupby("stage").bytes.sum()
pd.DataFrame({"arrays_size_mod (sent)": seen, "Grid meter (up)": meter}).loc[list(meter.index)]

# %% [markdown]
# What it costs against plain FedAvg, per round:

# %%
plain_round = strategy.per_round().total_bytes.mean()
secagg_round = stages.groupby("round").bytes.sum().mean()
print(f"plain FedAvg {plain_round:,.0f} B a round; SecAgg+ {secagg_round:,.0f} B a round "
      f"({secagg_round / plain_round:.2f}x)")

# %% [markdown]
# The same workflow runs on a real Deployment Engine: `fedbandwidth deploy --secagg --supernodes 3 --model
# tiny-gptneox` (with the same `--secagg-*` settings) sets the Flower App's run config (`secagg = true`), and
# its summary holds the same stages, measured at the Grid next to the formula (equal to the byte; README).
#
# ## Flower's 2 GiB ceiling
#
# A `ConfigRecord` is one object: Flower cuts ArrayRecords into 5 MiB chunks, not it. So the masked
# upload must fit in one gRPC message (at most 2,147,483,647 B): at 8 B a parameter, about 268M
# parameters. `fedbandwidth predict --secagg` names the ceiling; `simulate --secagg` refuses a run over it.

# %%
from fedbandwidth.forecast import ForecastConfig, message_specs
from fedbandwidth.privacy.forecast import secagg_forecast

rows = []
for name in [model, *big_models]:
    for pack in (False, True):
        plan = SecAggConfig(3, 1, pack=pack)
        f = secagg_forecast(plan, message_specs(ForecastConfig(name)))
        rows.append({"model": name, "packed": pack, "masked upload (B)": f["upload_message_bytes"],
                     "over 2 GiB": f["over_ceiling"]})
pd.DataFrame(rows)

# %% [markdown]
# ## A lever: pack the masked vector
#
# Every masked value lies below the modulus range (2³² by default), so 32 of its 64 bits are zeros. Flower
# offers no option for it; `--secagg-pack` sends the masked arrays as one buffer of 4-byte values (the bytes
# the modulus needs) and restores the int64 arrays on the server before SecAgg+ unmasks them. With the
# stochastic rounding seeded, the aggregate is the same **to the bit**:

# %%
from fedbandwidth.privacy.secagg import seeded_rounding

seeded = {"outer_mods": [seeded_rounding], "workers": 1}
plain_ledger, plain_sum = run_secagg(SecAggConfig(num_nodes, 1, shares, threshold), arrays, **seeded)
packed_ledger, packed_sum = run_secagg(SecAggConfig(num_nodes, 1, shares, threshold, pack=True), arrays, **seeded)
upload = {name: sum(t.payload_bytes for t in led.transfers if t.stage == "collect_masked_vectors" and t.direction == "up")
          for name, led in (("int64", plain_ledger), ("packed", packed_ledger))}
same = all(a.tobytes() == b.tobytes() for a, b in zip(plain_sum[0], packed_sum[0], strict=True))
print(f"masked uploads: {upload['int64']:,} B -> {upload['packed']:,} B "
      f"({upload['packed'] / upload['int64']:.3f}x); aggregate bit-identical: {same}")

# %% [markdown]
# ## The case SecAgg+ exists for: a node that dies after sharing its keys
#
# Node 1 fails in 'collect masked vectors', after its keys were shared. Its pairwise masks are in the
# others' vectors, so the server asks the survivors for the dead node's key shares in 'unmask', rebuilds
# its masks and removes them. The round completes; 'unmask' costs a larger share (324 B, of a private key)
# for each dead neighbour.

# %%
dropout = SecAggConfig(num_nodes, 1, shares, threshold, drop_partitions=(1,))
drop_ledger, drop_sum = run_secagg(dropout, arrays)
print(f"round completed: {len(drop_sum) == 1}")
pd.DataFrame(run_stages(dropout, drop_ledger, specs))

# %% [markdown]
# ## Differential privacy's bill
#
# Flower's central DP wraps the strategy (clipping on the server, or on the clients with Flower's clipping
# mods) and adds Gaussian noise; local DP (`LocalDpMod`) clips and adds noise on each client. Noise changes
# values, not sizes: the only bytes DP adds are client-side clipping's `clipping_norm` sent down with every
# instruction and adaptive clipping's `norm_bit` sent back with every reply.

# %%
from fedbandwidth.privacy.dp import DpConfig, dp_bill

pd.DataFrame(dp_bill(DpConfig(num_nodes, num_rounds), arrays)).set_index("variant")

# %% [markdown]
# ## Who may join
#
# All of this protects the updates of nodes that belong to the federation. A SuperLink started without
# authentication lets any process that reaches its Fleet API join and pull the model. Flower's SuperNode
# authentication (`flower-superlink --enable-supernode-auth`, a key pair per SuperNode registered with
# `flwr supernode ...`, SuperNodes started with `--auth-supernode-private-key`) refuses the others.
# `fedbandwidth deploy --auth` (with `--tls`) sets this up with Flower's own commands; lesson 5c's
# deployment shows the bytes on the wire.
