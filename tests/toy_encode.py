"""``encode.py`` with the toy codec registered (CLI tests run it in a subprocess)."""

from toy_codec import register

import encode

if __name__ == "__main__":
    register()
    encode.run()
