"""Baselines pinned in the run store (by an admin in the review app): the nightly gate of an evaluation compares
with its pinned run instead of the last passing one, until the pin is removed. A `--baseline` on the command line or
a run id in `nightly.baseline` still wins."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ragharness.runs.store import RunStore, read_meta_model, update_meta_model

PINS = "baselines.json"


class BaselinePin(BaseModel):
    run_id: str
    by: str = Field(description="Key id of the admin who pinned it.")
    at: str


class Pins(BaseModel):
    pins: dict[str, BaselinePin] = Field(default_factory=dict, description="Evaluation name -> pinned run.")


def read_pins(store: RunStore) -> Pins:
    return read_meta_model(store, PINS, Pins, "pin file", "pin again in the review app or delete the file")


def set_pin(store: RunStore, name: str, pin: BaselinePin | None) -> Pins:
    """Pin (or with None unpin) the baseline of evaluation `name` (a read-modify-write under the store's lock)."""

    def change(pins: Pins) -> None:
        if pin is None:
            pins.pins.pop(name, None)
        else:
            pins.pins[name] = pin

    return update_meta_model(store, PINS, Pins, "pin file", "pin again in the review app or delete the file", change)
