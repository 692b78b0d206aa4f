"""The core install: with every optional package made unimportable, the package imports, trains and evaluates a
text model, and asking for something that needs an extra names the ``pip install "nlp-cv-tricks[...]"`` to run."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nlp_cv_tricks.utils.optional import EXTRA_OF, MissingExtraError, require

ROOT = Path(__file__).resolve().parents[1]

# the optional packages of the extras, plus what they pull in (torchvision, pillow) and the optional nltk
BLOCKED = sorted(set(EXTRA_OF) | {"torchvision", "nltk"})

# Runs in a fresh interpreter: ``sys.modules[name] = None`` makes ``import name`` raise ImportError and
# ``importlib.util.find_spec(name)`` return None, as when the package is not installed (transformers, torch and
# accelerate then take their paths for a missing package).
PRELUDE = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
sys.path.insert(0, {tests!r})
"""


def run_core_only(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "core_only.py"
    script.write_text(PRELUDE.format(blocked=BLOCKED, tests=str(ROOT / "tests")) + textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


def test_core_install_imports_and_trains_a_text_model(tmp_path):
    proc = run_core_only(tmp_path, """
        import json
        from pathlib import Path

        import nlp_cv_tricks
        from nlp_cv_tricks import load_recipe
        from nlp_cv_tricks.engine.trainer import Trainer
        from nlp_cv_tricks.runner import build_trainer
        from nlp_cv_tricks import cli, inference, ablate, hardcases, diagnostics  # noqa: F401  (the verbs load)
        from conftest import make_tiny_bert, tiny_recipe, toy_sentences, write_kim

        tmp = Path.cwd()
        data = {"train": write_kim(tmp / "train.txt", toy_sentences(256, 1)), "dev": None}
        bert = make_tiny_bert(tmp / "bert")
        # report_to=tensorboard without tensorboard: a warning, tracking to history.jsonl only; dev_fraction: the
        # stratified split without scikit-learn
        r = tiny_recipe(bert, data, tmp / "run", "output.report_to=tensorboard", "train.epochs=6", "data.dev_file=null",
                        "data.dev_fraction=0.25")
        res = build_trainer(r).fit()
        m = json.loads((tmp / "run" / "best" / "eval_metrics.json").read_text())
        blocked = [n for n in ("sklearn", "scipy", "timm", "tensorboard", "matplotlib") if sys.modules.get(n)]
        print("RESULT", json.dumps({"best": res.best_metric, "keys": sorted(m), "loaded": blocked}))
    """)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["loaded"] == []
    assert result["best"] >= 0.9  # chance is ~0.5
    assert {"eval/accuracy", "eval/f1_macro", "eval/auc", "eval/confusion_matrix"} <= set(result["keys"])
    assert 'pip install "nlp-cv-tricks[tracking]"' in proc.stderr  # the tensorboard fallback says what to install


def test_core_install_names_the_extra_for_images_and_diagnostics(tmp_path):
    proc = run_core_only(tmp_path, """
        import json
        from nlp_cv_tricks import load_recipe
        from nlp_cv_tricks.engine.trainer import Trainer
        from nlp_cv_tricks.runner import build_trainer
        from nlp_cv_tricks.utils.optional import MissingExtraError

        out = {}
        r = load_recipe(%r, ["data.train_file=core_only.py", "output.report_to=none"])
        try:
            build_trainer(r)
        except MissingExtraError as e:
            out["image"] = str(e)
        try:
            from nlp_cv_tricks.diagnostics.plots import pca_tsne
            import numpy as np
            pca_tsne(np.zeros((4, 3)))
        except MissingExtraError as e:
            out["plots"] = str(e)
        try:
            from nlp_cv_tricks.hardcases.mine import make_folds
            make_folds([0, 1, 0, 1], 2, 0)
        except MissingExtraError as e:
            out["folds"] = str(e)
        from nlp_cv_tricks.cli import main
        out["cli_rc"] = main(["train", %r, "data.train_file=core_only.py", "output.report_to=none"])
        print("RESULT", json.dumps(out))
    """ % (str(ROOT / "recipes" / "vision_mnist.yaml"), str(ROOT / "recipes" / "vision_mnist.yaml")))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert "task: image-classification needs timm" in out["image"]
    assert 'pip install "nlp-cv-tricks[vision]"' in out["image"]
    assert 'pip install "nlp-cv-tricks[diagnostics]"' in out["plots"] and "scikit-learn" in out["plots"]
    assert 'pip install "nlp-cv-tricks[hardcases]"' in out["folds"]
    # the command line: one error line naming the extra, exit status 2, no traceback
    assert out["cli_rc"] == 2
    assert 'error: task: image-classification needs timm' in proc.stderr and "Traceback" not in proc.stderr


def test_require_names_the_extra_and_keeps_other_import_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed (timm.* may be loaded by other tests)
    with pytest.raises(MissingExtraError, match=r'image transforms needs timm.*pip install "nlp-cv-tricks\[vision\]"'):
        require("timm", purpose="image transforms")
    assert isinstance(MissingExtraError("x"), ImportError)
    # a package that is there but fails on one of its own imports: that error comes through unchanged
    pkg = tmp_path / "brokenpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import a_module_that_does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist_anywhere"):
        require("brokenpkg", extra="vision")
