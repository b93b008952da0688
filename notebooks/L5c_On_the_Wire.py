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
# # Lesson 5c: On the wire
#
# The lesson measured *payload bytes*: what Flower counts for each model message
# (`ArrayRecord.count_bytes()`). Here the same measurement runs as a **Flower App**, first in
# simulation and then on Flower's **Deployment Engine** (a SuperLink and SuperNodes as separate
# processes talking over TCP on 127.0.0.1), with a byte-counting relay between each SuperNode and
# the SuperLink. So we can put next to each other:
#
# - **payload bytes**: the logical load, from the ledger the ServerApp writes;
# - **wire bytes**: what this transport actually moved, counted by the relay.
#
# Then we turn bytes into **time** on typical network links, and see how to run the same app
# across machines. Units: bytes are integers; MiB = 2²⁰ bytes; MB = 10⁶ bytes; link rates in
# bit/s, 1 Mbit/s = 10⁶ bit/s.

# %% tags=["parameters"]
num_supernodes: int = 2  # SuperNodes, in simulation and in the deployment
num_rounds: int = 1  # federated rounds
fraction_train: float = 1.0  # fraction of SuperNodes sampled for training each round
run_tls: bool = True  # also run the deployment with TLS (a throw-away CA and certificate)
links: str = "3G,4G,home broadband,datacenter"  # link profiles given to the nodes in turn
out_dir: str = "../build/L5c"  # ledgers, timelines, logs, certificates and figures go here

# %%
from dataclasses import replace
from pathlib import Path

from fedbandwidth.wire.engine import DeployConfig

cfg = DeployConfig(num_supernodes, num_rounds, fraction_train, out=Path(out_dir))  # ConfigError names a bad value
link_names = [name.strip() for name in links.split(",")]
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
cfg

# %% [markdown]
# ## The app
#
# `pyproject.toml` declares the package a Flower App: `[tool.flwr.app.components]` names the
# ServerApp (`fedbandwidth.server_app:app`) and the ClientApp (`fedbandwidth.client_app:app`, the
# lesson's echo client on the Message API), and `[tool.flwr.app.config]` the run config,
# kebab-case (`num-server-rounds`, `fraction-train`, `out-dir`, ...). The ServerApp runs
# `MessageTrackingFedAvg` and writes `ledger.csv`, plus `timeline.csv` with when each round started.

# %%
from fedbandwidth import server_app
from utils5 import show_source

show_source(server_app.run_app)

# %% [markdown]
# ## 1. Simulation: `flwr run`
#
# `simulate_app` runs `flwr run . --federation-config "num-supernodes=N"` in the project folder:
# Flower starts a local SuperLink in simulation mode (in `FLWR_HOME`, here inside `out_dir`;
# dependencies are not installed at run time, so it works offline), the run goes through Ray, and
# the SuperLink is stopped afterwards. Nothing crosses a network: payload bytes, no wire bytes.

# %%
from fedbandwidth.wire.app_simulation import app_summary, simulate_app
from fedbandwidth.wire.commands import PROJECT

simulation = app_summary(simulate_app(replace(cfg, out=out / "simulation"), app_dir=PROJECT))
print(f"{simulation['run']['status']}: {simulation['total_bytes']:,} payload bytes, "
      f"predicted {simulation['predicted_bytes']:,}")
simulation["rounds"]

# %% [markdown]
# ## 2. The same app on the Deployment Engine
#
# `deploy` starts `flower-superlink` and one `flower-supernode` per node on 127.0.0.1 (each its
# own port), puts a relay in front of the SuperLink for each SuperNode, runs the same app with
# `flwr run` and the same parameters, and stops every process afterwards (also on an error or
# Ctrl-C). The same from a terminal: `fedbandwidth deploy --supernodes 2 --rounds 1 [--tls] [--json]`.

# %%
from fedbandwidth.wire.engine import deploy
from fedbandwidth.wire.report import deploy_summary, render_deploy_text

deployment = deploy_summary(deploy(replace(cfg, out=out / "deployment")))
print(render_deploy_text(deployment))

# %%
assert deployment["total_bytes"] == simulation["total_bytes"] == deployment["predicted_bytes"]
print("same parameters, same payload bytes in simulation and deployment:",
      f"{deployment['total_bytes']:,}")

# %% [markdown]
# ## Payload vs wire, per node and direction

# %%
from fedbandwidth.wire.plots import plot_payload_vs_wire
from fedbandwidth.wire.report import wire_table

