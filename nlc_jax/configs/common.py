"""What the config files share: the preset lookup (:func:`preset_entries`) and the ``recipe``
block of the overfitted codecs (COOL-CHIC, CLRIC, Noise-to-Latent; :func:`recipe_block`), which
``nlc_jax.codecs.recipe`` reads.
"""

from ml_collections import config_dict


def preset_entries(codec: str, preset: str, *tables: dict) -> list:
    """``preset``'s entry in each of a config file's tables (architectures, recipes, …).

    Raises:
      ValueError: ``preset`` is not in the first table.
    """
    if preset not in tables[0]:
        raise ValueError(f"unknown {codec} preset {preset!r}; choose one of "
                         f"{', '.join(tables[0])}")
    return [table[preset] for table in tables]


def recipe_block(n_itr: int, warmup_steps: int, final_steps: int,
                 n_candidates: int) -> config_dict.ConfigDict:
    """The recipe fields every member of the family has; each config adds its own (noise,
    temperature, optimizer, …).

    Args:
      n_itr: total iterations (warm-up + main + final).
      warmup_steps: iterations per warm-up stage (all candidates, then the best 2); 0: Cool-chic's
        rule by ``n_itr`` (``nlc_jax.codecs.recipe.auto_warmup_steps``).
      final_steps: iterations of the final phase.
      n_candidates: random inits (seeds) tried in the first warm-up.
    """
    r = config_dict.ConfigDict()
    r.n_itr = n_itr
    r.warmup_steps = warmup_steps
    r.final_steps = final_steps
    r.n_candidates = n_candidates
    r.lr = 1e-2                        # networks and latents; cosine-decayed in the main phase
    r.final_lr = 1e-4
    r.min_lr = 1e-5
    r.grad_clip = 1e-1                 # global-norm clip on network gradients
    return r
