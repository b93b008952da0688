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
# # Lesson 5: Bandwidth
#
# How many bytes does federated learning move? First in theory, then measured with Flower, message
# by message, and compared byte for byte.
#
# The course's formula:
#
# > bandwidth = (model sent to a client + update received from it) × clients × fraction sampled
# > per round × rounds
#
# Units used throughout: bytes are exact integers; **MiB** = 2²⁰ = 1,048,576 bytes (what the
# course computed with `/ (1024**2)`); **MB** = 10⁶ bytes (what network links are sold in).
#
# The first code cell holds the parameters (papermill overrides them); the next one checks them.

# %% tags=["parameters"]
num_supernodes: int = 2  # simulated clients (SuperNodes)
num_rounds: int = 1  # federated rounds
fraction_fit: float = 1.0  # fraction of the SuperNodes sampled for training each round
out_dir: str = "../build/L5"  # where the ledger CSVs and the figures go
explorer_run: bool = True  # run the explorer's simulation once, as its button does

# %%
from pathlib import Path

from fedbandwidth.simulation import check_lesson_parameters

cfg = check_lesson_parameters(num_supernodes, num_rounds, fraction_fit)  # ConfigError names a bad value
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
cfg

# %% [markdown]
# ## The course's names
#
# `utils5` gives the course's names (`ClientApp`, `FedAvg`, `get_weights`, `backend_setup`, ...) and
# our measuring tools from the `fedbandwidth` package; see `utils5.__all__`.

# %%
from utils5 import *

# %% [markdown]
# ## The model
#
# The course uses EleutherAI's pythia-14m. `load_pythia` loads it in float32 from the local cache or
# the Hugging Face hub; offline, it warns in one line and builds the same architecture from the
# config shipped with the package, with random weights. Bandwidth depends only on the tensors'
# shapes and dtypes, never on their values, so every byte count below is exact either way.

# %%
model = load_pythia("pythia-14m")
specs = tensor_specs("pythia-14m")  # names, shapes and dtypes, computed from the config alone

state = model.state_dict()
num_parameters = sum(t.numel() for t in state.values())
model_bytes = sum(t.element_size() * t.numel() for t in state.values())  # the course's sum
assert model_bytes == sum(s.nbytes for s in specs)  # the loaded model matches the specs

print(f"tensors:      {len(state)}")
print(f"parameters:   {num_parameters:,}")
print(f"tensor bytes: {format_bytes(model_bytes)} = {to_mb(model_bytes):.2f} MB")
print(f"the course printed int({to_mib(model_bytes):.2f}) = {int(to_mib(model_bytes))} and called it MB")

# %% [markdown]
# The course's "53 MB" is neither: it is the size in MiB (53.66), truncated by `int()`. In MB the
# same bytes are 56.27 MB. Its bandwidth total then summed such truncated numbers, losing up to
# 1 MiB per message.

# %% [markdown]
# ## Where the bytes are

# %%
breakdown = tensor_breakdown(specs)
embedding_share = breakdown[breakdown.component.str.endswith("embedding")].share.sum()
print(f"the two untied embeddings (input and output) hold {embedding_share:.1%} of the bytes")
breakdown.style.format({"parameters": "{:,}", "tensor_bytes": "{:,}", "share": "{:.1%}"})

