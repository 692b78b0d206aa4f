"""The remedies of the tuning tips for a diagnosed regime, as recipe overrides checked against this build."""

from __future__ import annotations

from typing import Optional

from ...models.baseline_names import BASELINE_ALIASES
from .image_remedies import _image_remedies
from .records import Diagnosis, Remedy
from .shared_remedies import _recipe_tricks, _stop_earlier, _train_longer

__all__ = ["prescribe"]

# this package's own text baselines (models/text_baselines.py): width and depth options per architecture
_OWN_MODELS = {
    "textcnn": ("num_filters", 100, None, None), "fasttext": ("hidden_size", 0, None, None),
    "dpcnn": ("num_filters", 250, "num_blocks", None), "textrnn": ("hidden_size", 128, "num_layers", 2),
    "textrnn_att": ("hidden_size", 128, "num_layers", 2), "textrcnn": ("hidden_size", 256, "num_layers", 1),
}


class _Prescription:
    """The remedies written so far for one recipe, and the recipe parts they are read from."""

    def __init__(self, recipe: Optional[dict], model_config: Optional[dict]):
        self.r = recipe or {}
        self.train = self.r.get("train") or {}
        self.model = self.r.get("model") or {}
        self.mc = model_config or {}
        name = str(self.model.get("name", "")).lower()
        self.arch = BASELINE_ALIASES.get(name, name)
        self.own = self.arch in _OWN_MODELS
        self.kw = self.model.get("kwargs") or {}
        self.co = self.model.get("config_overrides") or {}
        self.lr = float(self.train.get("learning_rate", 5e-5))
        self.out: list[Remedy] = []

    def add(self, why, override, vary=None, note=""):
        self.out.append(Remedy(why=why, override=override, vary=vary if vary is not None else override, note=note))

    def trick(self, why, name, note=""):
        # `tricks+=name` extends the recipe's list and keeps the options of the tricks already there
        self.add(why, f"tricks+={name}", vary=f"tricks=+{name}", note=note)
        if name in _recipe_tricks(self.r):
            self.out[-1].available = False
            self.out[-1].note = (note + "; " if note else "") + f"{name} is already in the recipe"


def prescribe(diag: Diagnosis, recipe: Optional[dict] = None, model_config: Optional[dict] = None) -> list[Remedy]:
    """The remedies of the tips for ``diag.regime`` (and for an imbalance finding), in order, as overrides.

    ``recipe`` is the run's resolved recipe (``recipe.yaml``), used to pick the keys and the values (current
    dropout + 0.1, half the learning rate, the epoch of the best dev score, …); ``model_config`` is the saved
    model's ``config.json`` (which dropout/activation keys it has). Each override is checked against this
    build's recipe schema and trick registry when they are importable; one that is not is kept with
    ``available=False`` and a note.
    """
    rx = _Prescription(recipe, model_config)
    regime = diag.regime
    from ...tasks import task_modality

    image = task_modality(str(rx.r.get("task", ""))) == "image"
    if image and regime in ("underfitting", "overfitting", "not_converging"):
        _image_remedies(diag, rx.r, rx.add, rx.trick)
    elif regime == "underfitting":
        _bigger_model(rx)
        _train_longer(rx.train, rx.add)
        rx.add("data augmentation (more varied training text)", None,
               note="no augmentation trick in this build; augment the training file (e.g. EDA, back-translation)")
        _activation(rx)
    elif regime == "overfitting":
        _regularise(rx)
        rx.trick("R-Drop: two forwards, symmetric KL between them (Liang et al. 2021)", "rdrop")
        _stop_earlier(diag, rx.train, rx.add)
    elif regime == "diverging":
        _calm_down(rx)
    elif regime == "not_converging":
        _search_learning_rate(rx)
    elif regime == "not_converged":
        _train_longer(rx.train, rx.add)
        lr = rx.lr
        rx.add(f"a higher learning rate ({lr:g} → {2 * lr:.3g}): a run still improving at its end may also be "
               f"moving too slowly", f"train.learning_rate={2 * lr:.3g}",
               vary=f"train.learning_rate={2 * lr:.3g},{4 * lr:.3g}",
               note=f"search it with `nlp-cv-tricks lr-sweep RECIPE --start {4 * lr:.3g} --patience 2` (halves from "
                    f"4× the current rate until the dev metric stops improving)")
    if diag.imbalanced or regime == "imbalanced":
        _imbalance(rx)
    _check(rx.out, rx.r)
    return rx.out