table = wire_table(deployment)
table.to_csv(out / "payload_vs_wire.csv", index=False)
table

# %%
ax = plot_payload_vs_wire(table)
ax.figure.savefig(out / "payload_vs_wire.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# What the numbers show:
#
# - **Down, wire ≈ payload, a little above** (about 1.002–1.005 here): the model goes down in full.
#   Flower 1.42 cuts each array into chunks of at most a few MiB and sends each chunk as an object
#   named by the hash of its content; the extra bytes are HTTP framing, the message tree, node
#   registration, heartbeats and fetching the app bundle (FAB) — small next to 53.7 MiB.
# - **Up, wire can be far below payload.** Objects are stored *by content*: before uploading, a
#   SuperNode asks which objects the SuperLink lacks and sends only those. An echo client returns
#   exactly the arrays it received, so whatever the SuperLink still holds is not sent again. The
#   SuperLink deletes a message's objects once every recipient confirmed receipt, so how much is
#   saved depends on timing: we have seen ratios from about 1.0 (all objects already freed) down
#   to 0.003 (all still held, e.g. while another node has not confirmed). A client that really
#   trains changes every array and uploads everything.
# - So **payload bytes are the logical load** (what FedAvg asks for, what the course's formula
#   estimates, what another transport would move), and **wire bytes are what this transport
#   moved** this time. Plan with payload; measure the wire.
#
# Wire bytes are split into rounds by time: the ServerApp writes when each round starts, the relay
# timestamps every chunk it forwards, and round r gets the bytes between its start and the next
# round's start (the last round: up to the end of the run). Bytes before the first round
# (registration, heartbeats while waiting) are reported as `other`.

# %%
{"wire_bytes": deployment["wire_bytes"], "wire_per_payload": deployment["wire_per_payload"]}

# %% [markdown]
# ## 3. With TLS
#
# `tls=True` makes a throw-away CA and a server certificate for 127.0.0.1/localhost with the
# `cryptography` package; the SuperLink serves with it, SuperNodes and `flwr` verify it with the
# CA, and no process runs with `--insecure`. The relay sees encrypted records and counts them the
# same way: TLS adds a handshake per connection and a few bytes per record.

# %%
if run_tls:
    secured = deploy_summary(deploy(replace(cfg, tls=True, out=out / "tls")))
    print(render_deploy_text(secured))
    print("wire/payload down, insecure vs TLS:", deployment["wire_per_payload"]["down"],
          secured["wire_per_payload"]["down"])

# %% [markdown]
# ## 4. Bytes to time
#
# A link has a downlink and an uplink rate in bit/s and a latency; a message of B bytes takes
# `latency + 8 × B / rate` seconds. Give each node of the deployment a link, and a FedAvg round
# lasts as long as its slowest sampled client: the **straggler**.

# %%
from fedbandwidth.ledger import Ledger
from fedbandwidth.wire.links import PROFILES, assign_links, compare_scenarios, node_times, round_times
from fedbandwidth.wire.plots import plot_round_times

for name in link_names:
    print(PROFILES[name].describe())
frame = Ledger.from_csv(out / "deployment" / "ledger.csv").to_frame()
times = node_times(frame, assign_links(frame.node_id, link_names))
times

# %%
round_times(times)

# %%
ax = plot_round_times(times, round_number=1)
ax.figure.savefig(out / "round_time.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# Codecs and sampling, for 10 clients over 3 rounds on the same mix of links (nodes get the links
# in turn; the sampled clients here are the first ones, Flower samples at random). A codec that
# halves every message halves every transfer, so it halves the round time. Sampling fewer
# clients cuts the **bytes**, but the **time** only if the slow links stay out of the sample: a
# round with one 3G client lasts as long as that client.

# %%
compare_scenarios(simulation["model"]["message_payload_bytes"], supernodes=10, rounds=3,
                  links=link_names, fractions=(1.0, 0.3),
                  ratios={"float32": 1.0, "float16": 0.5, "int8": 0.25})

# %% [markdown]
# ## 5. When one machine is not enough
#
# Nothing in the app is tied to one machine: the SuperLink listens on an address, each SuperNode
# runs where the data is, and `flwr run` only needs a connection in `$FLWR_HOME/config.toml`. For
# real machines, use a certificate whose subject alternative names include the SuperLink's address
# (our throw-away one names only 127.0.0.1 and localhost), and the same commands:

# %%
from fedbandwidth.wire.commands import remote_instructions

print(remote_instructions("superlink.example.org", port=9092))
