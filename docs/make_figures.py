"""Draw the figures the README shows: ``python docs/make_figures.py`` (from the repository root).

docs/forest_bcg.png: the BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg), log risk
ratios meta-analysed with the exact engine and shown as risk ratios (``transform="exp"``).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window

import matplotlib.pyplot as plt

import hiermodels as hm

HERE = Path(__file__).resolve().parent


def forest_bcg(path=HERE / "forest_bcg.png"):
    bcg = hm.datasets.load("bcg")
    bcg["study"] = bcg["author"] + " " + bcg["year"].astype(str)
    bcg = hm.effect_sizes(bcg, "RR", ai="tpos", bi="tneg", ci="cpos", di="cneg")
    meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="study")
    fig = meta.plot_forest(path, transform="exp", xlabel="Risk ratio (log scale)")
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(forest_bcg())