# %%
ax = plot_breakdown(breakdown)
ax.figure.savefig(out / "tensor_breakdown.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# pythia-14m is a small transformer with a large vocabulary: the input embedding and the output
# projection (`lm_head`, not tied to the input embedding) are each vocabulary × hidden size, and
# together dwarf the six transformer layers.

# %% [markdown]
# ## The client
#
# As in the course, the client trains nothing: it sends back the model it received. Unlike the
# course's `FlowerClient`, it holds no model, so it needs no `set_weights`/`get_weights` round trip.

# %%
show_source(NoOpClient)

# %% [markdown]
# The course's `client_fn` returned `FlowerClient(model)`, closing over the model defined in this
# notebook; Ray pickles such a function by value, so every call shipped the 56 MB model to the
# client actor. The lambda below refers only to `NoOpClient`, a class Ray imports by name.
# `parameters_size_mod` (called `arrays_size_mod` since Flower 1.42) logs the size of each model
# a client receives and sends; it logs inside the Ray actors, which `backend_setup` keeps quiet,
# so the strategy below measures on the server instead.

# %%
client = ClientApp(client_fn=lambda context: NoOpClient().to_client(), mods=[parameters_size_mod])

# %% [markdown]
# ## The strategy
#
# The course's strategy appended truncated MiB to a global list. This one records every message
# that carries a model into a `Ledger`: round, phase, node, direction, and two sizes, read from
# the serialized arrays without deserializing them: *payload bytes* (what Flower counts: each
# array as an `.npy` file, header included, plus its key) and *tensor bytes* (the raw numbers,
# what the course's formula counts). Each row is appended to a CSV file as it is recorded.

# %%
show_source(BandwidthTrackingFedAvg)

# %% [markdown]
# `min_fit_clients`, `min_available_clients` and `min_evaluate_clients` default to 2 in Flower, and
# the sampler waits forever for nodes that never come; `cfg.min_nodes` lowers them to the number of
# SuperNodes when there are fewer than 2. And Flower sizes each sample from the nodes connected at
# that moment; simulated SuperNodes register over the first seconds, so `expected_nodes` makes the
# strategy wait until all of them are there, and round 1 samples as many as the others.

# %%
ledger = Ledger(csv_path=out / "ledger.csv")
params = ndarrays_to_parameters(get_weights(model))


def server_fn(context: Context) -> ServerAppComponents:
    """The course's server: FedAvg that tracks bytes, no evaluation, `num_rounds` rounds."""
    strategy = BandwidthTrackingFedAvg(
        ledger,
        expected_nodes=num_supernodes,  # sample only once every SuperNode has connected
        fraction_fit=fraction_fit,
        fraction_evaluate=0.0,
        min_fit_clients=cfg.min_nodes,
        min_available_clients=cfg.min_nodes,
        min_evaluate_clients=cfg.min_nodes,
        initial_parameters=params,
    )
    return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=num_rounds))


server = ServerApp(server_fn=server_fn)

# %% [markdown]
# ## The prediction, before running
#
# `predict` computes from the tensor specs alone what the run will move: how many nodes Flower
# samples, and the exact payload of one model message on the legacy API (keys `"0"`..`"75"`).

# %%
prediction = predict(specs, num_supernodes, num_rounds, fraction_fit, api="legacy")
print(f"nodes trained per round: {prediction.train_nodes}")
print(f"one model message:       {format_bytes(prediction.message_payload_bytes)}")
print(f"predicted total:         {format_bytes(prediction.total_bytes)}")

# %% [markdown]
# ## Run the simulation
#
# The bar follows the ledger: rounds done, and in the round under way how many nodes got the model
# and how many updates came back.

# %%
from fedbandwidth.progress import round_progress

round_progress(ledger, num_rounds, prediction.train_nodes)
run_simulation(
    server_app=server,
    client_app=client,
    num_supernodes=num_supernodes,
    backend_config=backend_setup,
)

# %% [markdown]
# ## Results

# %%
print(f"total bandwidth: {format_bytes(ledger.total_bytes())} = {to_mb(ledger.total_bytes()):.2f} MB")
print(f"  down (server → clients): {format_bytes(ledger.total_bytes('down'))}")
print(f"  up   (clients → server): {format_bytes(ledger.total_bytes('up'))}")
print(f"ledger: {ledger.csv_path} ({len(ledger.transfers)} messages)")

# %%
table = ledger.per_round()
table

# %%
fig = lesson_figure(table, predicted_total=prediction.total_bytes)
fig.savefig(out / "bandwidth_per_round.png", dpi=120)

# %% [markdown]
# ## Theory vs measurement
#
# The course's formula counts raw tensor bytes, the model once down and once up per sampled
# client. Three things separate it from what Flower moves:
#
# - **`.npy` header and key name.** Each array travels as an `.npy` file (a header, padded to a
#   multiple of 64 bytes, then the raw bytes) under a key: `"0"`..`"75"` on the legacy API.
# - **Sampling.** Flower samples `max(int(N × fraction), min_nodes)` nodes, a whole number and at
#   least `min_nodes`; the formula uses `N × fraction`.
# - **Evaluation.** The course switches it off with `fraction_evaluate=0.0`. With it on, the model
#   goes down once more to every node sampled for evaluation, every round (replies carry only
#   metrics).

# %%
import pandas as pd

from fedbandwidth.payload import legacy_keys, npy_header_length

