"""SecAgg+'s bytes per stage, from the nodes, shares, parameters and modulus, before anything runs.

Bytes are the Grid meter's: each record as Flower counts it (`count_bytes()`: 8 B a number, the length of a
str or bytes, + keys; arrays as .npy + keys). Every SecAgg+ value has a fixed length: public keys are PEM
SubjectPublicKeyInfo of SECP384R1 (215 B), private keys PEM PKCS8 (306 B), Shamir shares 4 B + 16 B per
16-byte block of the padded secret, Fernet tokens base64 of a fixed layout. The threshold changes no byte
(a share is as long whatever the threshold). One thing varies between runs: in 'share keys' each public key
travels under its node id written in decimal, and Flower's node ids are random 64-bit numbers (mostly 19 or
20 digits). Given the run's ids, the formula is exact; without them it takes 20 digits each, the most.
SecAgg+ dequantizes the sum in float64: sent as it is, the model goes down as float64 from round 2 on.
With dropouts it assumes no two dropped nodes are neighbours (then each has k-1 surviving neighbours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from flwr.common.secure_aggregation.secaggplus_constants import Key, Stage

from ..model import TensorSpec
from ..names import DOWN, UP
from ..payload import legacy_keys, npy_header_length, predicted_payload_bytes
from .packing import DIMS_KEY, DTYPE_KEY, MASKED_KEY, NDIMS_KEY, WIDTH_KEY, packed_width

STAGES = (Stage.SETUP, Stage.SHARE_KEYS, Stage.COLLECT_MASKED_VECTORS, Stage.UNMASK)  # one round, in order

PUBLIC_KEY_BYTES = 215  # PEM of a SECP384R1 public key (SubjectPublicKeyInfo)
PRIVATE_KEY_BYTES = 306  # PEM of a SECP384R1 private key (PKCS8, unencrypted): sk1, shared if its node dies
SEED_BYTES = 32  # each node's mask seed (os.urandom(32))
NUMBER_BYTES = 8  # Flower counts every int or float of a ConfigRecord as 8 B
MAX_ID_DIGITS = 20  # a 64-bit node id in decimal: at most 20 digits
STATUS_BYTES = len("code") + NUMBER_BYTES + len("message") + len("Success")  # a legacy FitRes status record
NUM_EXAMPLES_BYTES = len("num_examples") + NUMBER_BYTES  # a legacy FitRes's num_examples (MetricRecord)
MASKED_DTYPE = "int64"  # what secaggplus_mod's masked arrays are


def share_bytes(secret_bytes: int) -> int:
    """A Shamir share of a secret: 4 B index + 16 B per block of the secret padded (PKCS7) to 16 B."""
    return 4 + 16 * (secret_bytes // 16 + 1)


def fernet_bytes(plaintext_bytes: int) -> int:
    """A Fernet token: base64 of version 1 + time 8 + IV 16 + AES-CBC blocks (PKCS7) + HMAC 32."""
    raw = 1 + 8 + 16 + 16 * (plaintext_bytes // 16 + 1) + 32
    return 4 * math.ceil(raw / 3)


# One encrypted key share: src and dst ids (8 B each), the seed share's length (4 B), the seed's and sk1's shares.
CIPHERTEXT_BYTES = fernet_bytes(8 + 8 + 4 + share_bytes(SEED_BYTES) + share_bytes(PRIVATE_KEY_BYTES))


def entry(key: str, value_bytes: int) -> int:
    """One ConfigRecord entry as Flower counts it: the key's length plus the value's bytes."""
    return len(key) + value_bytes


def neighbours(nodes: int, shares: int) -> int:
    """Nodes each node shares with, itself included: Flower makes the shares odd, then a ring of that width."""
    effective = shares + 1 if shares != nodes and shares % 2 == 0 else shares
    return min(nodes, 2 * (effective // 2) + 1)


@dataclass(frozen=True)
class SecAggPlan:
    """What SecAgg+'s bytes depend on."""

    nodes: int  # nodes in the round
    shares: int  # --secagg-shares
    specs: tuple[TensorSpec, ...]  # the model's tensors (they go down as float .npy, up masked)
    modulus_range: int = 2**32  # masked values are below it
    pack: bool = False  # the masked vector packed (packing.py) instead of int64
    dropped: int = 0  # nodes that die after sharing keys (assumed not neighbours of each other)
    id_digits: int | None = None  # total decimal digits of the nodes' ids; None: MAX_ID_DIGITS each

    @property
    def k(self) -> int:
        """Neighbours of each node, itself included."""
        return neighbours(self.nodes, self.shares)


