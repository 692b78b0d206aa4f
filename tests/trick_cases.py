"""Every trick of the table (``nlp_cv_tricks.tricks.registry.BUILTIN_TRICKS``) as the table-wide tests run it on
the tiny text model: small options, or the reason it cannot run there. The accumulation, resume and DDP tests are
parametrised over :func:`cases` (Composer's way): a trick added to the table without a line here fails
``test_every_trick_of_the_table_has_a_case`` (tests/test_tricks.py)."""

from __future__ import annotations

import pytest

from nlp_cv_tricks.tricks.registry import BUILTIN_TRICKS

# name -> the recipe's tricks list (YAML flow style, as an override) with small options for a few-step run
TEXT = {
    "label_smoothing": "[label_smoothing]",
    "fgm": "[fgm]",
    "pgd": "[{pgd: {steps: 2}}]",
    "freelb": "[{freelb: {steps: 2, epsilon: 0.5}}]",
    "awp": "[{awp: {adv_lr: 0.5, adv_eps: 0.05}}]",
    "rdrop": "[rdrop]",
    "focal_loss": "[{focal_loss: {gamma: 2.0, alpha: balanced}}]",
    "class_weights": "[class_weights]",
    "embedding_dropout": "[{embedding_dropout: {p: 0.2}}]",
    "lr_halving": "[{lr_halving: {start_lr: 0.3, patience: 1, metric: loss, mode: max}}]",
    "init": "[{init: {scheme: normal, std: 0.05}}]",
    "ema": "[{ema: {decay: 0.8}}]",
}
# tricks that need an image batch (pixel_values), with the reason; the tiny MNIST model's BatchNorm makes 2 x 4 rows
# differ from 8 by design, so their accumulation equality is not tested
IMAGE_ONLY = {
    "pixel_fgsm": "perturbs pixel_values: an image batch (tests/test_vision.py resumes it on tiny MNIST)",
    "pixel_pgd": "perturbs pixel_values: an image batch (tests/test_vision.py resumes it on tiny MNIST)",
    "mixup": "mixes pixel_values and one-hot labels of an image batch (tests/test_vision.py resumes it on tiny "
             "MNIST)",
}

# the image-only tricks with small options, on the tiny MNIST model of tests/test_vision.py (exact resume there)
IMAGE = {
    "pixel_fgsm": [{"pixel_fgsm": {"epsilon": 0.05}}],
    # no random start: the data loader's crop draws torch random numbers one batch ahead of a checkpoint, so a
    # resumed run's torch stream is shifted for images (tests/test_vision.py::test_image_tricks_resume_exactly)
    "pixel_pgd": [{"pixel_pgd": {"steps": 2, "epsilon": 0.05, "random_start": False}}],
    "mixup": [{"mixup": {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}}],
}


def cases(skip: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> list:
    """``pytest.param(name, spec)`` for every trick of the table, ``extra`` cases (e.g. ``plain``) first; tricks
    that cannot run on the text model and those in ``skip`` (name -> reason) are skipped with their reason."""
    out = [pytest.param(n, s, id=n) for n, s in (extra or {}).items()]
    for name in BUILTIN_TRICKS:
        reason = IMAGE_ONLY.get(name) or (skip or {}).get(name)
        spec = TEXT.get(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(name, spec or "[]", id=name, marks=marks))
    return out
