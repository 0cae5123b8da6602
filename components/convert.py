"""Load the authors' released FAN and TAP/ADL checkpoints into the zoo's models.

The published weights (NVlabs/FAN, guoyongcs/TAPADL) use the authors' module names. Their models
and ours compute the same functions, so a checkpoint converts by renaming, with three reshapes:

============================================  ============================================
authors' key                                  ours
============================================  ============================================
``pos_embeder.*`` / ``pos_embed.*``           ``pos_embed.encoding.*``
``patch_embed.backbone.{stem,stages}.*``      ``patch_embed.{stem,stages}.*``
``...stages.I.blocks.J.mlp.fc{1,2}`` (1x1     ``...`` as Linear weights (the 1x1 convs'
conv, (out, in, 1, 1))                        weights reshaped to (out, in))
``blocks.I.attn.q`` + ``blocks.I.attn.kv``    ``blocks.I.attn.qkv`` (concatenated: q, k, v)
``blocks.I.gamma1`` / ``gamma2``              ``blocks.I.ls1.gamma`` / ``ls2.gamma``
``blocks.I.mlp.*`` (ChannelProcessing)        ``blocks.I.mixer.*``
``blocks.I.mlp.*`` (SEMlp, ``se_mlp=True``)   ``blocks.I.mixer.mlp.*``, ``...se.conv_reduce`` /
                                              ``conv_expand`` -> ``mixer.se.fc1`` / ``fc2``
``blocks.I.dilation_predictor.proj.*``        ``blocks.I.tap.predictor.*``
``cls_attn_blocks.I.attn.qkv`` (if fused)     ``cls_attn_blocks.I.attn.{q,k,v}`` (split)
============================================  ============================================

Everything else (conv stem, class-attention blocks, norms, head) has the same names. What differs in
the numbers: the authors' hybrid stem uses its own ``LayerNorm2d``, which on a channels-last tensor
(all of them after the stem's first norm) normalises with the unbiased variance (divides by C - 1)
where ours (timm's LayerNorm) divides by C; run side by side with the authors' code, the logits of
the same FAN-B-Hybrid weights differ by 1.8e-3 (see docs/components.md). Everything else is exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import timm
import torch

from components.model import RobustViT

#: Checkpoint dict keys under which the authors' training scripts (timm's) store the weights.
STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")


def _unwrap(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    for key in STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]  # type: ignore[assignment]
            break
    state = {}
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"checkpoint entry {key!r} is not a tensor; expected a state dict "
                             f"(or a dict holding one under {', '.join(STATE_DICT_KEYS)})")
        state[key.removeprefix("module.")] = value
    return state


def _rename(key: str, model: RobustViT) -> str:
    key = re.sub(r"^pos_embed(er)?\.token_projection", "pos_embed.encoding.token_projection", key)
    key = key.replace("patch_embed.backbone.", "patch_embed.")
    key = re.sub(r"^blocks\.(\d+)\.gamma([12])$", r"blocks.\1.ls\2.gamma", key)
    key = re.sub(r"^blocks\.(\d+)\.dilation_predictor\.proj\.", r"blocks.\1.tap.predictor.", key)
    m = re.match(r"^blocks\.(\d+)\.mlp\.(.*)$", key)
    if m:
        i, rest = int(m.group(1)), m.group(2)
        if i < len(model.mixers) and model.mixers[i] == "fan_se":
            rest = rest.replace("se.conv_reduce", "se.fc1").replace("se.conv_expand", "se.fc2")
            rest = rest if rest.startswith("se.") else "mlp." + rest
        key = f"blocks.{i}.mixer.{rest}"
    return key


def convert_authors_state_dict(checkpoint: Mapping[str, object], model: RobustViT) -> dict[str, torch.Tensor]:
    """The authors' state dict (or a checkpoint dict holding one) renamed and reshaped for ``model``."""
    theirs = _unwrap(checkpoint)
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in theirs.items():
        m = re.match(r"^blocks\.(\d+)\.attn\.(q|kv)\.(weight|bias)$", key)
        if m:  # q and kv projections -> one qkv projection, rows q | k | v
            if m.group(2) == "q":
                kv = theirs[f"blocks.{m.group(1)}.attn.kv.{m.group(3)}"]
                out[f"blocks.{m.group(1)}.attn.qkv.{m.group(3)}"] = torch.cat([value, kv], dim=0)
            continue
        m = re.match(r"^cls_attn_blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", key)
        if m:  # a fused class-attention qkv (timm's old CaiT layout) -> q, k, v
            for name, part in zip("qkv", value.chunk(3, dim=0), strict=True):
                out[f"cls_attn_blocks.{m.group(1)}.attn.{name}.{m.group(2)}"] = part
            continue
        new = _rename(key, model)
        m = re.match(r"^blocks\.(\d+)\.tap\.", new)
        if m and new not in ours and theirs[f"blocks.{m.group(1)}.dilation_predictor.proj.0.weight"].shape[0] == 1:
            continue  # --num-scales 1: a one-branch softmax is the identity, and our block has no TAP
        if new in ours and value.dim() == 4 and ours[new].dim() == 2:
            value = value.flatten(1)  # ConvNeXt's 1x1-conv MLP -> our Linear MLP
        out[new] = value
    return out


def load_authors_checkpoint(
    path_or_state_dict: str | Path | Mapping[str, object], model_name: str, **model_kwargs: object
) -> RobustViT:
    """Build ``timm.create_model(model_name, **model_kwargs)`` and load the authors' weights into it strictly.

    Args:
        path_or_state_dict: a ``.pth`` / ``.pth.tar`` file released by the authors (read with
            ``torch.load(weights_only=True)``), or the loaded dict.
        model_name: the zoo's preset with the checkpoint's architecture, e.g.
            ``"fan_base_16_p4_hybrid"`` or ``"tap_fan_base_16_p4_hybrid"`` (TAP with ``--num-scales 4``).
        model_kwargs: overrides, as for ``timm.create_model`` (e.g. ``num_classes``, ``num_scales``).

    Raises:
        ValueError: the file is missing or unreadable, or the weights do not fit the model (the
            message names the first missing and unexpected keys).
    """
    if isinstance(path_or_state_dict, (str, Path)):
        path = Path(path_or_state_dict)
        if not path.is_file():
            raise ValueError(f"checkpoint {str(path)!r} does not exist")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"checkpoint {str(path)!r} is not a readable torch file: {err}") from err
    else:
        checkpoint = path_or_state_dict
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"a checkpoint must be a dict of tensors, got {type(checkpoint).__name__}")
    model = timm.create_model(model_name, **model_kwargs)
    if not isinstance(model, RobustViT):
        raise ValueError(f"model_name must be one of the zoo's models (components.PRESETS), got {model_name!r}")
    state = convert_authors_state_dict(checkpoint, model)
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    wrong = sorted(k for k in set(ours) & set(state) if ours[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"the checkpoint does not fit {model_name}: {len(missing)} missing (first: {missing[:3]}), "
            f"{len(unexpected)} unexpected (first: {unexpected[:3]}), {len(wrong)} of another shape "
            f"(first: {wrong[:3]})"
        )
    model.load_state_dict(state, strict=True)
    return model