def setup_bytes(plan: SecAggPlan) -> tuple[int, int]:
    """'setup': the protocol's parameters down (one str, seven numbers), two public keys up, per message."""
    numbers = (Key.SAMPLE_NUMBER, Key.SHARE_NUMBER, Key.THRESHOLD, Key.CLIPPING_RANGE, Key.TARGET_RANGE)
    numbers += (Key.MOD_RANGE, Key.MAX_WEIGHT)
    down = entry(Key.STAGE, len(Stage.SETUP)) + sum(entry(k, NUMBER_BYTES) for k in numbers)
    up = entry(Key.PUBLIC_KEY_1, PUBLIC_KEY_BYTES) + entry(Key.PUBLIC_KEY_2, PUBLIC_KEY_BYTES)
    return down, up


def masked_bytes(plan: SecAggPlan) -> int:
    """The masked vector's entry: the weight factor (one int) and every tensor, as int64 .npy or packed."""
    shapes = [(1,), *(s.shape for s in plan.specs)]
    if not plan.pack:
        arrays = sum(npy_header_length(sh, MASKED_DTYPE) + 8 * math.prod(sh) for sh in shapes)
        return entry(MASKED_KEY, arrays)
    values = sum(math.prod(sh) for sh in shapes)
    lists = entry(NDIMS_KEY, NUMBER_BYTES * len(shapes)) + entry(DIMS_KEY, NUMBER_BYTES * sum(len(sh) for sh in shapes))
    scalars = entry(WIDTH_KEY, NUMBER_BYTES) + entry(DTYPE_KEY, len(np.dtype(MASKED_DTYPE).str))
    return entry(MASKED_KEY, packed_width(plan.modulus_range) * values) + scalars + lists


def upload_bytes(plan: SecAggPlan) -> int:
    """One 'collect masked vectors' reply: the largest message of SecAgg+, one object Flower does not chunk."""
    return STATUS_BYTES + NUM_EXAMPLES_BYTES + masked_bytes(plan)


def stage_bytes(plan: SecAggPlan) -> list[dict]:
    """Messages and bytes of one round, per (stage, direction): what the Grid meter will record."""
    n, k, d = plan.nodes, plan.k, plan.dropped
    digits = plan.id_digits if plan.id_digits is not None else MAX_ID_DIGITS * n
    setup_down, setup_up = setup_bytes(plan)
    keys_down = n * (entry(Key.STAGE, len(Stage.SHARE_KEYS)) + k * 2 * PUBLIC_KEY_BYTES) + k * digits
    keys_up = n * (len(Key.DESTINATION_LIST) + len(Key.CIPHERTEXT_LIST) + (k - 1) * (NUMBER_BYTES + CIPHERTEXT_BYTES))
    model = predicted_payload_bytes(plan.specs, legacy_keys(len(plan.specs)))
    forwarded = entry(Key.CIPHERTEXT_LIST, 0) + entry(Key.SOURCE_LIST, 0) + (k - 1) * (CIPHERTEXT_BYTES + NUMBER_BYTES)
    collect_down = n * (model + entry(Key.STAGE, len(Stage.COLLECT_MASKED_VECTORS)) + forwarded)
    collect_up = (n - d) * upload_bytes(plan)  # the dead nodes' error replies: 0 B
    alive = n - d
    unmask_lists = entry(Key.STAGE, len(Stage.UNMASK)) + len(Key.ACTIVE_NODE_ID_LIST) + len(Key.DEAD_NODE_ID_LIST)
    unmask_down = alive * (unmask_lists + k * NUMBER_BYTES)
    seeds, keys = alive * k - d * (k - 1), d * (k - 1)  # shares of live nodes' seeds, of the dead nodes' sk1
    unmask_up = alive * (len(Key.NODE_ID_LIST) + len(Key.SHARE_LIST) + k * NUMBER_BYTES)
    unmask_up += seeds * share_bytes(SEED_BYTES) + keys * share_bytes(PRIVATE_KEY_BYTES)
    rows = [
        (Stage.SETUP, n, setup_down * n, n, setup_up * n),
        (Stage.SHARE_KEYS, n, keys_down, n, keys_up),
        (Stage.COLLECT_MASKED_VECTORS, n, collect_down, n, collect_up),
        (Stage.UNMASK, alive, unmask_down, alive, unmask_up),
    ]
    return [
        {"stage": stage, "direction": direction, "messages": messages, "bytes": size}
        for stage, down_n, down, up_n, up in rows
        for direction, messages, size in ((DOWN, down_n, down), (UP, up_n, up))
    ]
