"""The floor under a SecAgg+ run: Flower's own SecAgg+ arithmetic alone, timed, for pythia-14m's arrays.

A SecAgg+ round makes every node do, in Flower's `secaggplus_mod` (collect masked vectors): scale its update by
its weight, clip and quantize it (stochastic rounding), draw its private mask and one mask a neighbour (numpy's
RandomState, int64, the model's size each), add them, take the modulus, serialize; and the server, in
`SecAggPlusWorkflow` (unmask): deserialize and add every masked vector, draw each survivor's private mask again
and take it off, dequantize. This script calls those same Flower functions in that order on random float32
arrays of pythia-14m's shapes (no messages, no processes, no protocol), times a node and the server, and gives
the least wall time any SecAgg+ run of N nodes x R rounds can take on this machine: R x (N x node / cores +
server), the nodes' work spread perfectly over the cores, the server's alone. Next to the plain run's measured
median (results/secagg.json, bench_secagg.py), it is the lowest ratio SecAgg+ / plain our code could reach
without replacing Flower's arithmetic. Writes results/secagg_floor.json.

    flock /work/coord/cpu.lock .venv/bin/python benchmarks/secagg_floor.py [--supernodes 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import benchlib

SECAGG_RESULTS = benchlib.RESULTS_DIR / "secagg.json"


def model_arrays(seed: int = 0) -> list[np.ndarray]:
    """Random float32 arrays of pythia-14m's shapes (values well inside the clipping range)."""
    from fedbandwidth.shapes import model_facts

    rng = np.random.default_rng(seed)
    shapes = [tuple(shape) for _, shape, *_ in model_facts("pythia-14m")["state"]]
    return [rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05) for shape in shapes]


def node_seconds(arrays: list[np.ndarray], neighbours: int, settings) -> tuple[float, list[np.ndarray]]:
    """One node's collect-masked-vectors arithmetic (Flower's functions, in secaggplus_mod's order); its result."""
    from flwr.common import ndarray_to_bytes
    from flwr.common.secure_aggregation import ndarrays_arithmetic as arith
    from flwr.common.secure_aggregation.quantization import quantize
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen

    start = time.perf_counter()
    q_ratio = settings.quantization_range  # weight 1 of max weight 1
    scaled = arith.parameters_multiply(arrays, q_ratio / settings.quantization_range)
    vector = arith.factor_combine(q_ratio, quantize(scaled, settings.clipping_range, settings.quantization_range))
    shapes = [a.shape for a in vector]
    vector = arith.parameters_addition(vector, pseudo_rand_gen(os.urandom(32), settings.modulus_range, shapes))
    for _ in range(neighbours):
        vector = arith.parameters_addition(vector, pseudo_rand_gen(os.urandom(32), settings.modulus_range, shapes))
    vector = arith.parameters_mod(vector, settings.modulus_range)
    [ndarray_to_bytes(a) for a in vector]
    return time.perf_counter() - start, vector


def server_seconds(vector: list[np.ndarray], nodes: int, settings) -> float:
    """The server's unmask arithmetic for `nodes` masked vectors (Flower's functions, in the workflow's order)."""
    from flwr.common import bytes_to_ndarray, ndarray_to_bytes
    from flwr.common.secure_aggregation import ndarrays_arithmetic as arith
    from flwr.common.secure_aggregation.quantization import dequantize
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen

    payload, shapes = [ndarray_to_bytes(a) for a in vector], [a.shape for a in vector]
    start = time.perf_counter()
    total = [bytes_to_ndarray(b) for b in payload]
    for _ in range(nodes - 1):
        total = arith.parameters_addition(total, [bytes_to_ndarray(b) for b in payload])
    total = arith.parameters_mod(total, settings.modulus_range)
    for _ in range(nodes):
        total = arith.parameters_subtraction(total, pseudo_rand_gen(os.urandom(32), settings.modulus_range, shapes))
    _, total = arith.factor_extract(arith.parameters_mod(total, settings.modulus_range))
    dequantize(total, settings.clipping_range, settings.quantization_range)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Time a node and the server; print and save the floor and its ratio to the plain run."""
    from fedbandwidth.privacy.secagg import SecAggConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernodes", type=int, default=10, help="nodes (default 10, as bench_secagg.py)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timings of each, the least kept (default 3)")
    args = parser.parse_args(argv)
    settings, arrays = SecAggConfig(supernodes=args.supernodes), model_arrays()
    timed = [node_seconds(arrays, settings.shares - 1, settings) for _ in range(args.repeat)]
    node, vector = min(seconds for seconds, _ in timed), timed[0][1]
    server = min(server_seconds(vector, args.supernodes, settings) for _ in range(args.repeat))
    cores = os.cpu_count() or 1
    floor = args.rounds * (args.supernodes * node / cores + server)
    plain = json.loads(SECAGG_RESULTS.read_text())["median_seconds"]["plain"] if SECAGG_RESULTS.exists() else None
    print(f"a node's SecAgg+ arithmetic {node:.3f} s, the server's unmask {server:.3f} s ({args.supernodes} nodes)")
    print(f"floor of {args.supernodes} nodes x {args.rounds} rounds on {cores} cores: {floor:.1f} s")
    result = {"machine": benchlib.machine_facts(), "supernodes": args.supernodes, "rounds": args.rounds}
    result |= {"node_seconds": node, "server_seconds": server, "floor_seconds": floor, "cores": cores}
    if plain:
        result |= {"plain_median_seconds": plain, "floor_ratio_to_plain": (plain + floor) / plain}
        print(f"plain run {plain:.2f} s (results/secagg.json): SecAgg+ >= {(plain + floor) / plain:.1f}x plain")
    print("wrote", benchlib.write_json("secagg_floor.json", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
