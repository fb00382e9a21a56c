"""``encode.py`` with the toy codec registered (CLI tests run it in a subprocess)."""

from absl import app
from toy_codec import register

import encode

if __name__ == "__main__":
    register()
    app.run(encode.main)
