"""A batch spread over devices: the single-device case as one device, and the global reduction.

A distributed loss is written once against :class:`polyloss.core._typing.Devices`; on one device
(``group=None`` and ``axis_name=None``) it runs on :data:`ONE_DEVICE`, whose collectives are the
identity, so the single-device loss is the same code with ``size == 1``.
"""

from __future__ import annotations

from typing import Any

from polyloss.core._reduce import reduce
from polyloss.core._typing import Array, AxisName, Backend, Devices, ProcessGroup


class OneDevice:
    """The whole batch on this device: rank 0 of 1, every collective the identity."""

    size = 1

    def rank(self) -> int:
        return 0

    def check_same_rows(self, name: str, x: Array) -> None:
        return None

    def all_gather(self, x: Array) -> Array:
        return x

    def sum(self, x: Array) -> Array:
        return x

    def shift(self, x: Array) -> Array:
        return x


ONE_DEVICE: Devices = OneDevice()


def devices_of(b: Backend, group: ProcessGroup, axis_name: AxisName) -> Devices:
    """The devices named by ``group`` (torch) or ``axis_name`` (JAX), or :data:`ONE_DEVICE`."""
    return b.devices(group, axis_name) or ONE_DEVICE


def reduce_across(xp: Any, devices: Devices, local: Array, reduction: str, per_device: int) -> Array:
    """``reduction`` over the global batch of the local per-sample values ``local``.

    ``"none"`` keeps this device's values; ``"sum"`` is the sum over every device; ``"mean"``
    divides it by ``per_device * devices.size`` (every device holds ``per_device`` samples), and
    an empty global batch gives 0 (the empty-batch policy).
    """
    if devices.size == 1 or reduction == "none":
        return reduce(xp, local, reduction)
    total = devices.sum(xp.sum(local))
    return total if reduction == "sum" else total / max(per_device * devices.size, 1)
