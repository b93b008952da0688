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
# processes talking over TCP), with a byte-counting relay between each SuperNode and the SuperLink.
# With `links`, each SuperNode runs on an **emulated host** of its own, behind a link shaped like a
# 4G or a home connection. So we can put next to each other:
#
# - **payload bytes**: the logical load, from the ledger the ServerApp writes;
# - **wire bytes**: what this transport actually moved, counted by the relay and by the kernel;
# - **time**: how long each model message really took on its link, next to what a model predicts.
#
# Units: bytes are integers; MiB = 2²⁰ bytes; MB = 10⁶ bytes; link rates in bit/s,
# 1 Mbit/s = 10⁶ bit/s.

# %% tags=["parameters"]
num_supernodes: int = 2  # SuperNodes, in simulation and in the deployment
num_rounds: int = 1  # federated rounds
fraction_train: float = 1.0  # fraction of SuperNodes sampled for training each round
model: str = "pythia-14m"  # architecture whose exact arrays are sent ("tiny-gptneox": 1.85 MB, for slow links)
links: str = "Wi-Fi,5G"  # emulated links given to the nodes in turn (needs root); "" = all on 127.0.0.1
run_tls: bool = True  # also run the deployment with TLS (a throw-away CA and certificate)
run_dedup: bool = True  # also run the echo client, to see Flower skip objects the SuperLink still holds
out_dir: str = "../build/L5c"  # ledgers, timelines, logs, certificates and figures go here
study_csv: str = "../benchmarks/results/compression_study.csv"  # the committed compression study (lesson 5b)

# %%
from dataclasses import replace
from pathlib import Path

from fedbandwidth.wire.engine import DeployConfig
from fedbandwidth.wire.links import parse_links
from fedbandwidth.wire.network import emulation_problem

problem = emulation_problem() if links else None
if problem:
    print(f"No emulated network here ({problem}); the deployment runs on 127.0.0.1, unshaped.")
link_profiles = parse_links(links) if links and not problem else ()
cfg = DeployConfig(num_supernodes, num_rounds, fraction_train, model=model, out=Path(out_dir), links=link_profiles)
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
cfg

# %% [markdown]
# ## The app
#
# `pyproject.toml` declares the package a Flower App: `[tool.flwr.app.components]` names the
# ServerApp (`fedbandwidth.server_app:app`) and the ClientApp (`fedbandwidth.client_app:app`, the
# lesson's no-op client on the Message API), and `[tool.flwr.app.config]` the run config,
# kebab-case (`num-server-rounds`, `fraction-train`, `client`, `out-dir`, ...). The ServerApp runs
# `MessageTrackingFedAvg` and writes `ledger.csv`, plus `timeline.csv` with when each round started
# and which sampled node never replied.

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
# ## 2. The same app on the Deployment Engine, on emulated hosts
#
# `deploy` starts `flower-superlink` and one `flower-supernode` per node, puts a relay in front of
# the SuperLink for each SuperNode, runs the same app with `flwr run` and the same parameters, and
# stops everything afterwards (also on an error or Ctrl-C). With links, each SuperNode runs in its
# own **Linux network namespace** (a host of its own), joined to the SuperLink's side by a **veth
# pair** (a virtual cable). The kernel shapes the **rate**: a token bucket filter (`tc ... tbf`) on
# each end of the cable, the SuperLink's end for down, the node's end for up. This kernel has no
# `netem`, so the **latency** is emulated in user space: the relay holds every chunk for the link's
# one-way latency, both ways. The same from a terminal (as root):
# `fedbandwidth deploy --supernodes 2 --links "4G,home broadband" [--tls] [--json]`.
#
# The client here *perturbs* every array it returns (`client = "perturb"`), as training would: so
# every byte really goes up. Section 5 shows why that matters.

# %%
from fedbandwidth.wire.engine import deploy
from fedbandwidth.wire.report import deploy_summary
from fedbandwidth.wire.report_text import render_deploy_text

deployment = deploy_summary(deploy(replace(cfg, out=out / "deployment")))
print(render_deploy_text(deployment))

# %%
assert deployment["total_bytes"] == simulation["total_bytes"] == deployment["predicted_bytes"]
print("same parameters, same payload bytes in simulation and deployment:", f"{deployment['total_bytes']:,}")

# %% [markdown]
# ## Payload vs wire, per node and direction

# %%
from fedbandwidth.wire.plots import plot_payload_vs_wire
from fedbandwidth.wire.report_text import wire_table

table = wire_table(deployment)
table.to_csv(out / "payload_vs_wire.csv", index=False)
table

