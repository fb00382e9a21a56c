"""The ``recipe`` block shared by the overfitted codecs' configs (COOL-CHIC, CLRIC,
Noise-to-Latent); ``nlc_jax.codecs.recipe`` reads it.
"""

from ml_collections import config_dict


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