messages_per_direction = num_rounds * prediction.train_nodes
header_sizes = [npy_header_length(s.shape, s.dtype) for s in specs]  # one .npy header a tensor
header_bytes = sum(header_sizes)  # per message
key_bytes = sum(len(k) for k in legacy_keys(len(specs)))  # per message
assert prediction.message_payload_bytes == model_bytes + header_bytes + key_bytes

course_bytes = course_formula_bytes(model_bytes, num_supernodes, fraction_fit, num_rounds)
sampling_bytes = 2 * num_rounds * (prediction.train_nodes - num_supernodes * fraction_fit) * model_bytes
print(f".npy headers: {header_bytes:,} B per message ({len(specs)} tensors x "
      f"{' or '.join(map(str, sorted(set(header_sizes))))} B); key names: {key_bytes} B per message")

steps = [
    ("course formula: 2 × tensor bytes × N × fraction × rounds", course_bytes),
    ("± sampling: max(int(N × fraction), min_nodes) instead of N × fraction", sampling_bytes),
    ("+ .npy headers", 2 * messages_per_direction * header_bytes),
    ("+ key names", 2 * messages_per_direction * key_bytes),
    ("= exact prediction", prediction.total_bytes),
    ("measured (ledger)", ledger.total_bytes()),
]
assert round(sum(b for _, b in steps[:4])) == prediction.total_bytes  # the steps add up
pd.DataFrame({"bytes": [f"{b:,.0f}" for _, b in steps], "MiB": [f"{to_mib(b):,.4f}" for _, b in steps]},
             index=[name for name, _ in steps])

# %%
assert ledger.total_bytes() == prediction.total_bytes, "measured bytes differ from the prediction"
assert ledger.total_bytes(column="tensor_bytes") == 2 * messages_per_direction * model_bytes
print("measured == predicted:", format_bytes(ledger.total_bytes()))

# %% [markdown]
# The sampling rule on an example, and what evaluation would add to this run:

# %%
print(f"N=3, fraction 0.5: the formula counts {3 * 0.5} nodes, Flower samples {sampled_nodes(3, 0.5)}")

with_evaluate = predict(specs, num_supernodes, num_rounds, fraction_fit, fraction_evaluate=1.0)
extra = with_evaluate.total_bytes - prediction.total_bytes
print(f"with fraction_evaluate=1.0 this run would move {format_bytes(with_evaluate.total_bytes)}: "
      f"+{format_bytes(extra)} ({extra / prediction.total_bytes:.0%} more), "
      f"{with_evaluate.evaluate_nodes} extra model message(s) down per round")

# %% [markdown]
# The course printed its total as a sum of truncated MiB per message:

# %%
course_printout = sum(int(b / MIB) for b in ledger.to_frame().tensor_bytes)
print(f"course's printout: {course_printout} 'MB'; exact tensor bytes: "
      f"{format_bytes(ledger.total_bytes(column='tensor_bytes'))}")

# %% [markdown]
# ## The same measurement on Flower's Message API
#
# Flower is moving from `NumPyClient` and `flwr.server.strategy.FedAvg` to the Message API:
#
# - the strategy is `flwr.serverapp.strategy.FedAvg`; its hooks `configure_train` and
#   `aggregate_train` build and receive `Message`s, and `strategy.start(grid, initial_arrays,
#   num_rounds)` runs the rounds inside a `ServerApp`'s `@server.main()` function;
# - a model travels as an `ArrayRecord`: named arrays (here the state-dict names, not `"0"`..`"75"`),
#   which counts its own payload bytes with `count_bytes()`;
# - the client is a `ClientApp` whose `@app.train()` function receives a `Message` and returns the
#   reply (a train reply must carry a `MetricRecord` with `"num-examples"`).
#
# Flower's own start-up log on this API prints `ArrayRecord (... MB)` after dividing by 1024²: those
# are MiB, the same slip as the course's.
#
# The no-op client on this API, the tracking strategy, and the server:

# %%
import fedbandwidth.client_app
import fedbandwidth.simulation
from fedbandwidth.model import state_dict_arrays

show_source(fedbandwidth.client_app.make_message_app)
show_source(MessageTrackingFedAvg)
show_source(fedbandwidth.simulation.message_server_app)

# %% [markdown]
# This run uses Flower's Simulation Engine with `fedbandwidth`'s in-process backend: the ClientApps
# run in threads of this kernel, so no second Ray cluster starts (10 nodes x 3 rounds: ~6 s instead
# of ~31 s). The bytes do not depend on the backend; `SimulationConfig(..., backend="ray")` uses Ray
# as the run above did.

