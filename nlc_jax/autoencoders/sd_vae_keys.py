"""Tensor-name schemes of SD-VAE checkpoints, all mapped to the diffusers scheme.

* diffusers (``diffusion_pytorch_model.safetensors``): used as is, except the legacy attention
  names (``query``/``key``/``value``/``proj_attn``) of older exports.
* original LDM / CompVis (``first_stage_model.`` keys inside a full SD checkpoint, or bare keys in
  a VAE-only file): ``down.i.block.j`` → ``down_blocks.i.resnets.j``; decoder ``up.i`` is stored
  in reverse order (``up.0`` is the last, full-resolution stage); ``mid.block_1``/``attn_1``/
  ``block_2`` → ``mid_block.resnets.0``/``attentions.0``/``resnets.1``; attention q/k/v/proj
  are 1×1 convs ``[C, C, 1, 1]`` there and linear ``[C, C]`` layers here.
"""

from __future__ import annotations

import dataclasses
import re

from nlc_jax.autoencoders.loaders import StateDict, WeightsError
from nlc_jax.autoencoders.sd_vae import VAEConfig

_LEGACY_ATTN = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_LDM_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_LDM_RESNET = {"nin_shortcut": "conv_shortcut"}
LDM_PREFIX = "first_stage_model."


def from_diffusers(state: StateDict) -> StateDict:
    """Rename legacy diffusers attention keys; everything else is already in our scheme."""
    out = {}
    for key, value in state.items():
        m = re.match(r"(.*\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$", key)
        if m:
            key = f"{m[1]}{_LEGACY_ATTN[m[2]]}.{m[3]}"
        out[key] = value
    return out


def is_ldm(state: StateDict) -> bool:
    """Whether the keys look like an LDM/CompVis checkpoint (full model or VAE only)."""
    return any(k.startswith(LDM_PREFIX) or k.startswith("encoder.down.") for k in state)


def _ldm_num_up(state: StateDict) -> int:
    ups = {int(m[1]) for k in state if (m := re.match(r"decoder\.up\.(\d+)\.", k))}
    return max(ups) + 1 if ups else 0


def from_ldm(state: StateDict) -> StateDict:
    """Select the first-stage model of an LDM checkpoint and rename it to the diffusers scheme.

    See :func:`ldm_state` for the selection. An unrecognised key is passed through unchanged (and
    then reported as unexpected).
    """
    state = ldm_state(state)
    n_up = _ldm_num_up(state)
    out = {}
    for key, value in state.items():
        new = key
        if m := re.match(r"(encoder|decoder)\.(norm_out)\.(.*)$", key):
            new = f"{m[1]}.conv_norm_out.{m[3]}"
        elif m := re.match(r"encoder\.down\.(\d+)\.block\.(\d+)\.(\w+)\.(.*)$", key):
            new = f"encoder.down_blocks.{m[1]}.resnets.{m[2]}.{_LDM_RESNET.get(m[3], m[3])}.{m[4]}"
        elif m := re.match(r"encoder\.down\.(\d+)\.downsample\.conv\.(.*)$", key):
            new = f"encoder.down_blocks.{m[1]}.downsamplers.0.conv.{m[2]}"
        elif m := re.match(r"decoder\.up\.(\d+)\.block\.(\d+)\.(\w+)\.(.*)$", key):
            i = n_up - 1 - int(m[1])
            new = f"decoder.up_blocks.{i}.resnets.{m[2]}.{_LDM_RESNET.get(m[3], m[3])}.{m[4]}"
        elif m := re.match(r"decoder\.up\.(\d+)\.upsample\.conv\.(.*)$", key):
            new = f"decoder.up_blocks.{n_up - 1 - int(m[1])}.upsamplers.0.conv.{m[2]}"
        elif m := re.match(r"(encoder|decoder)\.mid\.block_([12])\.(\w+)\.(.*)$", key):
            new = f"{m[1]}.mid_block.resnets.{int(m[2]) - 1}.{_LDM_RESNET.get(m[3], m[3])}.{m[4]}"
        elif m := re.match(r"(encoder|decoder)\.mid\.attn_1\.(\w+)\.(.*)$", key):
            new = f"{m[1]}.mid_block.attentions.0.{_LDM_ATTN.get(m[2], m[2])}.{m[3]}"
            if m[2] != "norm" and value.ndim == 4 and value.shape[2:] == (1, 1):
                value = value[:, :, 0, 0]
        out[new] = value
    return out


def infer_ldm_config(state: StateDict, base: VAEConfig) -> VAEConfig:
    """Read the shape-determined fields of an LDM-named state dict; keep the rest from ``base``.

    Block widths, blocks, layers per block, latent channels and the quant convs follow from the
    tensor shapes; GroupNorm groups and the latent scale/shift do not and come from ``base``.
    """
    try:
        n = 1 + max(int(m[1]) for k in state if (m := re.match(r"encoder\.down\.(\d+)\.", k)))
        chans = tuple(int(state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0])
                      for i in range(n))
        layers = 1 + max(int(m[1]) for k in state
                         if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", k)))
        latent = int(state["decoder.conv_in.weight"].shape[1])
    except (ValueError, KeyError) as e:
        raise WeightsError(f"not an LDM autoencoder state dict (cannot read {e})") from None
    return dataclasses.replace(
        base, block_out_channels=chans, layers_per_block=layers, latent_channels=latent,
        use_quant_conv="quant_conv.weight" in state,
        use_post_quant_conv="post_quant_conv.weight" in state,
        mid_block_add_attention=any(".mid.attn_1." in k for k in state))


def ldm_state(state: StateDict) -> StateDict:
    """The first-stage part of an LDM checkpoint, still in LDM names.

    Keys under ``first_stage_model.`` when present (a full SD checkpoint); otherwise the file is
    VAE-only and its ``loss.*`` (training loss / discriminator) entries are dropped.
    """
    if any(k.startswith(LDM_PREFIX) for k in state):
        return {k[len(LDM_PREFIX):]: v for k, v in state.items() if k.startswith(LDM_PREFIX)}
    return {k: v for k, v in state.items() if not k.startswith("loss.")}

