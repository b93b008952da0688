"""The course facade for lesson 5 (Bandwidth): ``from utils5 import *`` gives the course's names.

The course notebook used: get_weights, set_weights, log, INFO, backend_setup, the Flower names,
AutoModelForCausalLM and ``parameters_size_mod`` (renamed ``arrays_size_mod`` in Flower 1.42,
kept here under its old name). Our additions measure exactly, via the ``fedbandwidth`` package.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from logging import INFO, WARNING

import numpy as np
import torch
from flwr.client import Client, NumPyClient
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import arrays_size_mod
from flwr.common import Context, log, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation
from transformers import AutoModelForCausalLM

from fedbandwidth.checks import ConfigError
from fedbandwidth.client_app import NoOpClient
from fedbandwidth.ledger import Ledger, per_round
from fedbandwidth.logs import setup_logging
from fedbandwidth.model import load_pythia, state_dict_arrays, tensor_specs
from fedbandwidth.plots import lesson_figure, plot_breakdown, plot_cumulative, plot_round_bytes
from fedbandwidth.simulation import BACKEND_CONFIG, SimulationConfig, check_lesson_parameters, simulate
from fedbandwidth.theory import course_formula_bytes, predict, sampled_nodes, tensor_breakdown
from fedbandwidth.tracking import BandwidthTrackingFedAvg, MessageTrackingFedAvg
from fedbandwidth.units import MB, MIB, format_bytes, to_mb, to_mib

parameters_size_mod = arrays_size_mod  # the course's name; Flower 1.42 calls it arrays_size_mod
backend_setup = BACKEND_CONFIG  # Ray: 1 CPU per client actor, quiet logs


def get_weights(net: torch.nn.Module) -> list[np.ndarray]:
    """The model's state dict as a list of numpy arrays (the course's helper)."""
    return [val.cpu().numpy() for _, val in net.state_dict().items()]


def set_weights(net: torch.nn.Module, parameters: list[np.ndarray]) -> None:
    """Load a list of numpy arrays into the model's state dict (the course's helper)."""
    params_dict = zip(net.state_dict().keys(), parameters, strict=True)
    state_dict = OrderedDict({k: torch.tensor(v) for k, v in params_dict})
    net.load_state_dict(state_dict, strict=True)


def show_source(obj) -> None:
    """Print the source code of a class or function, so a notebook shows what it runs."""
    print(inspect.getsource(obj))


setup_logging(INFO)

__all__ = [
    # the course's names
    "AutoModelForCausalLM",
    "Client",
    "ClientApp",
    "Context",
    "FedAvg",
    "INFO",
    "NumPyClient",
    "ServerApp",
    "ServerAppComponents",
    "ServerConfig",
    "WARNING",
    "backend_setup",
    "get_weights",
    "log",
    "ndarrays_to_parameters",
    "parameters_size_mod",
    "parameters_to_ndarrays",
    "run_simulation",
    "set_weights",
    # Flower's current name for the size mod
    "arrays_size_mod",
    # fedbandwidth: exact measurement, prediction, plots
    "BandwidthTrackingFedAvg",
    "ConfigError",
    "Ledger",
    "MB",
    "MIB",
    "MessageTrackingFedAvg",
    "NoOpClient",
    "SimulationConfig",
    "check_lesson_parameters",
    "course_formula_bytes",
    "format_bytes",
    "lesson_figure",
    "load_pythia",
    "per_round",
    "plot_breakdown",
    "plot_cumulative",
    "plot_round_bytes",
    "predict",
    "sampled_nodes",
    "show_source",
    "simulate",
    "state_dict_arrays",
    "tensor_breakdown",
    "tensor_specs",
    "to_mb",
    "to_mib",
]
