"""What the config files share: the preset lookup (:func:`preset_entries`), the ``recipe``
block of the overfitted codecs (COOL-CHIC, CLRIC, Noise-to-Latent; :func:`recipe_block`), which
``nlc_jax.codecs.recipe`` reads, and the fields of ``nlc-train`` runs (:func:`add_training_fields`),
which ``nlc_jax.train`` reads.
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


def add_training_fields(c: config_dict.ConfigDict, *, crop: int, batch_size: int,
                        num_steps: int, warmup_steps: int, learning_rate: float,
                        checkpoint_every: int = 1000, eval_every: int = 10_000,
                        eval_images: int = 24) -> config_dict.ConfigDict:
    """Add the keys of a ``nlc-train`` run (data, optimisation, logging, checkpoints,
    evaluation, the ``checkpoint`` a coder loads) to a learned codec's config ``c``; returns
    ``c``. The defaults are those of ``docs/train.md``."""
    c.data = "../shared/data/train"  # image folder / glob, or tfds:<name>[:split]
    c.tfds_data_dir = ""  # tfds data folder for tfds: data ("": tfds' default)
    c.crop = crop
    c.batch_size = batch_size
    c.data_threads = 4
    c.prefetch = 8
    c.seed = 0

    c.num_steps = num_steps
    c.stop_at_step = 0  # > 0: stop (checkpointed) at this step; run again to continue
    c.learning_rate = learning_rate
    c.warmup_steps = warmup_steps
    c.end_lr_factor = 0.1
    c.grad_clip = 1.0

    c.log_every = 50
    c.checkpoint_every = checkpoint_every
    c.keep_checkpoints = 3
    c.eval_every = eval_every  # 0: only at the end
    c.eval_data = "../shared/data/kodak"
    c.eval_images = eval_images
    c.progress = True

    c.checkpoint = ""  # encode/decode: a training workdir or its export/ directory
    return c