# %%
ax = plot_payload_vs_wire(table)
ax.figure.savefig(out / "payload_vs_wire.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# **Wire ≈ payload, a little above, both ways**: Flower 1.42 cuts each array into chunks of at most
# 5 MiB and moves every chunk, every array, the record and the message as an object of its own,
# one HTTP request each; the extra bytes are HTTP headers and protobuf framing around each object,
# the message's object tree, node registration, heartbeats and, with a node's first message, the
# app itself (the FAB, ~180 kB). So **payload bytes are the logical load** (what FedAvg asks for,
# what the course's formula estimates), and **wire bytes are what this transport moved**.
#
# Wire bytes are split into rounds by time: the ServerApp writes when each round starts, the relay
# timestamps every chunk it forwards, and round r gets the bytes between its start and the next
# round's start. Bytes before the first round (registration, heartbeats while waiting) are `other`.
#
# **A second, independent count**: the kernel counts every frame on each emulated cable and its
# bytes, headers included. Take 66 bytes of Ethernet, IP and TCP headers off each frame and what is
# left is the relay's count: the two agree to a few bytes in millions (`unexplained`).

# %%
import pandas as pd

kernel = pd.DataFrame(deployment["kernel"])
kernel.to_csv(out / "kernel_vs_relay.csv", index=False)
kernel

# %% [markdown]
# ## Three meters: the ledger, Flower's own counters, the relays
#
# The SuperLink counts each run's traffic too (`flwr ls --run-id N`: outbound to the SuperNodes, inbound from
# them). It sits between our two meters: the ledger counts the arrays (`count_bytes()`); Flower adds each
# object's header (`object_framing`), the object tree a message lists (`object_trees`) and the message's own
# objects and protobuf fields (`flower_rest`); the relays add what Flower does not count (`relay_rest`: HTTP,
# heartbeats, polls, the app each node downloads once).

# %%
pd.DataFrame(deployment["meters"]).set_index("direction")

# %% [markdown]
# ## 3. Time: measured next to predicted
#
# For each model message, the relay knows when its first byte left the sender and when its last
# byte reached the receiver. The course's model of a link says a message of B bytes takes
# `latency + 8 × B / rate` (`formula_seconds`). Measured, it takes longer, and not because of TCP
# slow start (the emulated cable's own round trip is sub-millisecond) or HTTP/2 windows (Flower
# 1.42's Fleet API is protobuf over HTTP/1.1). Two things the formula leaves out:
#
# - **framing**: every 1448 bytes of payload travel with 66 bytes of headers: +4.6%;
# - **request turns**: a message moves **object by object**, two requests at a time, and every
#   object costs a round trip plus the time to handle one request. pythia-14m is 164 objects,
#   128 of them under 10 kB: about 82 round trips per message. On 4G (50 ms) that is seconds. On a
#   link faster than this machine's CPU (Wi-Fi's 3 ms) the round trip hides: while one request waits
#   for its answer, the other is being handled.
#
# - **nodes at once**: one SuperLink process answers every node's requests, so with two nodes moving a
#   model at the same time each request waits a little longer (`nodes_at_once`), for the share of a
#   request turn the SuperLink spends handling the other node's requests.
#
# `predicted_seconds` replays that schedule (`fedbandwidth/wire/transfer.py`), with this machine's CPU terms
# when `fedbandwidth calibrate` has measured them (`calibration` in the report). Measured on this
# repository's machine (2 cores; `benchmarks/wire_timing.py`, 2 rounds, figures in the README's "On the
# wire"), after calibrating, it came within 7.1% of every message on 3G (with the toy model), 4G, 5G and home
# broadband, one node and two, insecure and with TLS, in sweeps 22 hours apart, where the formula is off by
# up to a factor of 3; on a slower, shared host two days later, 3G, 4G, 5G and home broadband alone stayed
# within 10% in sweeps four hours apart, two nodes on 5G and home broadband did not (up to 19.5% off). Not on
# Wi-Fi (up to +56%) nor on `datacenter` (up to +89%): there this machine's 2 cores, not the links, set the
# pace, and the same message took nearly twice as long in one run as in another a few minutes later. Look at
# the `error` column: your machine is not ours.

# %%
timing = pd.DataFrame(deployment["timing"])
timing.to_csv(out / "timing.csv", index=False)
timing["error"] = (timing.measured_seconds / timing.predicted_seconds - 1).round(3)  # NaN without links
timing[["round", "node", "link", "direction", "bytes", "formula_seconds", "predicted_seconds", "measured_seconds",
        "error"]]

# %%
from fedbandwidth.wire.plots import plot_timeline

ax = plot_timeline(timing)
ax.figure.savefig(out / "timeline.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# A synchronous FedAvg round lasts as long as its slowest sampled client (the **straggler**): in the
# timeline, the next round starts only after the last bar of the previous one.

# %% [markdown]
# ## 4. With TLS
#
# `tls=True` makes a throw-away CA and a server certificate for 127.0.0.1, localhost and the
# addresses the emulated hosts reach the SuperLink at, with the `cryptography` package; the
# SuperLink serves with it, SuperNodes and `flwr` verify it with the CA, and no process runs with
# `--insecure`. The relay sees encrypted records and counts them the same way: TLS adds a handshake
# per connection and a few bytes per 16 kB record.

# %%
if run_tls:
    secured = deploy_summary(deploy(replace(cfg, tls=True, out=out / "tls")))
    print(render_deploy_text(secured))
    print("wire/payload down, insecure vs TLS:", deployment["wire_per_payload"]["down"],
          secured["wire_per_payload"]["down"])

# %% [markdown]
# ## 5. An experiment: uploads Flower skips
#
# The lesson's client is an **echo**: it returns exactly the arrays it received. Before uploading, a
# SuperNode asks the SuperLink which of the reply's objects it lacks, and objects are named by the
# hash of their content, so an echoed array the SuperLink **still holds** is not sent again. The
# SuperLink frees a message's objects once every recipient has confirmed receipt, so how much is
# skipped depends on timing: with several nodes, a node that echoes while another has not yet
# confirmed its download uploads almost nothing. Conditions here: the same nodes, model and rounds as
# section 2, no TLS, `client="echo"`, and all nodes on 127.0.0.1 without shaping (quick; on the emulated
# links some uploads are skipped too, others not). Next to it, section 2's perturbing client on its links.
# The upload's wire bytes can fall far below its payload, differently from run to run and node to node:
# that is why the deployment perturbs by default.

# %%
if run_dedup:
    echoed = deploy_summary(deploy(replace(cfg, client="echo", links=(), out=out / "echo")))
    print(pd.DataFrame([{"node": n["partition"], "client": client, "wire/payload up": n["wire_per_payload"]["up"]}
                        for client, report in (("perturb", deployment), ("echo", echoed))
                        for n in report["nodes"]]))

# %% [markdown]
# ## 6. Planning with the formula
#
# To compare options before running anything, the formula is enough to see the shape of things:
# a codec that halves every message halves every transfer; sampling fewer clients cuts the
# **bytes**, but the **time** only if the slow links stay out of the sample. For 10 clients over
# 3 rounds on the same mix of links (nodes get the links in turn; the sampled clients here are the
# first ones, Flower samples at random):

# %%
from fedbandwidth.wire.links import PROFILES, compare_scenarios

planned = link_profiles or (PROFILES["4G"], PROFILES["home broadband"])
for link in planned:
    print(link.describe())
compare_scenarios(simulation["model"]["message_payload_bytes"], supernodes=10, rounds=3, links=planned,
                  fractions=(1.0, 0.3), ratios={"float32": 1.0, "float16": 0.5, "int8": 0.25})

# %% [markdown]
# ## 7. When one machine is not enough
#
# Nothing in the app is tied to one machine: the SuperLink listens on an address, each SuperNode
# runs where the data is, and `flwr run` only needs a connection in `$FLWR_HOME/config.toml`. For
# real machines, use a certificate whose subject alternative names include the SuperLink's address
# (our throw-away one names only this machine's), and the same commands:

# %%
from fedbandwidth.wire.commands import remote_instructions

print(remote_instructions("superlink.example.org", port=9092))

# %% [markdown]
# ## 8. Which lever finishes first
#
# Bytes are not time. Lesson 5b's study counts, for each lever, how many rounds it needed to reach the
# target loss L* (1.01 x the tuned float32 reference's), how many bytes a sampled client moved a round each way,
# and how long a client computed, encoded and decoded a round (on the study's 2-core machine). On a fleet each of
# those rounds lasts until the K-th sampled client has replied, each on its own link, plus its pickup and its
# ClientApp's turnaround (`fedbandwidth/wire/lever_time.py`, the Monte Carlo of `fedbandwidth plan`). Three fleets:
# a datacenter, home broadband, and a mobile mix (4G 50%, 5G 30%, 3G 20%). A setting is listed once **every** seed
# of it reached L* (the study is still running: the settings it has finished so far). On a fast link a codec's
# CPU seconds can cost more than the bytes it saves; on a slow one bytes rule. Read the datacenter column with
# care: a client's compute seconds were measured on a shared machine whose load moved them 1.4-2.8 s a round
# between runs of the same steps, more than any codec's own cost there.

# %%
import matplotlib.pyplot as plt

from fedbandwidth.explore.levers import study_runs
from fedbandwidth.wire.calibration import load as load_calibration
from fedbandwidth.wire.lever_time import lever_table
from fedbandwidth.wire.plots import plot_lever_times

calibration = load_calibration()
levers = pd.DataFrame(lever_table(study_runs(Path(study_csv)), calibration))
print(f"calibration: {calibration.source}")
if levers.empty:
    print("no study setting has reached L* at every seed yet (the study is running in chunks)")
else:
    print(levers.pivot(index=["regime", "setting"], columns="fleet", values="seconds_mean").round(0))
fig, ax = plt.subplots(figsize=(7, 1.2 + 0.5 * (levers.setting.nunique() if len(levers) else 4)))
plot_lever_times(levers.to_dict("records"), "scratch", ax=ax)
fig.savefig(out / "lever_times.png", dpi=120, bbox_inches="tight")
