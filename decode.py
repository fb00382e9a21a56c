"""``nlc-decode`` from a checkout: ``python decode.py <file.nlc | folder> --output <png | folder>``
(see ``nlc_jax/commands/decode.py``)."""

import sys

from nlc_jax.commands.decode import main

if __name__ == "__main__":
    sys.exit(main(program="decode.py"))
