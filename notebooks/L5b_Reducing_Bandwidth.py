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
# # Lesson 5b: Reducing bandwidth
#
# Lesson 5 measured what federated learning moves: the whole model down and up, every round. Here we
# pull every lever the lesson names and measure each on a real federated training task: pythia-14m's
# architecture learning English bytes (Python's own help topics), with the held-out loss as the price.
#
# Sizes are the serialized payload bytes Flower counts (`ArrayRecord.count_bytes()`): scales,
# zero points, indices and `.npy` headers included, never nominal bits.

# %% tags=["parameters"]
num_supernodes: int = 2  # simulated clients in the training run below
num_rounds: int = 2  # federated rounds of that run
local_steps: int = 2  # optimizer steps each client takes a round
codecs: list = ["fp16", "bf16", "int8", "int4", "delta+topk:0.01", "delta+topk:0.01+int8",
                "layers:-gpt_neox.embed_in.weight,-lm_head.weight", "delta+lowrank:4+int8",
                "delta+lowrank:2+int4"]  # uplink codecs to compare (the last one trains)
out_dir: str = "../build/L5b"  # where this notebook writes its ledger
study_csv: str = "../benchmarks/results/compression_study.csv"  # the committed sweep

# %%
from pathlib import Path

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

from fedbandwidth.compress.training import TrainConfig

runs = [TrainConfig(supernodes=num_supernodes, rounds=num_rounds, local_steps=local_steps, up_codec=c)
        for c in codecs]  # ConfigError names a bad value before anything runs
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
study_path = Path(study_csv) if Path(study_csv).exists() else Path(study_csv.replace(".csv", "_quick.csv"))

# %% [markdown]
# ## One uplink message, codec by codec
#
# A client's update is its trained weights minus the global model. We make a real one: a client
# trains the seeded initial model for 3 local steps on its share of the data (a few seconds), as in
# round 1 of the runs below. Then we encode it with each codec: bytes, reduction factor, and the
# largest error the server sees after decoding (before error feedback returns it next round).

# %%
from fedbandwidth.compress.study import client_update, codec_table, plot_codec_bytes
from fedbandwidth.compress.training import initial_arrays

global_weights = initial_arrays(runs[0])
update = client_update(local_steps=3, seed=runs[0].seed)
local_weights = {k: global_weights[k] + update[k] for k in global_weights}
table = codec_table(["none", *codecs], local_weights, global_weights)
plot_codec_bytes(table)
table

# %% [markdown]
# ## Lever 1: fewer bits per value (fp16, bf16, int8, int4)
#
# Halving or quartering the bits of every value: 2x, 4x, ~8x (int4 packs two values a byte; each
# tensor also sends a scale and a minimum). The error is bounded by half a quantization step.

# %%
from fedbandwidth.compress.study import plot_runs

study = pd.read_csv(study_path) if study_path.exists() else None
if study is not None:
    plot_runs(study[study.up_codec.isin(["none", "fp16", "int8", "int4"]) & (study.fraction == 1.0)],
              title="Value codecs in training")

# %% [markdown]
# ## Lever 2: send the update, and only its largest entries (top-k with error feedback)
#
# `delta` sends local - global. `topk:f` keeps the fraction f of entries with the largest magnitude,
# with their indices (uint16, int32 or a bitmap, whichever is cheapest). What is not sent is kept on
# the client (`context.state`) and added to the next update: error feedback. `:noef` drops it.

# %%
if study is not None:
    plot_runs(study[study.up_codec.str.contains("topk") & ~study.up_codec.str.contains("int")],
              title="Top-k with and without error feedback")

# %% [markdown]
# ## Lever 3: do not send what does not change (frozen embeddings)
#
# pythia-14m's two embeddings are 91.5% of its bytes. Freezing them (`layers:` excluding them) and
# sending the rest cuts every message by ~12x; the clients then train only the transformer blocks.

# %%
if study is not None:
    plot_runs(study[study.up_codec.str.contains("layers")], title="Frozen embeddings")

# %% [markdown]
# ## Lever 4: send the update as a low-rank matrix (`lowrank:r`)
#
# A weight matrix's update need not be sent entry by entry: `lowrank:r` sends two thin factors
# P (m x r) and Q (n x r) whose product is the update's best rank-r approximation (its truncated SVD),
# the "structured update" of Konecny et al. (2016) and the idea behind PowerSGD. For the 50,304 x 128
# output layer that is r x 50,432 numbers instead of 6.4 million. What the factors miss is kept by
# error feedback, as for top-k. Vectors (biases, layer norms) are sent whole.
#
# Why it works here: only 256 of the 50,304 vocabulary rows are bytes that occur, and in the first
# steps every other row of the output layer moves the same way (down, away from the text's hidden
# states). That is one direction: rank 1 carries almost all of the output layer's update. The
# transformer's own matrices are less low-rank; error feedback sends the rest over later rounds.

# %%
from fedbandwidth.compress.study import plot_spectrum

noise = np.random.default_rng(0).standard_normal((512, 128))
plot_spectrum({"lm_head (output layer)": update["lm_head.weight"],
               "embed_in (input embedding)": update["gpt_neox.embed_in.weight"],
               "layer 0 MLP in": update["gpt_neox.layers.0.mlp.dense_h_to_4h.weight"],
               "random noise": noise})

# %%
if study is not None:
    plot_runs(study[study.up_codec.str.contains("lowrank") & (study.fraction == 1.0)
                    & (study.rounds == study.rounds.mode()[0])],
              title="Low-rank updates (rank r), with int8/int4 factors")

# %% [markdown]
# ## Lever 5: fewer clients a round, and fewer rounds (more local steps)
#
# Sampling a fraction of the clients divides the bytes of a round; more local steps per round at the
# same total compute divides the number of rounds.

# %%
if study is not None:
    plain = study[(study.up_codec == "none") & (study.down_codec == "none")]
    plot_runs(plain, title="Client fraction and local steps vs rounds")

# %% [markdown]
# ## A federated training run with a codec
#
# The last codec of `codecs` on the uplink, `num_supernodes` clients, `num_rounds` rounds: the ledger
# records the encoded messages, the server evaluates the held-out loss after each round.

# %%
from fedbandwidth.ledger import Ledger
from fedbandwidth.logs import setup_logging
from fedbandwidth.compress.training import train

setup_logging(level=40)  # errors only
result = train(runs[-1], Ledger(csv_path=out / "ledger.csv"))
per_round = result.ledger.per_round()
per_round["eval_loss"] = [result.eval_loss[r] for r in per_round["round"]]
print(f"held-out loss {result.eval_loss[0]:.3f} -> {result.final_eval_loss:.3f}")
per_round

# %% [markdown]
# ## Every lever at once: bytes vs loss
#
# Each point is one run of `benchmarks/compression_study.py` (the same rounds, data and clients);
# shaded bands are published uplink reductions, placed relative to our uncompressed run. The dashed
# line is the study's goal, 100x fewer uplink bytes; the star is the run with the fewest uplink bytes
# whose held-out loss is within 2% of the uncompressed run's.

# %%
from fedbandwidth.compress.study import best_within, plot_pareto

if study is not None:
    plt.figure(figsize=(10, 6))
    plot_pareto(study, ax=plt.gca())
    best = best_within(study)
    print(f"best within 2% of the uncompressed loss: {best.up_codec} "
          f"({best.up_ratio:,.0f}x fewer uplink bytes, loss {best.final_eval_loss:.3f})")
