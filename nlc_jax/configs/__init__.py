"""Codec and training presets as ml_collections config files (big_vision style).

One file per codec (``coolchic``, ``clric``, ``noise2latent``, ``hyperprior``), each with
``get_config(preset)``; :mod:`nlc_jax.configs.common` holds the overfitting recipe block the
COOL-CHIC family shares. Load them with :func:`nlc_jax.load_config` (``"coolchic"``,
``"coolchic:fast"``, or a path to your own file) or on the command line with
``--config coolchic:fast`` / ``--config path/to/my_config.py:preset``.
"""
