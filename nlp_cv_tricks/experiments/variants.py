"""The vary language of ablations: ``--vary KEY=V1,V2`` (recipe overrides, trick operations ``+name``,
``+name{opts}``, ``-name``, other recipe files) into the variants of a grid (one factor at a time or the
cartesian product)."""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import yaml

from ..config import RecipeError

__all__ = ["AblateError", "Variant", "split_top_level", "apply_trick_ops", "parse_vary", "build_variants"]


class AblateError(RecipeError):
    """A malformed --vary specification or an unusable recipe for ablation (a RecipeError, so the command line
    reports it as ``error: ...`` with exit code 2)."""


@dataclass
class Variant:
    """One row of an ablation: ``overrides`` on the ablated recipe, or on another ``recipe`` file (``--vary
    recipe=a.yaml,b.yaml``: compare whole set-ups, e.g. TextCNN vs FastText, on the same data)."""

    name: str
    overrides: list[str] = field(default_factory=list)
    recipe: Optional[str] = None


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside ``{}``, ``[]`` and ``()``."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
            if depth < 0:
                raise AblateError(f"unbalanced brackets in {text!r}")
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise AblateError(f"unbalanced brackets in {text!r}")
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip()]


_TRICK_OP = re.compile(r"([+-])\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\{[^{}]*\})?")


def _trick_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else next(iter(spec))


def apply_trick_ops(base: list, ops: str) -> list:
    """Apply ``+name``, ``+name{opts}`` and ``-name`` operations to a recipe's trick list."""
    from ..callbacks.registry import available_callbacks
    from ..tricks import available_tricks

    tricks = list(base)
    pos, ops = 0, ops.strip()
    if not ops:
        raise AblateError("empty tricks variant (use +name or -name)")
    while pos < len(ops):
        m = _TRICK_OP.match(ops, pos)
        if not m:
            raise AblateError(f"tricks variant {ops!r}: expected +name, +name{{opt: value}} or -name at "
                              f"{ops[pos:]!r}")
        sign, name, opts = m.groups()
        if name not in available_tricks() and name not in available_callbacks():  # observers listed under tricks
            near = difflib.get_close_matches(name, available_tricks(), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise AblateError(f"tricks variant {ops!r}: unknown trick {name!r}{hint} (available: "
                              f"{', '.join(available_tricks())})")
        if sign == "+":
            if opts:
                try:
                    parsed = yaml.safe_load(opts)
                except yaml.YAMLError as e:
                    raise AblateError(f"tricks variant {ops!r}: options {opts} are not a YAML mapping: {e}") from None
                if not isinstance(parsed, dict):
                    raise AblateError(f"tricks variant {ops!r}: options {opts} must be a mapping")
                tricks = [t for t in tricks if _trick_name(t) != name] + [{name: parsed}]
            else:
                tricks = [t for t in tricks if _trick_name(t) != name] + [name]
        else:
            if opts:
                raise AblateError(f"tricks variant {ops!r}: -{name} takes no options")
            if not any(_trick_name(t) == name for t in tricks):
                raise AblateError(f"tricks variant {ops!r}: the recipe has no trick {name!r} to remove "
                                  f"(it has {[_trick_name(t) for t in tricks]})")
            tricks = [t for t in tricks if _trick_name(t) != name]
        pos = m.end()
        while pos < len(ops) and ops[pos].isspace():
            pos += 1
    return tricks


def parse_vary(spec: str, base_tricks: list) -> list[Variant]:
    """One ``--vary KEY=V1,V2`` specification → its variants."""
    if "=" not in spec:
        raise AblateError(f"--vary {spec!r} must look like KEY=V1,V2 (e.g. train.learning_rate=0.01,0.005 or "
                          "tricks=+fgm,+rdrop)")
    key, _, values = spec.partition("=")
    key = key.strip()
    vals = split_top_level(values)
    if not vals:
        raise AblateError(f"--vary {spec!r} lists no values")
    out = []
    for v in vals:
        if key == "recipe":
            out.append(_recipe_variant(v))
        elif key == "tricks":
            tricks = apply_trick_ops(base_tricks, v)
            out.append(Variant(f"tricks={v}", [f"tricks={json.dumps(tricks)}"]))
        else:
            out.append(Variant(f"{key}={v}", [f"{key}={v}"]))
    return out


def _recipe_variant(path: str) -> Variant:
    from ..config import RecipeError, resolve_recipe

    try:
        p = resolve_recipe(path)  # a file, or the name of a built-in recipe
    except RecipeError as e:
        raise AblateError(f"--vary recipe={path}: {e}") from None
    return Variant(f"recipe={p.stem}", [], recipe=str(p))


def _raw_recipe(recipe: str | os.PathLike, overrides: Sequence[str]) -> dict:
    from ..config import apply_overrides, load_recipe

    from ..config import resolve_recipe

    load_recipe(recipe, list(overrides))  # validates, with the recipe's own error messages
    data = yaml.safe_load(resolve_recipe(recipe).read_text(encoding="utf-8")) or {}
    return apply_overrides(data, list(overrides))


def build_variants(recipe: str | os.PathLike, vary: Sequence[str], overrides: Sequence[str] = (),
                   grid: bool = False) -> list[Variant]:
    """``[baseline, variant, ...]``; with ``grid`` the cartesian product of the axes. Trick operations of
    several axes compose in grid mode (each applies to the list the previous one produced)."""
    base_tricks = list(_raw_recipe(recipe, overrides).get("tricks") or [])
    variants = [Variant("baseline", [])]
    if not grid:
        seen = {"baseline"}
        for spec in vary:
            for v in parse_vary(spec, base_tricks):
                if v.name in seen:
                    raise AblateError(f"variant {v.name!r} is listed twice")
                seen.add(v.name)
                variants.append(v)
        return _validated(variants, overrides)
    axes = []
    for spec in vary:
        key, _, values = spec.partition("=")
        if "=" not in spec:
            raise AblateError(f"--vary {spec!r} must look like KEY=V1,V2")
        axes.append([(key.strip(), v) for v in split_top_level(values)])
    for combo in itertools.product(*axes):
        tricks, ovr, names, other = list(base_tricks), [], [], None
        for key, v in combo:
            names.append(f"{key}={v}")
            if key == "recipe":
                other = _recipe_variant(v).recipe
                tricks = list(_raw_recipe(other, overrides).get("tricks") or [])
            elif key == "tricks":
                tricks = apply_trick_ops(tricks, v)
            else:
                ovr.append(f"{key}={v}")
        if any(k == "tricks" for k, _ in combo):
            ovr.append(f"tricks={json.dumps(tricks)}")
        variants.append(Variant(" ".join(names), ovr, recipe=other))
    return _validated(variants, overrides)


def _validated(variants: list[Variant], overrides: Sequence[str]) -> list[Variant]:
    """Variants on other recipe files: each file loads with the common overrides (errors name the file) before
    any run starts."""
    from ..config import load_recipe

    for v in variants:
        if v.recipe is not None:
            try:
                load_recipe(v.recipe, list(overrides) + list(v.overrides))
            except RecipeError as e:
                raise AblateError(f"variant {v.name!r} ({v.recipe}): {e}") from None
    return variants


def _slug(variant: Variant) -> str:
    if variant.name == "baseline":
        return "baseline"
    short = re.sub(r"[^A-Za-z0-9._=+-]+", "_", variant.name)[:60].strip("_")
    key = variant.overrides if variant.recipe is None else [variant.recipe] + variant.overrides
    h = hashlib.sha1(json.dumps(key).encode()).hexdigest()[:8]
    return f"{short}-{h}"
