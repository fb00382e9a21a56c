"""The console commands (``pyproject.toml``'s ``[project.scripts]``): ``nlc-encode``,
``nlc-decode``, ``nlc-train`` and ``nlc-eval`` (``nlc_jax.eval``). ``encode.py``, ``decode.py``
and ``train.py`` in a checkout are thin wrappers of the same functions, with the same flags.
"""
