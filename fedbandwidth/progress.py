"""What a learner sees while a run goes on: a bar over rounds that says where the round's messages are.

In JupyterLab the bar is a widget (tqdm picks it in a notebook), on a terminal a text bar; it follows a
Ledger, so it moves as the strategy records messages: the model sent to the round's nodes, their updates.
"""

from __future__ import annotations

from collections import Counter

from .names import DOWN, TRAIN, UP


def round_progress(ledger, rounds: int, nodes: int, disable: bool | None = False):
    """A tqdm bar over `rounds` that names how many of the round's `nodes` got the model and replied."""
    from tqdm.auto import tqdm

    bar = tqdm(total=rounds, unit="round", desc="rounds", disable=disable)
    seen: Counter = Counter()

    def on_transfer(transfer) -> None:
        if transfer.phase == TRAIN:
            seen[transfer.round, transfer.direction] += 1
            sent, back = seen[transfer.round, DOWN], seen[transfer.round, UP]
            bar.set_postfix_str(f"round {transfer.round}: model sent to {sent}/{nodes} nodes, {back} updates back")

    def on_round(_round: int) -> None:
        bar.update(1)
        if bar.n >= rounds:
            bar.close()

    ledger.transfer_listeners.append(on_transfer)
    ledger.round_listeners.append(on_round)
    return bar
