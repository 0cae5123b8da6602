"""Argument checks shared by the zoo: each raises ``ValueError`` saying what was given and what must hold."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from timm.layers import register_notrace_function


def check_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def check_positive_int(name: str, value: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_non_negative_int(name: str, value: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def check_probability(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (dropout-style rates)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def check_heads(dim: int, num_heads: int, what: str = "dim") -> None:
    """Raise ``ValueError`` unless ``num_heads`` >= 1 divides ``dim``."""
    check_positive_int("num_heads", num_heads)
    check_positive_int(what, dim)
    if dim % num_heads != 0:
        raise ValueError(
            f"{what}={dim} is not divisible by num_heads={num_heads}; "
            f"choose num_heads from the divisors of {dim}"
        )


def check_choice(kind: str, name: str, choices: Collection[str]) -> None:
    """Raise ``ValueError`` listing the valid names unless ``name`` is one of ``choices``."""
    if not isinstance(name, str) or name not in choices:
        raise ValueError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(choices))}")


def lookup(kind: str, name: str, registry: Mapping[str, object]) -> object:
    """Return ``registry[name]`` or raise ``ValueError`` listing the valid names of this ``kind``."""
    check_choice(kind, name, registry)
    return registry[name]


def as_int_tuple(name: str, values: Iterable[int]) -> tuple[int, ...]:
    """Turn a sequence of ints into a tuple, raising ``ValueError`` for anything that is not an int."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}")
    out = tuple(values)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must contain integers only, got {values!r}")
    return out


def check_patch_grid(img_size: int | tuple[int, int], patch_size: int) -> tuple[int, int]:
    """Return the token grid (H / p, W / p); ``ValueError`` unless ``patch_size`` divides the image size."""
    check_positive_int("patch_size", patch_size)
    size = (img_size, img_size) if isinstance(img_size, int) and not isinstance(img_size, bool) else img_size
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"img_size must be an int or an (height, width) pair, got {img_size!r}")
    for s in size:
        check_positive_int("img_size", s)
    h, w = size
    check_image_divisible(h, w, patch_size)
    return h // patch_size, w // patch_size


# ---- checks inside forward: TorchScript-compilable (typed, no ``!r``) and FX leaves (run, not traced) ----


@register_notrace_function
def check_image_divisible(height: int, width: int, patch_size: int) -> None:
    """Raise ``ValueError`` unless ``patch_size`` divides both sides of the image."""
    if height % patch_size != 0 or width % patch_size != 0:
        raise ValueError(
            f"image size {height}x{width} is not divisible by patch_size={patch_size}; "
            f"use an image size that is a multiple of {patch_size}"
        )


@register_notrace_function
def check_token_grid(num_tokens: int, height: int, width: int) -> None:
    """Raise ``ValueError`` unless ``num_tokens`` tokens fill a ``height`` x ``width`` grid."""
    if num_tokens != height * width:
        raise ValueError(f"TAP needs a token grid: got N={num_tokens} tokens for a grid of {height}x{width}")
