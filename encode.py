"""``nlc-encode`` from a checkout: ``python encode.py --config coolchic:fast --input … --output …``
(see ``nlc_jax/commands/encode.py``)."""

from nlc_jax.commands.encode import run

if __name__ == "__main__":
    run("encode.py")
