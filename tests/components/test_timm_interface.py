"""timm's model interface, checked on every registered model of the zoo (tiny sizes).

Written from what timm's own suite (``tests/test_models.py``) checks of its ViT-like models: the
default cfg, ``forward_features`` / ``forward_head``, ``reset_classifier`` and ``global_pool=""``,
``features_only`` and ``forward_intermediates``, gradient checkpointing, ``group_matcher``,
TorchScript, and torch.fx forward and backward. Our models give tokens (B, N, C) from
``forward_features`` like timm's ViTs and XCiT, and (B, C, H / p, W / p) maps as features.
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models import get_notrace_functions, get_notrace_modules, group_parameters
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from components import PRESETS
from tests.components._helpers import tiny_preset_kwargs

DEPTH = 3  # timm expects at least three feature levels
X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def tiny(name: str, **kwargs) -> torch.nn.Module:
    return timm.create_model(name, **{**tiny_preset_kwargs(name, depth=DEPTH), **kwargs})


def n_tokens(model) -> int:
    grid = model.patch_embed.grid_size
    return grid[0] * grid[1] + model.num_prefix_tokens


@pytest.mark.parametrize("name", PRESETS)
def test_default_cfg(name: str) -> None:
    model = tiny(name)
    cfg, state = model.default_cfg, model.state_dict()
    assert cfg is model.pretrained_cfg
    for key in ("pool_size", "input_size", "crop_pct", "interpolation", "mean", "std", "first_conv", "classifier"):
        assert key in cfg, key
    assert cfg["first_conv"] + ".weight" in state and state[cfg["first_conv"] + ".weight"].dim() == 4
    assert cfg["classifier"] + ".weight" in state
    assert cfg["input_size"] == (3, 16, 16) and cfg["num_classes"] == 3
    # the registry's own cfg (full size) names the same layers
    registered = timm.models.get_pretrained_cfg(name).to_dict()
    assert registered["first_conv"] == cfg["first_conv"] and "pool_size" in registered
    assert model.num_features == model.head_hidden_size == 16 > 0


@pytest.mark.parametrize("name", PRESETS)
def test_features_head_reset_classifier_and_no_pool(name: str) -> None:
    model = tiny(name).eval()
    with torch.no_grad():
        feats = model.forward_features(X)
        assert feats.shape == (2, n_tokens(model), model.num_features)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.head_hidden_size)
        model.reset_classifier(0)
        assert model.num_classes == 0
        torch.testing.assert_close(model(X), pre)
        model.reset_classifier(0, "")  # no classifier, no pooling: every token
        torch.testing.assert_close(model(X), feats)
        model.reset_classifier(5, "avg")
        assert model(X).shape == (2, 5)
        unpooled = tiny(name, num_classes=0, global_pool="").eval()
        assert unpooled(X).shape == (2, n_tokens(unpooled), 16)
    with pytest.raises(ValueError, match="valid global_pools"):
        model.reset_classifier(0, "max")


def test_token_pool_needs_a_class_token() -> None:
    with pytest.raises(ValueError, match="global_pool='token' needs a class token"):
        tiny("robust_vit", global_pool="token")


@pytest.mark.parametrize("name", PRESETS)
def test_features_only_and_forward_intermediates(name: str) -> None:
    model = tiny(name).eval()
    info = timm.models.FeatureInfo(model.feature_info, list(range(DEPTH)))
    assert info.channels() == [16] * DEPTH and len(info.reduction()) == DEPTH
    reduction = model.patch_embed.patch_size
    assert info.reduction() == [reduction] * DEPTH
    with torch.no_grad():
        final, inter = model.forward_intermediates(X)
        torch.testing.assert_close(final, model.forward_features(X))
        assert [t.shape for t in inter] == [(2, 16, 16 // reduction, 16 // reduction)] * DEPTH
        nlc = model.forward_intermediates(X, indices=[0], output_fmt="NLC", intermediates_only=True)
        torch.testing.assert_close(nlc[0].transpose(1, 2).reshape(inter[0].shape), inter[0])
        feat_model = tiny(name, features_only=True).eval()  # timm's FeatureGetterNet, head pruned
        result = feat_model.model.load_state_dict(model.state_dict(), strict=False)
        assert not result.missing_keys
        assert all(k.startswith(("head.", "cls_attn_blocks.", "norm.")) for k in result.unexpected_keys)
        feats = feat_model(X)
    assert feat_model.feature_info.channels() == [16] * DEPTH
    assert [f.shape for f in feats] == [t.shape for t in inter]
    for f, t in zip(feats, inter, strict=True):
        torch.testing.assert_close(f, t)


@pytest.mark.parametrize("name", PRESETS)
def test_grad_checkpointing_changes_nothing(name: str) -> None:
    model = tiny(name).train()
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        torch.manual_seed(0)
        model.zero_grad(set_to_none=True)
        out = model(X)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    for a, b in zip(grads[1][1], grads[0][1], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    # the authors' name for the same switch
    assert tiny(name, use_checkpoint=True).grad_checkpointing


@pytest.mark.parametrize("name", PRESETS)
def test_group_matcher_covers_every_parameter(name: str) -> None:
    model = tiny(name)
    for coarse in (False, True):
        groups = group_parameters(model, model.group_matcher(coarse=coarse))
        grouped = [n for names in groups.values() for n in names]
        assert sorted(grouped) == sorted(n for n, _ in model.named_parameters())
    # the stem first, the blocks in order, the head last (layer-wise lr decay relies on it)
    fine = group_parameters(model, model.group_matcher())
    order = [names[0] for names in fine.values()]
    assert order[0].startswith(("patch_embed", "pos_embed", "cls_token"))
    assert [o for o in order if o.startswith("blocks.")] == sorted(
        (o for o in order if o.startswith("blocks.")), key=lambda n: int(n.split(".")[1]))
    assert any(n.startswith("head") for n in fine[max(fine)])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("name", PRESETS)
def test_torchscript(name: str) -> None:
    with timm.layers.set_scriptable(True):
        model = tiny(name).eval()
    scripted = torch.jit.script(model)
    with torch.no_grad():
        torch.testing.assert_close(scripted(X), model(X))


def _fx(model: torch.nn.Module, train: bool) -> torch.nn.Module:
    tracer_kwargs = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions(),
                         param_shapes_constant=True)
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    return create_feature_extractor(model, train_return_nodes=[train_nodes[-1]],
                                    eval_return_nodes=[eval_nodes[-1]], tracer_kwargs=tracer_kwargs).train(train)


@pytest.mark.parametrize("name", PRESETS)
def test_fx_forward_and_backward(name: str) -> None:
    model = tiny(name).eval()
    with torch.no_grad():
        fx_out = next(iter(_fx(model, train=False)(X).values()))
        assert torch.equal(fx_out, model(X))
    fx_train = _fx(tiny(name), train=True)
    out = next(iter(fx_train(X).values()))
    out.mean().backward()
    missing = [n for n, p in fx_train.named_parameters() if p.grad is None]
    assert out.shape == (2, 3) and not missing
