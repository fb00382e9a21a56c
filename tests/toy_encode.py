"""``encode.py`` with the toy codec registered (CLI tests run it in a subprocess)."""

from toy_codec import register

from nlc_jax.commands.encode import run

if __name__ == "__main__":
    register()
    run("encode.py")