def _bigger_model(rx: _Prescription) -> None:
    """Underfitting: widen and deepen (own baselines: their options; from scratch: the config; pretrained: a
    larger checkpoint)."""
    kw, co, mc, arch = rx.kw, rx.co, rx.mc, rx.arch
    if rx.own:
        wkey, wdef, dkey, ddef = _OWN_MODELS[arch]
        w = int(kw.get(wkey, wdef)) or 128
        new_w = 2 * w if int(kw.get(wkey, wdef)) else w
        rx.add(f"widen 2× ({wkey} {kw.get(wkey, wdef)} → {new_w})", f"model.kwargs.{wkey}={new_w}")
        if dkey:
            d = kw.get(dkey, ddef)
            if d is None:
                rx.add(f"deepen: more {dkey}", f"model.kwargs.{dkey}=4", note="default depth follows the length")
            else:
                rx.add(f"deepen 2× ({dkey} {d} → {2 * int(d)})", f"model.kwargs.{dkey}={2 * int(d)}")
        else:
            rx.add(f"deepen: {arch} has a fixed depth; a deeper baseline is dpcnn", None,
                   note="set model.name=dpcnn with its own kwargs (num_filters, num_blocks): not a one-key change")
    elif rx.model.get("from_scratch"):
        hs = int(co.get("hidden_size", mc.get("hidden_size", 256)))
        nl = int(co.get("num_hidden_layers", mc.get("num_hidden_layers", 4)))
        heads = int(co.get("num_attention_heads", mc.get("num_attention_heads", 4)))
        rx.add(f"widen 2× (hidden {hs} → {2 * hs})", f"model.config_overrides.hidden_size={2 * hs}",
               note=f"keep hidden_size divisible by num_attention_heads={heads}")
        rx.add(f"deepen 2× ({nl} → {2 * nl} layers)", f"model.config_overrides.num_hidden_layers={2 * nl}")
    else:
        rx.add("widen/deepen 2×: a pretrained encoder's shape is fixed — use a larger checkpoint",
               "model.name=bert-base-uncased", note="any larger encoder (Hub id or local path)")


def _activation(rx: _Prescription) -> None:
    """Underfitting: the activation choice (changed only where the model is trained from scratch)."""
    act = rx.kw.get("activation") if rx.own else rx.co.get("hidden_act", rx.mc.get("hidden_act"))
    if rx.own:
        rx.add("activation choice: the baselines use ReLU inside and never on the output; look for dead units "
               "with `nlp-cv-tricks inspect` before changing the architecture", None)
    elif rx.model.get("from_scratch"):
        rx.add(f"activation choice (now {act or '?'})", "model.config_overrides.hidden_act=gelu"
               if act != "gelu" else "model.config_overrides.hidden_act=relu")
    else:
        rx.add(f"activation choice: a pretrained encoder keeps {act or 'its activation'}; check the head has no "
               "ReLU before the output (nlp-cv-tricks inspect)", None)


def _regularise(rx: _Prescription) -> None:
    """Overfitting: more dropout, BatchNorm, dropout on the embeddings."""
    kw, co, mc = rx.kw, rx.co, rx.mc
    if rx.own:
        cur = float(kw.get("dropout", 0.0 if rx.arch == "fasttext" else 0.5))
        rx.add(f"dropout {cur:g} → {min(cur + 0.2, 0.7):g}", f"model.kwargs.dropout={min(cur + 0.2, 0.7):g}")
        if kw.get("norm", "none") != "batch":
            rx.add("BatchNorm on the hidden features", "model.kwargs.norm=batch")
        ecur = float(kw.get("embedding_dropout", 0.0))
        rx.add(f"dropout on the embeddings {ecur:g} → {min(ecur + 0.2, 0.5):g}",
               f"model.kwargs.embedding_dropout={min(ecur + 0.2, 0.5):g}")
    else:
        key = "hidden_dropout_prob" if "hidden_dropout_prob" in mc or not mc else (
            "dropout" if "dropout" in mc else "hidden_dropout_prob")
        cur = float(co.get(key, mc.get(key, 0.1)))
        rx.add(f"dropout {cur:g} → {min(cur + 0.1, 0.5):g} ({key})", f"model.config_overrides.{key}={min(cur + 0.1, 0.5):g}")
        rx.add("BatchNorm: only for this package's own models (transformers use LayerNorm)", None)
        rx.trick("dropout on the embedding output", "embedding_dropout")


