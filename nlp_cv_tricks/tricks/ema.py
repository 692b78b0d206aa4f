"""Exponential moving average of the weights (timm ``ModelEmaV3``), recipe key ``ema``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


from ..engine.events import Trick


class ModelEma(Trick):
    """Exponential moving average of the weights (timm ``ModelEmaV3``).

    Source: Polyak & Juditsky 1992; as used for image models by Tan & Le (EfficientNet, 2019) and timm.
    Expected effect: smoother, often slightly better eval accuracy late in training, above all with noisy
    augmentation (mixup, RandAugment). Cost: one extra copy of the weights in memory, an update per optimizer
    step, and one extra evaluation per evaluation.

    Recipe key ``ema``: ``decay`` (0.9998), ``warmup`` (true: timm's warmup of the decay for the first
    steps), ``use_for_eval`` (false: EMA metrics are added as ``eval_ema/*``; true: evaluation, model selection
    and the saved model use the EMA weights and the raw weights' metrics are logged as ``eval_raw/*``; not
    with ``train.save_steps``). Training always continues on the raw weights. The EMA weights are checkpointed
    as ``ema.safetensors`` next to the trainer state, so a resumed run continues the same average. (Not through
    ``accelerator.register_for_checkpointing``: Accelerate writes registered objects with ``torch.save`` to
    ``custom_checkpoint_<i>.pkl``, numbered by registration order, and reads them back with
    ``weights_only=False``; a checkpoint stays safetensors, and every checkpoint written so far keeps resuming.)
    """

    name = "ema"

    def __init__(self, decay: float = 0.9998, warmup: bool = True, use_for_eval: bool = False):
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"ema.decay must be in (0, 1), got {decay}")
        self.decay, self.warmup, self.use_for_eval = float(decay), bool(warmup), bool(use_for_eval)
        self.ema = None
        self._raw: Optional[dict] = None
        self._state = None
        self._pending_state: Optional[dict] = None

    def on_fit_start(self, trainer):
        from timm.utils import ModelEmaV3

        if self.use_for_eval and trainer.cfg.save_steps:
            raise ValueError("ema.use_for_eval=true leaves the EMA weights in the model from an evaluation until "
                             "the next step, so a checkpoint taken then would resume from them; use "
                             "ema.use_for_eval=false (EMA metrics logged as eval_ema/*) with train.save_steps")
        self._state = trainer
        model = trainer.accelerator.unwrap_model(trainer.model)
        self.ema = ModelEmaV3(model, decay=self.decay, use_warmup=self.warmup)
        if self._pending_state:
            self.ema.module.load_state_dict(self._pending_state)
            self._pending_state = None

    def after_optimizer_step(self, step):
        self._restore(step.state)
        if step.sync_gradients:
            self.ema.update(step.unwrapped_model, step=step.global_step + 1)

    def on_step_start(self, step):
        self._restore(step.state)

    def _restore(self, trainer):
        if self._raw is not None:
            trainer.accelerator.unwrap_model(trainer.model).load_state_dict(self._raw)
            self._raw = None

    def on_eval_end(self, trainer, metrics):
        if self.ema is None:
            return
        model = trainer.accelerator.unwrap_model(trainer.model)
        self._restore(trainer)
        self._raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.ema.module.state_dict())
        ema_metrics = trainer.evaluate()
        if self.use_for_eval:
            # the trainer selects and saves with the EMA weights in place; they are swapped back before the
            # next training step
            for k in list(metrics):
                if k.startswith("eval/"):
                    metrics["eval_raw/" + k[5:]] = metrics.pop(k)
            metrics.update(ema_metrics)
        else:
            self._restore(trainer)
            metrics.update({"eval_ema/" + k[5:]: v for k, v in ema_metrics.items()})

    def on_fit_end(self, trainer):
        # the final weights are the EMA's when they are used for evaluation
        self._raw = None
        if self.use_for_eval and self.ema is not None:
            trainer.accelerator.unwrap_model(trainer.model).load_state_dict(self.ema.module.state_dict())

    def state_dict(self) -> dict:
        """The EMA weights go to ``ema.safetensors`` in the checkpoint directory being written."""
        if self.ema is None or self._state is None:
            return {}
        from safetensors.torch import save_file

        path = Path(self._state.checkpoint_dir) / "ema.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.detach().contiguous().cpu() for k, v in self.ema.module.state_dict().items()}, str(tmp))
        os.replace(tmp, path)
        return {"file": path.name}  # next to trainer_state.json: the run directory can be moved or copied

    def tensors(self) -> dict:
        if self.ema is None:
            return dict(self._pending_state or {})
        return {k: v.detach().clone() for k, v in self.ema.module.state_dict().items()}

    def load_tensors(self, tensors: dict) -> None:
        if self.ema is not None:
            self.ema.module.load_state_dict(tensors)
        else:
            self._pending_state = dict(tensors)

    def load_state_dict(self, state: dict) -> None:
        if not state.get("file"):
            return
        from safetensors.torch import load_file

        # the trainer passes the checkpoint being resumed; older checkpoints stored a full path
        base = state.get("_checkpoint_dir")
        path = Path(base) / Path(state["file"]).name if base else Path(state["file"])
        tensors = load_file(str(path))
        if self.ema is not None:
            self.ema.module.load_state_dict(tensors)
        else:
            self._pending_state = tensors
