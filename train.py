"""``nlc-train`` from a checkout: ``python train.py --config hyperprior:tiny --workdir runs/tiny``
(see ``nlc_jax/commands/train.py``)."""

from nlc_jax.commands.train import run

if __name__ == "__main__":
    run("train.py")
