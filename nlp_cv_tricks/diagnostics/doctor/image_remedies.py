"""Remedies for ``task: image-classification`` recipes (timm models; the model's options in ``model.kwargs``, the
task's in ``task_options``)."""

from __future__ import annotations

from dataclasses import dataclass

from .records import Diagnosis
from .shared_remedies import _recipe_tricks, _stop_earlier, _train_longer

# default depth (blocks per stage) of the small timm ResNets, for "deepen 2×" on image recipes
_TIMM_RESNET_LAYERS = {"resnet10t": [1, 1, 1, 1], "resnet14t": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2],
                       "resnet18d": [2, 2, 2, 2], "resnet26": [2, 2, 2, 2], "resnet26d": [2, 2, 2, 2],
                       "resnet34": [3, 4, 6, 3], "resnet34d": [3, 4, 6, 3]}


@dataclass
class _ImageRecipe:
    """The parts of an image recipe the remedies read."""

    train: dict
    kw: dict
    margs: dict       # model.kwargs.model_args (timm constructor arguments)
    image: dict       # task_options.image (augmentation)
    name: str
    scratch: bool     # trained from scratch (no pretrained weights)
    lr: float
    tricks_in: list

    @classmethod
    def of(cls, r: dict) -> "_ImageRecipe":
        model = r.get("model") or {}
        kw = model.get("kwargs") or {}
        # task_options.image, or model.kwargs.image: its deprecated spelling in a recipe saved before
        image = (r.get("task_options") or {}).get("image") or kw.get("image") or {}
        return cls(train=r.get("train") or {}, kw=kw, margs=kw.get("model_args") or {}, image=image,
                   name=str(model.get("name", "")).lower(),
                   scratch=bool(model.get("from_scratch")) or not (kw.get("pretrained") or kw.get("pretrained_file")),
                   lr=float((r.get("train") or {}).get("learning_rate", 1e-3)), tricks_in=_recipe_tricks(r))


def _flow(v) -> str:  # a YAML flow list for an override value
    return "[" + ",".join(str(x) for x in v) + "]"


def _image_remedies(diag: Diagnosis, r: dict, add, trick) -> None:
    """Remedies for ``task: image-classification`` recipes (timm models; options in ``model.kwargs`` and
    ``task_options``).

    Underfitting: widen (``model_args.channels`` 2×) or deepen (``model_args.layers`` 2×) the timm model, train
    longer, less regularisation (drop rates, RandAugment, random erasing, mixup) and the activation
    (``model_args.act_layer``). Overfitting: classifier dropout (``drop_rate``), stochastic depth
    (``drop_path_rate``, Huang et al. 2016), RandAugment (Cubuk et al. 2020), random erasing (Zhong et al. 2020),
    mixup/cutmix, label smoothing, then fewer epochs / early stopping / a weight-decay A/B. Not converging: a
    learning-rate search (from 0.01 down when trained from scratch) and a look at the data.
    """
    o = _ImageRecipe.of(r)
    if diag.regime == "underfitting":
        _bigger_image_model(o, add)
        _train_longer(o.train, add)
        _less_image_regularisation(o, add)
        add("activation choice (timm act_layer, ReLU by default in ResNets); look for dead ReLU units with "
            "`nlp-cv-tricks inspect` first", "model.kwargs.model_args.act_layer=silu" if o.scratch else None)
    elif diag.regime == "overfitting":
        _more_image_regularisation(o, add, trick)
        _stop_earlier(diag, o.train, add)
    elif diag.regime == "not_converging":
        _image_learning_rate_search(o, add)


