"""An explorer for JupyterLab: move a control and the exact forecast answers; press a button to measure it.

Controls set a run (SuperNodes, rounds, fraction, model, what travels, dtype, link); the table and the two
plots are recomputed from the model's shapes (no run) on every change. The button runs the real Flower
simulation for the same values, with no-op clients, and lays the measured bytes over the forecast.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

import ipywidgets as widgets

from ..adapters import LoraSpec
from ..architecture import DTYPES
from ..catalog import shipped_models
from ..checks import ConfigError
from ..forecast import ForecastConfig, forecast, message_arrays, predicted_rounds
from ..ledger import Ledger
from ..names import APIS
from ..progress import round_progress
from ..shapes import default_targets
from ..units import format_bytes
from ..wire.links import PROFILES, forecast_links
from .figure import forecast_figure, png_bytes

SENDS = [("whole model", 0), ("LoRA r=4", 4), ("LoRA r=8", 8), ("LoRA r=16", 16), ("LoRA r=64", 64)]
MAX_SIMULATED_BYTES = 2 * 2**30  # the button refuses messages above this: every node holds a copy


@dataclass(frozen=True)
class Choice:
    """What the controls say."""

    model: str  # shipped model name
    supernodes: int  # SuperNodes
    rounds: int  # federated rounds
    fraction: float  # fraction sampled for training
    lora_rank: int  # LoRA rank; 0 = the whole model travels
    dtype: str  # dtype the arrays travel in
    api: str  # "legacy" or "message"
    link: str  # link profile name (wire.links.PROFILES)

    def config(self) -> ForecastConfig:
        """The ForecastConfig of this choice (LoRA on the architecture's usual attention modules)."""
        lora = LoraSpec(self.lora_rank, default_targets(self.model)) if self.lora_rank else None
        return ForecastConfig(
            self.model, self.supernodes, self.rounds, self.fraction, lora=lora, dtype=self.dtype, api=self.api
        )


@contextmanager
def quiet_flower():
    """Flower's INFO lines off while the button's run goes on (the bar and the plot say enough)."""
    flower = logging.getLogger("flwr")
    level = flower.level
    flower.setLevel(logging.ERROR)
    try:
        yield
    finally:
        flower.setLevel(level)


def slider(kind, value, low, high, label: str, **kwargs):
    """A labelled slider with a CSS class 'fbw-<label>' (tests find it by that)."""
    control = kind(value=value, min=low, max=high, description=label, continuous_update=False, **kwargs)
    return control.add_class(f"fbw-{label}")


def dropdown(options, value, label: str):
    """A labelled dropdown with a CSS class 'fbw-<label>'."""
    return widgets.Dropdown(options=options, value=value, description=label).add_class(f"fbw-{label}")


def table_html(report: dict, link: str) -> str:
    """The forecast as an HTML table: one message, nodes, per round, total, time on the link."""
    seconds = report["links"][link]
    rows = [
        (
            "one train message",
            f"{format_bytes(report['message']['payload_bytes'])}, "
            f"{report['message']['arrays']} arrays, {report['message']['chunks']} chunks",
        ),
        ("nodes sampled a round", f"{report['train_nodes']}"),
        ("per round", format_bytes(report["down_bytes_per_round"] + report["up_bytes_per_round"])),
        ("total", f"<b class='fbw-total'>{format_bytes(report['total_bytes'])}</b>"),
        (f"time on {link}", f"{seconds['round_seconds']:,.1f} s a round, {seconds['total_seconds']:,.1f} s in all"),
    ]
    body = "".join(f"<tr><td>{k}</td><td style='text-align:left'>{v}</td></tr>" for k, v in rows)
    return f"<table class='fbw-table'>{body}</table>"


class Explorer:
    """ipywidgets controls -> the exact forecast (table, two plots); a button measures it with Flower."""

    def __init__(
        self, model: str = "pythia-14m", supernodes: int = 2, rounds: int = 3, fraction: float = 1.0, link: str = "4G"
    ) -> None:
        self.controls = {
            "supernodes": slider(widgets.IntSlider, supernodes, 1, 100, "supernodes"),
            "rounds": slider(widgets.IntSlider, rounds, 1, 20, "rounds"),
            "fraction": slider(widgets.FloatSlider, fraction, 0.05, 1.0, "fraction", step=0.05),
            "model": dropdown(shipped_models(), model, "model"),
            "lora_rank": dropdown(SENDS, 0, "sends"),
            "dtype": dropdown(DTYPES, "float32", "dtype"),
            "api": dropdown(APIS, "legacy", "api"),
            "link": dropdown(list(PROFILES), link, "link"),
        }
        self.table = widgets.HTML().add_class("fbw-forecast")
        self.plot = widgets.Image(format="png").add_class("fbw-plot")
        self.status = widgets.HTML().add_class("fbw-status")
        self.output = widgets.Output()
        self.button = widgets.Button(description="Run the simulation", button_style="primary").add_class("fbw-run")
        self.button.on_click(lambda _: self.run())
        for control in self.controls.values():
            control.observe(lambda _: self.update(), names="value")
        self.report, self.measured, self.updates = None, None, 0
        import peft  # noqa: F401  (imported now, so that the first LoRA choice answers as fast as the others)

        self.update()

    def choice(self) -> Choice:
        """The run the controls describe."""
        return Choice(**{name: control.value for name, control in self.controls.items()})

    def update(self, measured=None) -> float:
        """Recompute the forecast, table and figure for the controls; return the seconds it took."""
        started = time.perf_counter()
        choice = self.choice()
        report = forecast(choice.config())
        report["links"] = forecast_links(report, [PROFILES[choice.link]])
        self.report, self.measured = report, measured
        self.table.value = table_html(report, choice.link)
        self.plot.value = png_bytes(forecast_figure(predicted_rounds(report), measured))
        self.updates += 1
        seconds = time.perf_counter() - started
        self.status.value = (
            f"<span class='fbw-updated' data-n='{self.updates}'>forecast in {seconds * 1000:.0f} ms</span>"
        )
        return seconds

    def run(self):
        """Run the real simulation for the controls' values and lay its bytes over the forecast."""
        from ..simulation import SimulationConfig, simulate

        choice, report = self.choice(), self.report
        if report["message"]["tensor_bytes"] > MAX_SIMULATED_BYTES:
            self.status.value = (
                f"<span class='fbw-refused'>one message is {format_bytes(report['message']['tensor_bytes'])}: "
                "too big to simulate here (each node holds a copy); the forecast above is exact</span>"
            )
            return None
        ledger = Ledger()
        self.output.clear_output()
        with self.output:
            round_progress(ledger, choice.rounds, report["train_nodes"])
        cfg = SimulationConfig(choice.supernodes, choice.rounds, choice.fraction, api=choice.api, model=choice.model)
        try:
            with quiet_flower():
                simulate(cfg, message_arrays(choice.config()), ledger)
        except ConfigError as err:
            self.status.value = f"<span class='fbw-refused'>{err}</span>"
            return None
        self.update(measured=ledger.per_round())
        same = (
            "equal to the forecast" if ledger.total_bytes() == report["total_bytes"] else "DIFFERENT from the forecast"
        )
        self.status.value += f" <span class='fbw-measured'>measured {format_bytes(ledger.total_bytes())}: {same}</span>"
        return ledger

    def widget(self) -> widgets.Widget:
        """The explorer laid out: controls, forecast table, plots, run button, progress and status."""
        c = self.controls
        left = widgets.VBox([c["supernodes"], c["rounds"], c["fraction"], c["api"]])
        right = widgets.VBox([c["model"], c["lora_rank"], c["dtype"], c["link"]])
        box = widgets.VBox(
            [widgets.HBox([left, right]), self.table, self.plot, widgets.HBox([self.button, self.status]), self.output]
        )
        return box.add_class("fbw-explorer")

    def _repr_mimebundle_(self, **kwargs):
        """Show the explorer's widget when it is a cell's last expression."""
        return self.widget()._repr_mimebundle_(**kwargs)
