"""Building blocks of the overfitted (COOL-CHIC-family) decoders, shared by COOL-CHIC, CLRIC and
Noise-to-Latent: layer stacks (``layers``), latent-grid upsampling (``upsampling``) and the
padded-bucket masks of the batched engine (``padding``).

Everything that runs both in training and in decoding is written once for ``jax.numpy`` and
``numpy``: each function takes the array module ``xp``, and both paths use the same explicit
polyphase / shifted sums. Under ``jax.vmap`` (one set of weights per fit) they stay elementwise
products and batched matmuls, whereas ``lax.conv_general_dilated`` with batched kernels becomes
a grouped convolution that XLA runs about 8× slower on CPU (4 fits of ``fast`` at 256×256:
3.2 s vs 0.38 s per step; one fit: 0.20 s vs 0.085 s).

Boundaries are zero-padded, or with ``edge=True`` (``Arch.edge_padding``, Cool-chic's choice)
the 2× upsampling and the 3×3 layers replicate the edge samples (the 7-tap smoothing stays
zero-padded). Training runs on a padded bucket: there masks zero every grid outside the true
image after each operation (with edge padding, the inputs of the edge-padded operations instead
repeat their last valid row and column over the padding, :func:`padding.fill_edges`), which
makes the valid region identical to what the decoder computes at the true size (where the masks
are ``None``).
"""