def _calm_down(rx: _Prescription) -> None:
    """Diverging: a lower learning rate, gradient clipping, warm-up, no fp16."""
    train, lr = rx.train, rx.lr
    rx.add(f"halve the learning rate ({lr:g} → {lr / 2:g}); keep halving while it diverges",
           f"train.learning_rate={lr / 2:.3g}", vary=f"train.learning_rate={lr / 2:.3g},{lr / 4:.3g},{lr / 8:.3g}")
    if train.get("max_grad_norm") in (None, 0):
        rx.add("clip gradients", "train.max_grad_norm=1.0")
    if not train.get("warmup_ratio") and not train.get("warmup_steps"):
        rx.add("warm up the learning rate", "train.warmup_ratio=0.1")
    if str(train.get("mixed_precision", "no")) == "fp16":
        rx.add("fp16 overflow: try bf16 or full precision", "train.mixed_precision=bf16")


def _search_learning_rate(rx: _Prescription) -> None:
    """Not converging: a learning-rate search, initialisation, warm-up, a look at the data."""
    lr = rx.lr
    if rx.own or rx.model.get("from_scratch"):
        rx.add("learning-rate search from 0.01 downwards by halving", "train.learning_rate=0.01",
               vary="train.learning_rate=0.01,0.005,0.0025,0.00125")
        rx.trick("Xavier / truncated-normal initialisation speeds up convergence", "init",
                 note="defaults: scheme xavier_uniform on the head; for a model trained from scratch use "
                      "{init: {scheme: trunc_normal, target: all}}")
    else:
        rx.add(f"learning-rate search around {lr:g}: double and halve", f"train.learning_rate={lr * 2:.3g}",
               vary=f"train.learning_rate={lr * 2:.3g},{lr:.3g},{lr / 2:.3g}")
    if not rx.train.get("warmup_ratio") and not rx.train.get("warmup_steps"):
        rx.add("warm up the learning rate", "train.warmup_ratio=0.1")
    rx.add("check the data: labels shuffled or misaligned with the text? (nlp-cv-tricks probe-cls on the data)", None)


def _imbalance(rx: _Prescription) -> None:
    """Imbalanced data: focal loss, class weights, selection on macro-F1/AUC, and watching the minority."""
    rx.trick("focal loss (Lin et al. 2017): tune gamma in steps of 10× (0.1, 1, 10)", "focal_loss")
    rx.trick("class weights derived from the label distribution", "class_weights")
    metric = str(rx.train.get("metric", "accuracy"))
    if metric in ("accuracy", "loss", "eval/accuracy", "eval/loss"):
        rx.add("select and early-stop on macro-F1 (or AUC), not loss/accuracy", "train.metric=f1_macro",
               vary="train.metric=f1_macro,auc")
    # an observer: it changes no number, so there is nothing to vary
    rx.add("keep watching minority recall/F1 and AUC during training", "callbacks+=imbalance_watch", vary="")


def _check(remedies: list[Remedy], recipe: dict) -> None:
    """Mark overrides this build cannot apply (unknown recipe key or unregistered trick)."""
    try:
        from ...config import RecipeError, apply_overrides
    except ImportError:  # pragma: no cover - config not in this build
        return
    from ...callbacks.registry import available_callbacks
    from ...tricks.registry import available_tricks

    # the static tables: nothing is imported
    tables = {"tricks": ("trick", set(available_tricks())), "callbacks": ("callback", set(available_callbacks()))}
    for rem in remedies:
        if rem.override is None or not rem.available:
            rem.available = False
            continue
        key = rem.override.split("+=", 1)[0]
        if "+=" in rem.override and key in tables:
            kind, known = tables[key]
            name = rem.override.split("+=", 1)[1]
            if name not in known:
                rem.available = False
                rem.note = (rem.note + "; " if rem.note else "") + f"{kind} {name!r} is not registered in this build"
            continue
        try:
            apply_overrides(recipe or {}, [rem.override])
        except RecipeError as e:
            rem.available = False
            rem.note = (rem.note + "; " if rem.note else "") + str(e)