def _bigger_image_model(o: _ImageRecipe, add) -> None:
    """Underfitting: 2× the channels and the blocks per stage of a model trained from scratch."""
    margs = o.margs
    if o.scratch and isinstance(margs.get("channels"), list):
        ch = [2 * int(c) for c in margs["channels"]]
        add(f"widen 2× (channels {margs['channels']} → {ch})", f"model.kwargs.model_args.channels={_flow(ch)}")
    elif o.scratch:
        add("widen 2×: a wider timm model of the same family (e.g. resnet18 → wide_resnet50_2, convnext_atto → "
            "convnext_femto), or model.kwargs.model_args.channels for timm ResNets", None)
    else:
        add("widen/deepen: a pretrained model's shape is fixed — fine-tune a larger pretrained timm model", None,
            note="e.g. model.name=resnet50.a1_in1k with model.kwargs.pretrained=true (online)")
    layers = margs.get("layers") or _TIMM_RESNET_LAYERS.get(o.name)
    if o.scratch and isinstance(layers, (list, tuple)):
        deeper = [2 * int(n) for n in layers]
        add(f"deepen 2× (blocks per stage {list(layers)} → {deeper})", f"model.kwargs.model_args.layers={_flow(deeper)}")
    elif o.scratch:
        add("deepen: a deeper timm model of the same family (e.g. resnet18 → resnet34)", None)


def _less_image_regularisation(o: _ImageRecipe, add) -> None:
    """Underfitting: turn off the drop rates and the augmentation the recipe has."""
    kw, image = o.kw, o.image
    if float(kw.get("drop_path_rate") or 0) > 0:
        add(f"less stochastic depth (drop_path_rate {kw['drop_path_rate']} → 0)", "model.kwargs.drop_path_rate=0.0")
    if float(kw.get("drop_rate") or 0) > 0:
        add(f"less dropout before the classifier (drop_rate {kw['drop_rate']} → 0)", "model.kwargs.drop_rate=0.0")
    if image.get("auto_augment"):
        add(f"weaker augmentation: without RandAugment ({image['auto_augment']})", "task_options.image.auto_augment=null")
    if float(image.get("re_prob") or 0) > 0:
        add(f"weaker augmentation: no random erasing (re_prob {image['re_prob']} → 0)", "task_options.image.re_prob=0.0")
    if "mixup" in o.tricks_in:
        add("mixup/cutmix slows fitting on short schedules: compare without it", None,
            note="remove the mixup entry from tricks")


def _more_image_regularisation(o: _ImageRecipe, add, trick) -> None:
    """Overfitting: dropout, stochastic depth, RandAugment, random erasing, mixup/cutmix, label smoothing."""
    kw, image = o.kw, o.image
    cur = float(kw.get("drop_rate") or 0.0)
    add(f"dropout before the classifier {cur:g} → {min(cur + 0.2, 0.5):g}",
        f"model.kwargs.drop_rate={min(cur + 0.2, 0.5):g}")
    dp = float(kw.get("drop_path_rate") or 0.0)
    add(f"stochastic depth (drop_path_rate {dp:g} → {min(dp + 0.1, 0.4):g}; Huang et al. 2016)",
        f"model.kwargs.drop_path_rate={min(dp + 0.1, 0.4):g}")
    if not image.get("auto_augment"):
        add("RandAugment (Cubuk et al. 2020)", "task_options.image.auto_augment=rand-m9-mstd0.5")
    if not float(image.get("re_prob") or 0):
        add("random erasing (Zhong et al. 2020)", "task_options.image.re_prob=0.25")
    trick("mixup/cutmix (Zhang et al. 2018; Yun et al. 2019) with timm's soft-target loss", "mixup",
          note="pays off on longer schedules")
    if "mixup" not in o.tricks_in:
        trick("label smoothing (Szegedy et al. 2016)", "label_smoothing")


def _image_learning_rate_search(o: _ImageRecipe, add) -> None:
    """Not converging: a learning-rate search, warm-up, a look at the data."""
    lr = o.lr
    if o.scratch:
        add("learning-rate search from 0.01 downwards by halving", "train.learning_rate=0.01",
            vary="train.learning_rate=0.01,0.005,0.0025,0.00125")
    else:
        add(f"learning-rate search around {lr:g}: double and halve", f"train.learning_rate={lr * 2:.3g}",
            vary=f"train.learning_rate={lr * 2:.3g},{lr:.3g},{lr / 2:.3g}")
    if not o.train.get("warmup_ratio") and not o.train.get("warmup_steps"):
        add("warm up the learning rate", "train.warmup_ratio=0.1")
    add("check the data: labels misaligned with the images, or a transform that destroys them (mean/std, "
        "input_size)? `nlp-cv-tricks plot-embeddings RUN_DIR` shows whether the classes separate", None)
