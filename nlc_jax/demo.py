"""``make demo``: the main job on the sample images shipped in ``samples/``.

Until the COOL-CHIC codec is wired in, this runs the entropy-coding demo with the same arguments.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("nlc_jax.entropy.demo", run_name="__main__")
