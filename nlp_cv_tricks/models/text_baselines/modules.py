"""The text baselines as plain ``nn.Module``\\ s: what the package trains.

Each family's layers (``layers_<family>.py``) carried by ``nn.Module`` instead of ``transformers.PreTrainedModel``.
Importing ``transformers.modeling_utils`` costs about 2 s on a CPU machine (its fp8, sharding and
object-detection-loss imports pull in ``torch._dynamo``, ``torch.distributed.tensor`` and scipy), longer than a
whole FastText training takes to start; a recipe run does not need it. The module has the same parameters, the
same initialisation (same seed, same weights) and the same forward as the ``PreTrainedModel`` class, and
:meth:`BaselineModule.save_pretrained` writes what that class's ``save_pretrained`` writes (``config.json`` with its
``auto_map``, ``model.safetensors``, the family's code), so a saved model loads with
``AutoModelForSequenceClassification.from_pretrained`` as before. :meth:`BaselineModule.to_pretrained_model` gives
the ``PreTrainedModel`` itself (for ``transformers.Trainer``, ``push_to_hub``, ...)."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .layers_base import TextBaselineConfig
from .layers_dpcnn import DPCNNLayers
from .layers_fasttext import FastTextLayers
from .layers_textcnn import TextCNNLayers
from .layers_textrcnn import TextRCNNLayers
from .layers_textrnn import TextRNNLayers

__all__ = ["BaselineModule", "FastTextModule", "TextCNNModule", "DPCNNModule", "TextRNNModule", "TextRCNNModule",
           "MODULE_CLASSES"]

_HERE = Path(__file__).resolve().parent


class BaselineModule(nn.Module):
    """The ``nn.Module`` carrier of a baseline family's layers (subclasses list the family's ``*Layers`` first).

    ``family`` names the files and the ``PreTrainedModel`` class this module saves as: ``modeling_<family>.py``,
    class ``<Name>ForSequenceClassification``."""

    family = ""
    pretrained_class_name = ""
    main_input_name = "input_ids"

    def __init__(self, config: TextBaselineConfig):
        super().__init__()
        self.config = config
        self._build(config)
        self.post_init()
        self._apply_freeze()

    def post_init(self) -> None:
        """The weight init of ``PreTrainedModel.post_init``: ``_init_weights`` on every module, children before
        their parent, without autograd (the same calls in the same order: the same weights for the same seed)."""
        with torch.no_grad():
            self.apply(self._init_weights)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def save_pretrained(self, save_directory: str | os.PathLike, state_dict: Optional[dict] = None,
                        safe_serialization: bool = True, **kwargs) -> None:
        """Write what the family's ``PreTrainedModel.save_pretrained`` writes: ``config.json`` (``dtype``,
        ``architectures`` and the ``auto_map`` of the config and model classes), the family's code files and
        ``model.safetensors`` (``metadata={"format": "pt"}``). ``state_dict``: weights to write instead of the
        module's own. Other ``save_pretrained`` options (sharding, ``push_to_hub``) are not supported: use
        :meth:`to_pretrained_model` for them."""
        if not safe_serialization:
            raise ValueError(f"{type(self).__name__}.save_pretrained writes safetensors only")
        if kwargs:
            raise TypeError(f"{type(self).__name__}.save_pretrained: unsupported options {sorted(kwargs)}; call "
                            "to_pretrained_model().save_pretrained(...) for them")
        from safetensors.torch import save_file
        from transformers.dynamic_module_utils import get_relative_import_files

        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        config = self.config
        config.dtype = str(self.dtype).split(".")[1]
        config.architectures = [self.pretrained_class_name]
        modeling = _HERE / f"modeling_{self.family}.py"
        for f in (modeling, *get_relative_import_files(str(modeling))):
            shutil.copyfile(f, out / Path(f).name)
        auto_map = dict(getattr(config, "auto_map", None) or {})
        auto_map["AutoModelForSequenceClassification"] = f"modeling_{self.family}.{self.pretrained_class_name}"
        config.auto_map = auto_map
        config.save_pretrained(out)  # adds the config class to the auto_map
        weights = self.state_dict() if state_dict is None else state_dict
        save_file({k: v.detach().contiguous() for k, v in weights.items()}, str(out / "model.safetensors"),
                  metadata={"format": "pt"})

    def to_pretrained_model(self):
        """The family's ``PreTrainedModel`` with this module's config and weights (imports
        ``transformers.modeling_utils``)."""
        cls = getattr(importlib.import_module(f"{__package__}.modeling_{self.family}"), self.pretrained_class_name)
        with torch.random.fork_rng(devices=[]):  # its init draws are overwritten: leave the caller's RNG as it was
            model = cls(self.config)
        model.load_state_dict(self.state_dict())
        model._apply_freeze()
        return model.train(self.training)


class FastTextModule(FastTextLayers, BaselineModule):
    family, pretrained_class_name = "fasttext", "FastTextForSequenceClassification"


class TextCNNModule(TextCNNLayers, BaselineModule):
    family, pretrained_class_name = "textcnn", "TextCNNForSequenceClassification"


class DPCNNModule(DPCNNLayers, BaselineModule):
    family, pretrained_class_name = "dpcnn", "DPCNNForSequenceClassification"


class TextRNNModule(TextRNNLayers, BaselineModule):
    family, pretrained_class_name = "textrnn", "TextRNNForSequenceClassification"


class TextRCNNModule(TextRCNNLayers, BaselineModule):
    family, pretrained_class_name = "textrcnn", "TextRCNNForSequenceClassification"


MODULE_CLASSES = [TextCNNModule, FastTextModule, DPCNNModule, TextRNNModule, TextRCNNModule]