# %%
arrays = state_dict_arrays(model)
message_ledger = Ledger(csv_path=out / "ledger_message.csv")
round_progress(message_ledger, num_rounds, prediction.train_nodes)
fedbandwidth.simulation.simulate(
    SimulationConfig(num_supernodes, num_rounds, fraction_fit, api="message"), arrays, ledger=message_ledger
)
print(f"{len(message_ledger.transfers)} messages recorded")

# %% [markdown]
# Same messages, same tensor bytes; the payloads differ only by the key names.

# %%
message_prediction = predict(specs, num_supernodes, num_rounds, fraction_fit, api="message")
key_difference = sum(len(s.name) for s in specs) - key_bytes  # per message
api_difference = message_ledger.total_bytes() - ledger.total_bytes()

assert message_ledger.total_bytes(column="tensor_bytes") == ledger.total_bytes(column="tensor_bytes")
assert api_difference == len(message_ledger.transfers) * key_difference
assert message_ledger.total_bytes() == message_prediction.total_bytes

print(f"legacy API:  {format_bytes(ledger.total_bytes())} in {len(ledger.transfers)} messages")
print(f"Message API: {format_bytes(message_ledger.total_bytes())} in {len(message_ledger.transfers)} messages")
print(f"difference:  {api_difference:,} B = {len(message_ledger.transfers)} messages "
      f"x {key_difference:,} B of longer key names (state-dict names vs \"0\"..\"{len(specs) - 1}\")")
print(f"tensor bytes, both APIs: {format_bytes(message_ledger.total_bytes(column='tensor_bytes'))}")

# %% [markdown]
# ## Conclusion
#
# Even one round of a 14-million-parameter model moves a lot of bytes, and the total grows linearly
# with the nodes sampled and the rounds. Two levers reduce it:
#
# - **Smaller updates**: sparsification (send only the entries that changed enough), quantization
#   (fewer bits per number), or sending only some layers (the embeddings are most of this model).
# - **Fewer rounds**: more local work per round, at the risk of clients drifting apart.
#
# What they would save on this run:

# %%
non_embedding_bytes = breakdown[~breakdown.component.str.endswith("embedding")].tensor_bytes.sum()
per_round_bytes = prediction.down_bytes_per_round + prediction.up_bytes_per_round
print(f"this run: {format_bytes(ledger.total_bytes())}, {format_bytes(per_round_bytes)} per round")
print(f"- embeddings frozen, other layers sent: {format_bytes(int(non_embedding_bytes))} per model "
      f"instead of {format_bytes(model_bytes)} ({1 - non_embedding_bytes / model_bytes:.1%} less)")
print(f"- float16 instead of float32: {format_bytes(model_bytes // 2)} per model (50% less)")
print(f"- each round saved: {format_bytes(per_round_bytes)} less")

# %% [markdown]
# ## Explore: your model, your adapters, your link
#
# The same prediction works for any model: its tensors come from the real architecture built on
# PyTorch's `meta` device (no weights, no memory: a 7B model in a fraction of a second), and LoRA
# adapters from `peft` on that model; then only the adapters travel. Move a control and the table and
# the plots answer at once (computed, nothing runs). The button runs the real Flower simulation for the
# chosen values (no-op clients, in this kernel) and lays the measured bytes over the prediction.
#
# Models: the pythia family, Llama 3.1 8B and 3.2 1B, Mistral 7B, Qwen2.5 7B and 0.5B, SmolLM2 135M
# (configs shipped in `fedbandwidth/configs`). A whole 7B model is too big to simulate here, but its
# adapters are not. From a terminal, for any model: `fedbandwidth predict --model mistral-7b-v0.1
# --lora-rank 16 --supernodes 10 --rounds 3` (or a hub id, or a path to a `config.json`).

# %%
from fedbandwidth.explore import Explorer

explorer = Explorer(supernodes=num_supernodes, rounds=max(num_rounds, 3))
explorer

# %% [markdown]
# Headless (papermill) there is no one to press the button, so `explorer_run` does it once:

# %%
if explorer_run:
    measured = explorer.run()
    assert measured.total_bytes() == explorer.report["total_bytes"], "measured bytes differ from the forecast"
    print(f"explorer run: {format_bytes(measured.total_bytes())} measured, equal to the forecast")
