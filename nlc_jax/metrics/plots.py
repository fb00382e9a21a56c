"""Rate–distortion plots (matplotlib, PNG) for papers: one line per codec on shared axes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from nlc_jax.metrics.rd import Curve

AXIS_LABELS = {
    "psnr_db": "PSNR (RGB) [dB]",
    "ms_ssim_db": "MS-SSIM [dB] = −10·log₁₀(1 − MS-SSIM)",
    "lpips": "LPIPS",
}
BETTER = {"psnr_db": "↑", "ms_ssim_db": "↑", "lpips": "↓"}
TITLES = {"psnr_db": "PSNR", "ms_ssim_db": "MS-SSIM", "lpips": "LPIPS"}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def plot_rd(curves: Sequence[Curve], metric: str, path: str | os.PathLike, *,
            bd_rates: Mapping[str, float] | None = None, bd_anchor: str | None = None,
            dataset: str = "", metric_note: str = "") -> None:
    """Draw one RD plot: mean bpp (x) against ``metric`` (y), one line per codec.

    Args:
      curves: codec curves; those without ``metric`` at every point are left out.
      metric: ``"psnr_db"``, ``"ms_ssim_db"`` or ``"lpips"``.
      path: PNG file to write.
      bd_rates: codec → BD-rate (%) against ``bd_anchor``, shown in the legend.
      bd_anchor: name of the anchor codec (marked "anchor" in the legend).
      dataset: e.g. ``"Kodak (24 images)"``, shown in the title.
      metric_note: appended to the y label, e.g. ``"(AlexNet)"`` for LPIPS.

    A codec keeps the same colour, marker and line style in every plot (its index in
    ``curves``); no two of the first 100 codecs share all three.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bd_rates = bd_rates or {}
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=150)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, curve in enumerate(curves):
        if not curve.has(metric):
            continue
        label = curve.codec
        if curve.codec == bd_anchor:
            label += " — anchor"
        elif curve.codec in bd_rates and np.isfinite(bd_rates[curve.codec]):
            number = f"{bd_rates[curve.codec]:+.1f}".replace("-", "\u2212")
            label += f" — BD-rate {number}%"
        cycle = i // len(colors)  # past the colour cycle: the next marker and a dashed line
        ax.plot(curve.bpp, curve.values[metric], marker=_MARKERS[(i + cycle) % len(_MARKERS)],
                color=colors[i % len(colors)], linestyle="--" if cycle % 2 else "-",
                markersize=4.5, linewidth=1.6, label=label)
    ax.set_xlabel("Rate [bits per pixel]")
    note = f" {metric_note}" if metric_note else ""
    ax.set_ylabel(f"{AXIS_LABELS[metric]}{note} {BETTER[metric]}")
    title = TITLES[metric] + (f" — {dataset}" if dataset else "")
    if bd_anchor:
        title += f"\nBD-rate vs {bd_anchor}"
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    ax.minorticks_on()
    ax.legend(loc="lower right" if metric != "lpips" else "upper right", fontsize=8.5,
              frameon=True, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
