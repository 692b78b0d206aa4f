"""The package as a user gets it: the wheel is built, installed into a fresh virtual environment outside the
repository, and the README's pip quick start runs there by recipe name, offline, in a directory that is not the
repository: ``nlp-cv-tricks --help``, ``recipes``, ``recipes show``, a short ``train quickstart``, ``eval`` and
``predict`` on its run.

The new environment has no pip and no dependencies of its own: a ``.pth`` file adds this environment's
site-packages (torch, transformers, the offline MiniLM) after its own, so the install takes seconds. Only the
wheel's ``nlp_cv_tricks`` is importable there (this environment's editable install works through a ``.pth``
finder that a path added this way does not run), which the test checks.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

# what the build reads; copied so that building writes nothing (build/, *.egg-info) into the repository
BUILD_INPUTS = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in",
                "nlp_cv_tricks", "recipes", "data/sst2"]


def _run(cmd, cwd, env, ok=True, timeout=600):
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert p.returncode == 0, f"{' '.join(map(str, cmd))} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NLP_CV_TRICKS_DATA", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", base / "dist", src], cwd=base, env=env)
    wheels = list((base / "dist").glob("nlp_cv_tricks-*.whl"))
    assert len(wheels) == 1, wheels

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base, env=env)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheels[0]],
         cwd=base, env=env)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, env)
                .stdout.strip())
    (site / "_nct_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = base / "work"  # the user's directory: nothing of the repository in it or above it
    work.mkdir()
    return {"venv": venv, "py": py, "cli": venv / "bin" / "nlp-cv-tricks", "work": work, "env": env, "site": site,
            "wheel": wheels[0]}


def test_the_wheel_holds_the_recipes_the_data_and_the_license(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for recipe in (ROOT / "recipes").glob("*.yaml"):
        assert f"nlp_cv_tricks/bundled/recipes/{recipe.name}" in names
    for f in ("train.txt", "dev.txt", "SOURCE.md"):
        assert f"nlp_cv_tricks/bundled/data/sst2/{f}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "recipes/", "data/")) for n in names)


def test_the_installed_package_is_the_wheel(installed):
    out = _run([installed["py"], "-c", "import nlp_cv_tricks, nlp_cv_tricks.utils.bundled as b; "
                "print(nlp_cv_tricks.__file__); print(b.bundle_root())"], installed["work"], installed["env"]).stdout
    module, bundle = out.split()
    assert Path(module).is_relative_to(installed["site"]), module
    assert Path(bundle) == installed["site"] / "nlp_cv_tricks" / "bundled"


def test_help_and_the_recipe_catalog(installed):
    cli, work, env = installed["cli"], installed["work"], installed["env"]
    assert "recipes" in _run([cli, "--help"], work, env).stdout
    listing = _run([cli, "recipes"], work, env).stdout
    for recipe in (ROOT / "recipes").glob("*.yaml"):
        assert f"\n{recipe.stem} " in "\n" + listing
    assert "bundled (data/sst2/)" in listing
    shown = _run([cli, "recipes", "show", "quickstart"], work, env).stdout
    assert shown == (ROOT / "recipes" / "quickstart.yaml").read_text(encoding="utf-8")
    bad = _run([cli, "train", "quikstart"], work, env, ok=False)
    assert bad.returncode == 2 and "did you mean 'quickstart'?" in bad.stderr


def test_quick_start_by_name_then_eval_and_predict(installed):
    cli, work, env = installed["cli"], installed["work"], installed["env"]
    _run([cli, "--quiet", "train", "quickstart", "train.max_steps=3", "train.batch_size=8", "train.eval_steps=3",
          "data.max_train_samples=48", "data.max_eval_samples=32", "output.report=false",
          "output.report_to=none"], work, env)
    runs = list((work / "runs" / "quickstart").iterdir())  # under the current directory
    assert len(runs) == 1 and (runs[0] / "best" / "model.safetensors").is_file()
    assert not (work / "data").exists()  # the data came from the package

    dev = installed["site"] / "nlp_cv_tricks" / "bundled" / "data" / "sst2" / "dev.txt"
    (work / "dev20.txt").write_text("".join(dev.read_text(encoding="utf-8").splitlines(keepends=True)[:20]))
    out = _run([cli, "--quiet", "eval", runs[0], "--data", "dev20.txt", "--out", "metrics.json"], work, env)
    metrics = json.loads((work / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] == 20, out.stdout

    (work / "new.csv").write_text("text\na gripping and funny film\nflat and lifeless\n")
    _run([cli, "--quiet", "predict", runs[0], "--data", "new.csv", "--out", "pred.jsonl"], work, env)
    rows = [json.loads(line) for line in (work / "pred.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["a gripping and funny film", "flat and lifeless"]
    assert all(r["pred_label"] in ("negative", "positive") for r in rows)
