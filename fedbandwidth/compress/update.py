"""One client's update, examined: its bytes under each codec and how low-rank its matrices are.

L5b makes a real update (a client's first round of the study's scratch regime) and encodes it.
"""

from __future__ import annotations

import numpy as np


def codec_table(codecs: list[str], weights: dict, reference: dict):
    """Payload bytes, ratio to float32 and max abs error of one uplink message, for each codec."""
    import pandas as pd

    from .chain import parse_codec
    from .encoding import decode, encode, payload_bytes

    shapes = {k: v.shape for k, v in weights.items()}
    plain = payload_bytes(weights)
    rows = []
    for text in codecs:
        codec = parse_codec(text)
        sent = encode(codec, weights, reference).arrays
        back = decode(codec, sent, shapes, reference)
        error = max(float(np.abs(back[k] - weights[k]).max()) for k in weights)
        rows.append(
            {
                "codec": text,
                "payload_bytes": payload_bytes(sent),
                "ratio": plain / payload_bytes(sent),
                "max_abs_error": error,
            }
        )
    return pd.DataFrame(rows)


def client_update(local_steps: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Client 0's first-round update in the scratch regime (PRESETS["scratch"]): its weights after `local_steps`
    (the preset's if None) minus the initial ones."""
    from . import task
    from .training import PRESETS, TrainConfig

    preset = PRESETS["scratch"]
    cfg = TrainConfig(**{**preset, "local_steps": local_steps or preset["local_steps"]}, seed=seed)
    model = task.build_model(cfg.seed)
    initial = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    data = task.partition(0, cfg.supernodes, cfg.partitioning, cfg.seq_len, cfg.part)
    task.train_steps(model, task.sample_batches(data, cfg.local_steps, cfg.batch_size, (cfg.seed, 0, 1)), cfg.lr)
    return {k: v.detach().numpy() - initial[k] for k, v in model.state_dict().items()}


def energy_captured(matrix: np.ndarray) -> np.ndarray:
    """Share of the squared Frobenius norm in the top 1, 2, ... singular values (cumulative, ends at 1)."""
    values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False) ** 2
    return np.cumsum(values) / values.sum()
