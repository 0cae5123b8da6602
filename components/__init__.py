"""The component zoo: attention, TAP, channel mixers, ADL, stems and the RobustViT model.

``import components`` registers every model of :data:`PRESETS` with timm, so that
``timm.create_model("robust_vit", mixer="fan", tap_dilations=(1, 2, 3))`` builds any configuration.
Imports torch and timm only.
"""

from components.adl import attention_diversification_loss
from components.attention import Attention
from components.blocks import RobustBlock
from components.mixers import MIXERS, get_mixer
from components.model import RobustViT
from components.pos_embed import POS_EMBEDS
from components.presets import PRESET_KWARGS, PRESETS, PUBLISHED_PARAMS, count_parameters
from components.stems import STEMS, get_stem
from components.tap import TokenAwarePooling

__all__ = [
    "MIXERS",
    "POS_EMBEDS",
    "PRESETS",
    "PRESET_KWARGS",
    "PUBLISHED_PARAMS",
    "STEMS",
    "Attention",
    "RobustBlock",
    "RobustViT",
    "TokenAwarePooling",
    "attention_diversification_loss",
    "count_parameters",
    "get_mixer",
    "get_stem",
]
