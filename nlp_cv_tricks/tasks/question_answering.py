"""Extractive question answering as a trainer task (recipe ``task: question-answering``).

What it plugs into the trainer (:mod:`nlp_cv_tricks.engine.task` interface):

* :class:`QATask` — forward without labels, the BERT span loss, span logits for criterion-replacing tricks,
  and an evaluation that gathers start/end logits of every feature (padded to ``max_length`` so processes can
  be gathered), runs the n-best post-processing of :mod:`nlp_cv_tricks.data.mrc_postprocess` and scores with
  the official metric (:mod:`nlp_cv_tricks.metrics.squad`: ``squad``, ``squad_v2`` or ``cmrc2018``). Each
  evaluation also writes ``predictions.json`` / ``nbest_predictions.json`` (and ``null_odds.json`` for v2) under
  ``<run dir>/eval_predictions/step_<N>/``.
* :func:`build_qa_components` — the task builder registered as ``question-answering``: loads SQuAD-format data
  (``data.train_file`` / ``data.dev_file`` JSON, or ``data.hub_name`` with ``train_split`` / ``dev_split``),
  optionally splits one file by article, builds the tokenizer and an MRC model
  (:func:`nlp_cv_tricks.models.mrc_heads.build_qa_model`) and tokenizes into features.
* :func:`evaluate_qa_file` / :func:`predict_qa_file` — ``eval`` / ``predict`` on SQuAD files with a saved model
  (reached through :class:`QATask`'s saved-model methods; ``qa-eval`` / ``qa-predict`` are aliases of them).

QA options live under ``task_options`` of the recipe (``model.kwargs``, their deprecated spelling, is still
read), all optional:
``head`` (``linear`` | ``biattention`` | ``coattention``), ``head_hidden_size``, ``head_dropout``,
``num_modeling_layers``, ``doc_stride`` (128), ``max_query_length`` (64), ``n_best_size`` (20),
``max_answer_length`` (30), ``version_2_with_negative`` (false), ``null_score_diff_threshold`` (0.0),
``qa_metric`` (``squad``),
``split_by_article`` (``[n_train, n_eval]``: both sides from ``data.train_file``, split by article title with
``split_seed``, default 0), ``char_vocab_min_freq`` (for ``model.name: char-bert-tiny``). ``data.max_length``
is the feature length. They are saved with the model (``config.nct_qa``), so ``eval``/``predict`` reuse them.

``model.name: char-bert-tiny`` trains a small BERT from scratch with a character vocabulary built from the
training data (Chinese BERTs tokenise Chinese per character); it runs offline and is what the Chinese recipe
uses when no pretrained Chinese encoder is at hand (expect low scores: nothing is pretrained).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RecipeError, saved_task_options, split_task_options
from ..engine.task import CardModel, EvalContext, InferenceRequest, Task
from ..metrics.squad import squad_metrics
from ..models.mrc_heads import HEADS, build_qa_model, register_auto_classes, span_loss
from ..data.mrc import load_squad, split_by_article, tokenize_eval, tokenize_train
from ..data.vocab import build_char_tokenizer
from ..data.mrc_postprocess import postprocess_qa_predictions

__all__ = [
    "QAOptions",
    "QATask",
    "QACollator",
    "build_qa_components",
    "prepare_eval_dataset",
    "build_char_tokenizer",
    "evaluate_qa_file",
    "predict_qa_file",
    "is_qa_model_dir",
    "predict_qa",
    "check_qa_output_dir",
]

QA_HEADS = {"nct-linear-qa": "a linear start/end layer (the BERT baseline)",
            "nct-biattention-qa": "a BiDAF bi-attention head (Seo et al. 2017)",
            "nct-coattention-qa": "a DCN co-attention head (Xiong et al. 2017)"}

_NEG = -1e4


@dataclasses.dataclass
class QAOptions:
    head: str = "linear"
    head_hidden_size: Optional[int] = None
    head_dropout: float = 0.1
    num_modeling_layers: int = 1
    mask_non_context: bool = True
    max_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0
    qa_metric: str = "squad"
    split_by_article: Optional[list] = None
    split_seed: int = 0
    char_vocab_min_freq: int = 1

    # the options read from model.kwargs before task_options existed (that spelling is still read): all but
    # max_length (data.max_length)
    LEGACY_KEYS: ClassVar[tuple[str, ...]] = (
        "head", "head_hidden_size", "head_dropout", "num_modeling_layers", "mask_non_context", "doc_stride",
        "max_query_length", "n_best_size", "max_answer_length", "version_2_with_negative", "null_score_diff_threshold",
        "qa_metric", "split_by_article", "split_seed", "char_vocab_min_freq")

    @classmethod
    def from_recipe(cls, recipe) -> "QAOptions":
        """The options of a recipe's ``task_options`` (``model.kwargs``, the deprecated spelling, is still read);
        an unknown key is an error naming it, the nearest option and the valid ones."""
        src = recipe.source or "recipe"
        opts, rest = split_task_options(recipe.task_options, recipe.model.kwargs, cls.LEGACY_KEYS, f"{src}: ")
        known = sorted({f.name for f in dataclasses.fields(cls)} - {"max_length"})
        for section, given in (("model.kwargs", rest or {}), ("task_options", opts)):
            unknown = sorted(set(given) - set(known), key=str)
            if unknown:
                near = difflib.get_close_matches(str(unknown[0]), known, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise RecipeError(f"{src}: unknown question-answering option {section}.{unknown[0]}{hint} "
                                  f"(task_options keys: {', '.join(known)})")
        opts = cls(**opts, max_length=recipe.data.max_length)
        opts.validate(src)
        return opts

    def validate(self, where: str = "QA options") -> None:
        if self.head not in HEADS:
            raise RecipeError(f"{where}: task_options.head={self.head!r} is not one of {sorted(HEADS)}")
        if self.qa_metric not in ("squad", "squad_v2", "cmrc2018"):
            raise RecipeError(f"{where}: task_options.qa_metric={self.qa_metric!r} is not one of "
                             f"['cmrc2018', 'squad', 'squad_v2']")
        if not 0 < self.doc_stride < self.max_length - self.max_query_length - 3:
            raise RecipeError(f"{where}: task_options.doc_stride={self.doc_stride} must be in (0, data.max_length - "
                             f"max_query_length - 3 = {self.max_length - self.max_query_length - 3})")
        if self.split_by_article is not None and (len(self.split_by_article) != 2
                                                  or any(int(x) < 1 for x in self.split_by_article)):
            raise RecipeError(f"{where}: task_options.split_by_article must be [n_train_articles, n_eval_articles]")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class QACollator:
    """Pads ``input_ids`` / ``attention_mask`` / ``token_type_ids`` (tokenizer's pad id, right padding) and
    stacks the integer columns (``start_positions``, ``end_positions``, ``feature_index``)."""

    def __init__(self, tokenizer, pad_to_multiple_of: Optional[int] = None):
        from transformers import DataCollatorWithPadding

        self._pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict:
        drop = ("example_id", "offset_mapping", "context_mask")
        return self._pad([{k: v for k, v in f.items() if k not in drop} for f in features])


class QATask(Task):
    """Span extraction: labels are ``start_positions`` / ``end_positions``.

    For tricks that replace the criterion (label smoothing, focal loss), ``logits_of`` returns the start and
    end logits stacked along the batch (``(2B, L)``) and ``labels_of`` the positions in the same order, so a
    class-style loss over positions is exactly the BERT span loss family.

    Evaluation needs the examples and (offset-carrying) features of the evaluated set: pass them here or with
    :meth:`set_eval_data`; the eval dataset given to the trainer is :func:`prepare_eval_dataset`'s output.
    """

    name = "question-answering"
    description = "extractive question answering"
    pipeline_tag = "question-answering"
    auto_class = "AutoModelForQuestionAnswering"
    eval_data_hint = "SQUAD.json"

    label_keys = ("start_positions", "end_positions")
    _non_inputs = ("start_positions", "end_positions", "feature_index", "example_id", "offset_mapping")

    def __init__(self, options: QAOptions, eval_examples=None, eval_features=None):
        self.options = options
        self.eval_examples = eval_examples
        self.eval_features = eval_features
        self.last_predictions = None

    def set_eval_data(self, examples, features) -> None:
        self.eval_examples, self.eval_features = examples, features

    def labels_of(self, batch: dict) -> Optional[torch.Tensor]:
        if "start_positions" not in batch:
            return None
        return torch.cat([batch["start_positions"].view(-1), batch["end_positions"].view(-1)])

    def model_inputs(self, batch: dict) -> dict:
        return {k: v for k, v in batch.items() if k not in self._non_inputs}

    def logits_of(self, outputs: Any) -> torch.Tensor:
        return torch.cat([outputs.start_logits, outputs.end_logits], dim=0)

    def default_loss(self, outputs: Any, batch: dict) -> torch.Tensor:
        return span_loss(outputs.start_logits, outputs.end_logits, batch["start_positions"], batch["end_positions"])

    def eval_outputs(self, outputs: Any, batch: dict) -> tuple:
        if "feature_index" not in batch:
            raise ValueError("QA evaluation batches need 'feature_index' (build the eval set with "
                             "prepare_eval_dataset)")
        pad = self.options.max_length - outputs.start_logits.size(1)
        if pad < 0:
            raise ValueError(f"eval batch length {outputs.start_logits.size(1)} > max_length {self.options.max_length}")
        start = F.pad(outputs.start_logits.float(), (0, pad), value=_NEG)
        end = F.pad(outputs.end_logits.float(), (0, pad), value=_NEG)
        return start, end, batch["feature_index"]

    def compute_metrics(self, gathered: list[tuple], context: Optional[EvalContext] = None) -> dict:
        if self.eval_examples is None or self.eval_features is None:
            raise ValueError("QATask.compute_metrics: no eval examples/features (call set_eval_data)")
        start = np.concatenate([g[0] for g in gathered])
        end = np.concatenate([g[1] for g in gathered])
        index = np.concatenate([g[2] for g in gathered]).astype(np.int64)
        n = len(self.eval_features)
        if sorted(index.tolist()) != list(range(n)):
            raise ValueError(f"QA evaluation gathered {len(index)} feature rows for {n} features; eval dataset and "
                             f"task eval data do not match")
        order = np.argsort(index)
        start, end = start[order], end[order]
        output_dir = None
        if context is not None and context.output_dir is not None:
            output_dir = os.path.join(str(context.output_dir), "eval_predictions", f"step_{context.step}")
            # listed in the run manifest: output.overwrite removes it
            context.record_output(f"eval_predictions/step_{context.step}", "tree")
        o = self.options
        preds = postprocess_qa_predictions(
            self.eval_examples, self.eval_features, start, end, version_2_with_negative=o.version_2_with_negative,
            n_best_size=o.n_best_size, max_answer_length=o.max_answer_length,
            null_score_diff_threshold=o.null_score_diff_threshold, output_dir=output_dir)
        self.last_predictions = preds
        na = preds.null_odds if o.version_2_with_negative else None
        metrics = squad_metrics(self.eval_examples, preds, metric=o.qa_metric, na_probs=na)
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}

    # ---- a saved model -------------------------------------------------------------------------------------------
    @classmethod
    def recognizes(cls, model_dir: Path) -> bool:
        return is_qa_model_dir(str(model_dir))

    @classmethod
    def load_for_inference(cls, model_dir: str):
        """``(model, tokenizer, options)`` of a saved MRC model (or another ``*ForQuestionAnswering`` checkpoint;
        its options are then the defaults)."""
        return _load_qa_model_dir(model_dir)

    @classmethod
    def preprocess_for_inference(cls, loaded, data, request: Optional[InferenceRequest] = None):
        """``(features, model-input dataset)`` of SQuAD-format examples: question + context windows as in
        training."""
        _, tokenizer, options = loaded
        features = tokenize_eval(data, tokenizer, options.max_length, options.doc_stride,
                                 max_query_length=options.max_query_length)
        return features, prepare_eval_dataset(features)

    @classmethod
    def evaluate(cls, request: InferenceRequest) -> dict:
        return evaluate_qa_file(request.model_dir, request.data, request.metric, request.batch_size,
                                request.predictions_dir, request.overwrite)

    @classmethod
    def predict(cls, request: InferenceRequest) -> int:
        return predict_qa_file(request.model_dir, request.data, request.out, request.batch_size, request.overwrite)

    @classmethod
    def predict_message(cls, request: InferenceRequest, n: int) -> str:
        return f"wrote predictions.json and nbest_predictions.json to {request.out}"

    # ---- the model card ------------------------------------------------------------------------------------------
    @classmethod
    def card_model(cls, config: dict, recipe: dict) -> CardModel:
        from ._card import transformers_card_model

        facts = transformers_card_model(config, recipe)
        kwargs = saved_task_options(recipe, QAOptions.LEGACY_KEYS)
        qa = config.get("nct_qa") or {}
        length = qa.get("max_length") or (recipe.get("data") or {}).get("max_length")
        stride = qa.get("doc_stride", kwargs.get("doc_stride"))
        query = qa.get("max_query_length", kwargs.get("max_query_length"))
        if facts.architecture in QA_HEADS:
            facts.origin += f", with {QA_HEADS[facts.architecture]} on top of the encoder"
        facts.inputs.append(f"question + context windows of at most {length} tokens"
                            + (f"; longer contexts are split into overlapping windows (stride {stride} tokens)"
                               if stride else "")
                            + (f"; questions cut to {query} tokens" if query else ""))
        return facts

    @classmethod
    def card_usage(cls, repo_id: str, model: CardModel) -> list[str]:
        from .text_classification import own_code_note

        lines = super().card_usage(repo_id, model)[:-2]  # without the closing fence
        lines += ['inputs = tokenizer("Who wrote it?", "The book was written by Ann.", return_tensors="pt")',
                  "out = model(**inputs)  # start_logits / end_logits over the tokens", "```", ""]
        return lines + ([own_code_note(model)] if model.own_code else [])

    @classmethod
    def card_limitations(cls, model: CardModel, max_length) -> list[str]:
        return ["- Answers are spans of the given context; the model cannot answer from outside knowledge."]


def prepare_eval_dataset(features):
    """Model-input view of eval features: drops ``example_id`` / ``offset_mapping`` and adds ``feature_index``."""
    ds = features.remove_columns([c for c in ("example_id", "offset_mapping", "context_mask")
                                  if c in features.column_names])
    return ds.add_column("feature_index", list(range(len(ds))))


# ----------------------------------------------------------------------------------------------------------
# tokenizer / model construction
# ----------------------------------------------------------------------------------------------------------
def _resolve_model_dir(path: str) -> Optional[Path]:
    from ..utils.model_dir import resolve_model_dir

    try:
        return resolve_model_dir(path)
    except FileNotFoundError:
        return None


def is_qa_model_dir(path: str) -> bool:
    """True when ``path`` (a model directory, or a run directory with ``best/`` or ``final/``) holds one of this
    module's MRC models: what ``eval`` / ``predict`` can use to dispatch to :func:`evaluate_qa_file` /
    :func:`predict_qa_file`."""
    d = _resolve_model_dir(path)
    if d is None:
        return False
    try:
        model_type = json.loads((d / "config.json").read_text(encoding="utf-8")).get("model_type", "")
    except (json.JSONDecodeError, OSError):
        return False
    return model_type in {c.model_type for c, _ in HEADS.values()}


def _build_model_and_tokenizer(model_cfg, opts: QAOptions, train_texts):
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer, BertConfig

    from ..models.factory import resolve_model_name

    register_auto_classes()
    head_kw = dict(head_hidden_size=opts.head_hidden_size, head_dropout=opts.head_dropout,
                   num_modeling_layers=opts.num_modeling_layers, mask_non_context=opts.mask_non_context)
    if model_cfg.name == "char-bert-tiny":
        tok = build_char_tokenizer(train_texts, min_freq=opts.char_vocab_min_freq)
        enc = BertConfig(vocab_size=len(tok), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=256, max_position_embeddings=max(512, opts.max_length))
        for k, v in (model_cfg.config_overrides or {}).items():
            setattr(enc, k, v)
        model = build_qa_model(enc, head=opts.head, sep_token_id=tok.sep_token_id, **head_kw)
    else:
        path = resolve_model_name(model_cfg.name)
        tok = AutoTokenizer.from_pretrained(resolve_model_name(model_cfg.tokenizer or model_cfg.name),
                                            revision=model_cfg.revision)
        if is_qa_model_dir(path):  # continue training a saved MRC model
            model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
        else:
            enc = AutoConfig.from_pretrained(path, revision=model_cfg.revision)
            for k, v in (model_cfg.config_overrides or {}).items():
                if not hasattr(enc, k):
                    raise ValueError(f"model.config_overrides.{k}: {type(enc).__name__} has no attribute {k!r}")
                setattr(enc, k, v)
            model = build_qa_model(enc, head=opts.head, pretrained=False, sep_token_id=tok.sep_token_id, **head_kw)
            if not model_cfg.from_scratch:
                _load_encoder_weights(model, path, model_cfg.revision)
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"model {model_cfg.name!r}: question answering needs a fast tokenizer (offset mapping)")
    if model_cfg.gradient_checkpointing:
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    model.config.nct_qa = opts.to_dict()
    return model, tok


def _load_encoder_weights(model, path: str, revision=None) -> None:
    from transformers import AutoModel

    src = AutoModel.from_pretrained(path, revision=revision)
    missing, unexpected = model.encoder.load_state_dict(src.state_dict(), strict=False)
    unexpected = [k for k in unexpected if not k.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(f"encoder weights of {path} do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")


# ----------------------------------------------------------------------------------------------------------
# the recipe task builder
# ----------------------------------------------------------------------------------------------------------
def _load_splits(recipe, opts: QAOptions):
    d = recipe.data
    if d.train_file:
        train = load_squad(d.train_file)
        dev = load_squad(d.dev_file) if d.dev_file else None
    elif d.hub_name:
        kw = {"name": d.hub_config} if d.hub_config else {}
        train = load_squad(d.hub_name, split=d.train_split, **kw)
        dev = load_squad(d.hub_name, split=d.dev_split, **kw) if d.dev_split else None
    else:
        raise ValueError(f"{recipe.source or 'recipe'}: question answering needs data.train_file or data.hub_name")
    if opts.split_by_article is not None:
        if dev is not None:
            raise ValueError(f"{recipe.source or 'recipe'}: task_options.split_by_article splits data.train_file; "
                             f"do not also set data.dev_file")
        n_train, n_eval = (int(x) for x in opts.split_by_article)
        train, dev = split_by_article(train, n_train, n_eval, seed=opts.split_seed)
    if d.max_train_samples:
        train = train.select(range(min(d.max_train_samples, len(train))))
    if dev is not None and d.max_eval_samples:
        dev = dev.select(range(min(d.max_eval_samples, len(dev))))
    return train, dev


def build_qa_components(recipe, accelerator=None) -> dict:
    """Task builder for ``task: question-answering`` (see the module docstring for the options)."""
    register_auto_classes()  # the selected model is reloaded through AutoModelForQuestionAnswering
    opts = QAOptions.from_recipe(recipe)
    with (accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext()):
        train, dev = _load_splits(recipe, opts)
    model, tok = _build_model_and_tokenizer(recipe.model, opts, list(train["context"]) + list(train["question"]))
    with (accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext()):
        train_features = tokenize_train(train, tok, opts.max_length, opts.doc_stride,
                                        max_query_length=opts.max_query_length,
                                        source=str(recipe.data.train_file or recipe.data.hub_name or "training data"))
        train_features = train_features.remove_columns(["example_id"])
        eval_features = eval_ds = None
        if dev is not None:
            eval_features = tokenize_eval(dev, tok, opts.max_length, opts.doc_stride,
                                          max_query_length=opts.max_query_length)
            eval_ds = prepare_eval_dataset(eval_features)
    if len(train_features) == 0:
        raise ValueError(f"{recipe.source or 'recipe'}: no training features (no answerable question aligned)")
    collator = QACollator(tok)
    return {
        "model": model,
        "tokenizer": tok,
        "train_dataset": train_features,
        "eval_dataset": eval_ds,
        "task": QATask(opts, dev, eval_features),
        "collate_fn": collator,
        "eval_collate_fn": collator,
    }


# ----------------------------------------------------------------------------------------------------------
# eval / predict on files with a saved model
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def predict_qa(model, tokenizer, examples, options: QAOptions, batch_size: int = 32, output_dir: Optional[str] = None,
               overwrite: bool = False, device: Optional[str] = None):
    """Predictions (``{id: text}`` with ``.nbest`` / ``.null_odds``) for SQuAD-format ``examples``."""
    features, ds = QATask.preprocess_for_inference((model, tokenizer, options), examples)
    from ..data.text import longest_first, token_lengths

    # longest features first (batches of similar lengths pad little); each row goes back to its feature_index
    order = longest_first(token_lengths(ds)).tolist()
    dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=order, collate_fn=QACollator(tokenizer))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    task = QATask(options)
    starts = np.full((len(ds), options.max_length), _NEG, dtype=np.float32)
    ends = np.full((len(ds), options.max_length), _NEG, dtype=np.float32)
    from ..utils.progress import progress

    for batch in progress(dl, desc="predict", unit="batch"):
        batch = {k: v.to(device) for k, v in batch.items()}
        s, e, idx = task.eval_outputs(task.forward(model, batch), batch)
        idx = idx.cpu().numpy()
        starts[idx] = s.cpu().numpy()
        ends[idx] = e.cpu().numpy()
    return postprocess_qa_predictions(
        examples, features, starts, ends,
        version_2_with_negative=options.version_2_with_negative, n_best_size=options.n_best_size,
        max_answer_length=options.max_answer_length, null_score_diff_threshold=options.null_score_diff_threshold,
        output_dir=output_dir, overwrite=overwrite)


def _load_qa_model_dir(model_dir: str):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    register_auto_classes()
    p = _resolve_model_dir(model_dir)
    if p is None:
        from ..utils.model_dir import why_not_a_model_dir

        raise FileNotFoundError(why_not_a_model_dir(model_dir))
    try:
        archs = json.loads((p / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        archs = []
    if not is_qa_model_dir(str(p)) and not any("QuestionAnswering" in a or a.endswith("QAModel") for a in archs):
        raise ValueError(f"{p}: not a question-answering model (architectures: {', '.join(archs) or 'none'}); "
                         "qa-eval/qa-predict need a model trained with task: question-answering or another "
                         "*ForQuestionAnswering checkpoint")
    model = AutoModelForQuestionAnswering.from_pretrained(p)
    tok = AutoTokenizer.from_pretrained(p)
    saved = getattr(model.config, "nct_qa", None) or {}
    opts = QAOptions(**{k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(QAOptions)}})
    return model, tok, opts


def check_qa_output_dir(output_dir: Optional[str], overwrite: bool = False) -> None:
    """Before any work: ``output_dir`` must be a folder (or not exist yet) and must not already hold predictions
    unless ``overwrite``."""
    if output_dir is None:
        return
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise FileExistsError(f"--out {output_dir} is a file; for a question-answering model --out is a folder that "
                              "receives predictions.json and nbest_predictions.json")
    if not os.path.exists(output_dir) and os.path.splitext(output_dir)[1].lower() in (".json", ".jsonl", ".csv"):
        raise ValueError(f"--out {output_dir} looks like a file name; for a question-answering model --out is a "
                         "folder that receives predictions.json and nbest_predictions.json")
    if not overwrite:
        for name in ("predictions.json", "nbest_predictions.json", "null_odds.json"):
            if os.path.exists(os.path.join(output_dir, name)):
                raise FileExistsError(f"{os.path.join(output_dir, name)} exists; choose another --out or pass "
                                      "--overwrite")


def evaluate_qa_file(model_dir: str, data: str, metric: Optional[str] = None, batch_size: int = 32,
                     output_dir: Optional[str] = None, overwrite: bool = False) -> dict:
    """Score a saved MRC model on a SQuAD-format file (or dataset name) with the official metric."""
    check_qa_output_dir(output_dir, overwrite)
    model, tok, opts = _load_qa_model_dir(model_dir)
    if metric:
        opts.qa_metric = metric
        opts.validate()
    examples = load_squad(data)
    preds = predict_qa(model, tok, examples, opts, batch_size=batch_size, output_dir=output_dir, overwrite=overwrite)
    na = preds.null_odds if opts.version_2_with_negative else None
    return squad_metrics(examples, preds, metric=opts.qa_metric, na_probs=na)


def predict_qa_file(model_dir: str, data: str, output_dir: str, batch_size: int = 32, overwrite: bool = False) -> int:
    """Write ``predictions.json`` / ``nbest_predictions.json`` (official formats) for a SQuAD-format file."""
    check_qa_output_dir(output_dir, overwrite)
    model, tok, opts = _load_qa_model_dir(model_dir)
    examples = load_squad(data)
    preds = predict_qa(model, tok, examples, opts, batch_size=batch_size, output_dir=output_dir, overwrite=overwrite)
    return len(preds)
