"""``search components``: list every registered mixer, stem and model preset with its parameter count.

Everything is built on torch's meta device, so even the 80M-parameter presets cost no memory and
list in a few seconds.
"""

from __future__ import annotations

import argparse
import json

from search.errors import UserError

NAME = "components"
HELP = "List the component zoo: every channel mixer, stem and model preset with its parameter count."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embed-dim", type=int, default=192,
                        help="token width at which mixers and stems are counted (default 192)")
    parser.add_argument("--num-heads", type=int, default=4, help="heads for the mixers that have heads (default 4)")
    parser.add_argument("--mlp-ratio", type=float, default=4.0, help="MLP ratio of the mixers (default 4)")
    parser.add_argument("--img-size", type=int, default=224, help="image size for the stems (default 224)")
    parser.add_argument("--patch-size", type=int, default=16, help="patch size for the stems (default 16)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def collect(args: argparse.Namespace) -> dict[str, list[dict]]:
    """The three listings as plain dicts (name, params, and for presets the published count)."""
    import torch

    import components

    try:
        with torch.device("meta"):
            mixers = [
                {"name": name, "params": _count(cls(args.embed_dim, num_heads=args.num_heads,
                                                    mlp_ratio=args.mlp_ratio)),
                 "class": cls.__name__}
                for name, cls in sorted(components.MIXERS.items())
            ]
            stems = [
                {"name": name, "params": _count(cls(args.img_size, args.patch_size, 3, args.embed_dim)),
                 "class": cls.__name__}
                for name, cls in sorted(components.STEMS.items())
            ]
    except ValueError as err:
        raise UserError(str(err)) from err
    presets = []
    for name in components.PRESETS:
        published = components.PUBLISHED_PARAMS.get(name)
        presets.append({"name": name, "params": components.count_parameters(name),
                        "published_params": None if published is None else int(published * 1e6)})
    return {"mixers": mixers, "stems": stems, "presets": presets}


def _table(title: str, rows: list[dict], extra: str | None = None) -> str:
    lines = [title]
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        line = f"  {r['name']:<{width}}  {r['params'] / 1e6:9.3f}M"
        if extra and r.get(extra):
            line += f"   (published {r[extra] / 1e6:.1f}M)"
        lines.append(line)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    listing = collect(args)
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print(_table(f"Channel mixers (dim {args.embed_dim}, {args.num_heads} heads, mlp ratio {args.mlp_ratio:g}):",
                 listing["mixers"]))
    print(_table(f"Stems ({args.img_size} px, patch {args.patch_size}, dim {args.embed_dim}):", listing["stems"]))
    print(_table("Model presets (timm.create_model(name); default classes):", listing["presets"],
                 "published_params"))
    return 0
