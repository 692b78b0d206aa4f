"""Hard-case loop on image recipes: exports carry image paths that open (original files of an image folder, PNGs
written for pixel CSVs), imports write versions the vision task trains on (links / pixel CSV + pinned dev
split), and the loop runs mine → export → import → retrain → mine on a tiny timm ResNet with real MNIST and
hymenoptera images."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import read_csv_rows as _read_csv, shared_data, write_csv_rows as _write_csv
from nlp_cv_tricks.config import load_recipe
from nlp_cv_tricks.hardcases import HardCaseLoop, ImportValidationError, VersionStore, export_hard_cases, \
    import_annotations, mine
from nlp_cv_tricks.hardcases.images import ImageSource, fingerprint_dir
from nlp_cv_tricks.hardcases.retrain import train_and_evaluate

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "tests" / "fixtures" / "images" / "mnist_600.csv.gz"  # the first 60 of each digit of mnist_5k
TINY = ["model.kwargs.model_args={channels: [8, 16, 32, 64], stem_width: 8}", "train.progress_bar=false",
        "output.report_to=none", "train.eval_each_epoch=false", "tricks=[]"]


def sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


# ---- pixel CSV (MNIST): PNG exports, pixel-CSV versions, the loop end to end --------------------------------
@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """48 real MNIST digits (16 each of 0, 1, 7), 4 training labels flipped in the file."""
    d = tmp_path_factory.mktemp("mnist")
    keep, count = [], {}
    with gzip.open(MNIST, "rt") as f:
        for ln in f:
            y = ln.strip().rsplit(",", 1)[1]
            if y in ("0", "1", "7") and count.get(y, 0) < 16:
                count[y] = count.get(y, 0) + 1
                keep.append(ln.strip())
    truth = [ln.rsplit(",", 1)[1] for ln in keep]
    noisy = list(keep)
    flips = {3: "1", 10: "7", 20: "0", 33: "0"}
    for i, y in flips.items():
        assert truth[i] != y
        noisy[i] = keep[i].rsplit(",", 1)[0] + "," + y
    path = d / "mnist48.csv"
    path.write_text("\n".join(noisy) + "\n")
    recipe = load_recipe(ROOT / "recipes" / "vision_mnist.yaml", [
        f"data.train_file={path}", "data.dev_fraction=0.25", "model.kwargs.image.input_size=28",
        "train.epochs=3", "train.batch_size=8", f"output.dir={d / 'runs'}", *TINY])
    return {"dir": d, "file": path, "recipe": recipe, "truth": truth, "sha": sha(path)}


def test_mnist_loop_end_to_end_png_export_and_usable_version(mnist, capsys):
    recipe, d = mnist["recipe"], mnist["dir"]
    src = ImageSource(recipe)
    assert src.kind == "arrays" and len(src.splits.train) == 36 and len(src.splits.dev) == 12
    # which file row each training example is: match pixels (the loader's split shuffles the rows)
    lines = mnist["file"].read_text().splitlines()
    pix = np.array([[int(v) for v in ln.split(",")[:-1]] for ln in lines], dtype=np.uint8)
    train_pix = src.arrays("train").reshape(36, -1)
    row_of = [int(np.flatnonzero((pix == p).all(1))[0]) for p in train_pix]
    truth = [mnist["truth"][r] for r in row_of]  # true label of each training example (id = split row)

    loop = HardCaseLoop(recipe, d / "work", folds=2, top=6)
    st = loop.step()  # round 1: mine (2 folds) + export
    assert st["round"] == 1 and st["phase"] == "awaiting_annotation"
    rows = _read_csv(st["export"]["csv"])
    assert len(rows) == 6 and "path" in rows[0] and "text" not in rows[0]
    for r in rows:  # the PNG next to the export opens and shows exactly that training image
        p = Path(r["path"])
        assert p.is_absolute() and p.parent == d / "work" / "round_1" / "annotate_images" and p.suffix == ".png"
        with Image.open(p) as img:
            assert img.size == (28, 28)
            assert np.array_equal(np.asarray(img).reshape(-1), train_pix[int(r["id"])])
    assert not list((d / "work" / "round_1" / "annotate_images").glob("*.tmp"))
    ls = json.loads(Path(st["export"]["labelstudio"]).read_text())
    assert [t["data"]["image"] for t in ls] == [r["path"] for r in rows]
    assert '<Image name="image" value="$image"/>' in (d / "work" / "round_1" / "label_config.xml").read_text()
    # the annotator restores the truth
    for r in rows:
        r["new_label"], r["annotator"] = truth[int(r["id"])], "sim"
    st = loop.step(_write_csv(d / "ann1.csv", rows))  # import → retrain → mine round 2 on the version
    assert st["round"] == 2 and st["version"] == "v0001"
    row = st["rounds"][0]
    assert row["relabel"] + row["confirm"] == 6 and 0 <= row["dev_acc_after"] <= 1
    store = VersionStore(d / "work" / "versions", recipe)
    vdir = d / "work" / "versions" / "v0001"
    assert sorted(p.name for p in vdir.iterdir()) == ["changes.jsonl", "dev.csv.gz", "ids.json", "manifest.json",
                                                      "train.csv.gz"]
    vsrc = ImageSource(store.recipe_for("v0001"))  # the vision loader reads the version as it is
    assert vsrc.label_names == ["0", "1", "7"] and len(vsrc.splits.train) == 36
    ids = store.ids("v0001")
    assert ids == list(range(36))
    assert np.array_equal(vsrc.arrays("train").reshape(36, -1), train_pix)  # same images, same order
    vlabels = [vsrc.label_names[i] for i in vsrc.train_labels()]
    olabels = [src.label_names[i] for i in src.train_labels()]
    answered = {int(r["id"]): r["new_label"] for r in rows}
    assert vlabels == [answered.get(i, olabels[i]) for i in range(36)]
    # the dev split is pinned: same images and labels as the original's seeded split
    assert np.array_equal(vsrc.arrays("dev"), src.arrays("dev"))
    assert vsrc.splits.dev["labels"] == src.splits.dev["labels"]
    # round 2 mined the version and exported PNGs again; the original file is untouched
    r2 = _read_csv(d / "work" / "round_2" / "annotate.csv")
    assert len(r2) == 6 and all(Path(r["path"]).is_file() for r in r2)
    assert sha(mnist["file"]) == mnist["sha"]
    # an added image (a PNG of the right size) and a wrong-sized one
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(d / "blank.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(d / "small.png")
    add = [{"id": "", "path": str(d / "blank.png"), "new_label": "0", "action": "add", "annotator": "sim"}]
    rep = import_annotations(_write_csv(d / "add.csv", add), recipe, d / "work" / "versions")
    assert rep["version"] == "v0002" and rep["counts"]["add"] == 1
    v2 = ImageSource(store.recipe_for("v0002"))
    assert len(v2.splits.train) == 37 and store.ids("v0002")[-1] == 36 and v2.arrays("train")[-1].max() == 0
    bad = [{"id": "", "path": str(d / "small.png"), "new_label": "0", "action": "add"},
           {"id": "", "new_label": "1", "action": "add"}]
    with pytest.raises(ImportValidationError) as ei:
        import_annotations(_write_csv(d / "bad.csv", bad), recipe, d / "work" / "versions")
    assert any("row 1 (line 2)" in e and "has shape (20, 20)" in e for e in ei.value.errors)
    assert any("row 2 (line 3)" in e and "needs the image file in column 'path'" in e for e in ei.value.errors)
    store.drop("v0002")
    assert store.latest() == "v0001"
    # `hardcases versions` prints the overrides that train on a version with the plain recipe
    import shlex

    from nlp_cv_tricks.config import save_recipe
    from nlp_cv_tricks.cli.hardcases import main

    save_recipe(recipe, d / "recipe.yaml")
    assert main(["versions", str(d / "recipe.yaml"), "--versions-dir", str(d / "work" / "versions")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "train on it with:" in ln)
    user = load_recipe(d / "recipe.yaml", shlex.split(line.split("train on it with:", 1)[1]))
    want = store.recipe_for("v0001")
    assert user.data == want.data and user.model.kwargs == want.model.kwargs


# ---- image folder (hymenoptera): original paths in exports, linked versions --------------------------------
@pytest.fixture(scope="module")
def bees(tmp_path_factory):
    """A 24-image ants/bees folder (real hymenoptera JPEGs) and an 8-image dev folder."""
    d = tmp_path_factory.mktemp("hym")
    src = shared_data("images/hymenoptera")
    for split, n in (("train", 12), ("val", 4)):
        for cls in ("ants", "bees"):
            (d / split / cls).mkdir(parents=True)
            files = sorted(p for p in (src / split / cls).iterdir() if p.suffix == ".jpg")[:n]
            for p in files:
                shutil.copy(p, d / split / cls / p.name)
    extra = sorted(p for p in (src / "train" / "bees").iterdir() if p.suffix == ".jpg")[-1]
    recipe = load_recipe(ROOT / "recipes" / "vision_hymenoptera.yaml", [
        f"data.train_file={d / 'train'}", f"data.dev_file={d / 'val'}", "model.kwargs.image.input_size=32",
        "model.kwargs.image.auto_augment=null", "train.epochs=1", "train.batch_size=8",
        f"output.dir={d / 'runs'}", *TINY])
    res = mine(recipe, d / "mine", folds=2)
    return {"dir": d, "recipe": recipe, "res": res, "extra": extra, "fp": fingerprint_dir(d / "train")}


def test_imagefolder_export_has_original_paths_and_version_trains(bees, tmp_path):
    d, recipe = bees["dir"], bees["recipe"]
    files = sorted(str((d / "train" / c / n).resolve()) for c in ("ants", "bees")
                   for n in os.listdir(d / "train" / c))
    paths = export_hard_cases(d / "mine", tmp_path / "exp", top=5, image_url_prefix="/data/local-files/?d=")
    rows = _read_csv(paths["csv"])
    assert len(rows) == 5 and not (tmp_path / "exp" / "annotate_images").exists()  # files: no PNG copies
    src = ImageSource(recipe)
    refs = src.train_refs()
    for r in rows:
        assert r["path"] in files and r["path"] == refs[int(r["id"])]
        assert Path(r["path"]).parent.name == r["current_label"]  # the file's class folder is its label
        with Image.open(r["path"]) as img:
            img.load()
    ls = json.loads(Path(paths["labelstudio"]).read_text())
    assert ls[0]["data"]["image"] == "/data/local-files/?d=" + rows[0]["path"]
    assert ls[0]["data"]["path"] == rows[0]["path"]
    jl = [json.loads(x) for x in Path(paths["jsonl"]).read_text().splitlines()]
    assert [j["path"] for j in jl] == [r["path"] for r in rows]
    # annotate: relabel, confirm, drop, add a new image; one row answered from the Label Studio export
    other = {"ants": "bees", "bees": "ants"}
    rows[0].update(new_label=other[rows[0]["current_label"]], annotator="a")
    rows[1].update(new_label=rows[1]["current_label"], annotator="a")
    rows[2].update(action="drop", annotator="a")
    rows.append({"id": "", "path": str(bees["extra"]), "new_label": "bees", "action": "add", "annotator": "a"})
    vdir = tmp_path / "versions"
    rep = import_annotations(_write_csv(tmp_path / "ann.csv", rows), recipe, vdir)
    assert rep["counts"] == {"relabel": 1, "confirm": 1, "drop": 1, "add": 1}
    store = VersionStore(vdir, recipe)
    m = store.manifest("v0001")
    assert m["train_file"] == "train" and m["dev_file"] is None and m["format"] == "imagefolder"
    links = sorted((vdir / "v0001" / "train").glob("*/*"))
    assert len(links) == 24 and all(p.is_symlink() for p in links)
    vrec = store.recipe_for("v0001")
    assert vrec.data.dev_file == recipe.data.dev_file  # the recipe's dev folder is kept
    vsrc = ImageSource(vrec)
    vpaths = [str(Path(p).resolve()) for p in vsrc.paths(vsrc.splits.train)]
    vlab = [vsrc.label_names[i] for i in vsrc.train_labels()]
    by_id = dict(zip(store.ids("v0001"), zip(vpaths, vlab)))
    i0, i2 = int(rows[0]["id"]), int(rows[2]["id"])
    assert by_id[i0] == (rows[0]["path"], other[rows[0]["current_label"]])  # relabelled: same file, new class
    assert i2 not in by_id and by_id[24] == (str(bees["extra"].resolve()), "bees")
    olab = [src.label_names[i] for i in src.train_labels()]
    for i, (p, lab) in by_id.items():
        if i not in (i0, 24):
            assert p == refs[i] and lab == olab[i]
    # train on the version and compare on the same dev folder
    out = train_and_evaluate(vrec, tmp_path / "rt", keep_model=False)
    assert out["n_train_rows"] == 24 and out["dev/n"] == 8
    # mining a version: ids are the stable ids, paths the original files
    res = mine(vrec, tmp_path / "mine_v1", folds=2, ids=store.ids("v0001"))
    assert sorted(s["id"] for s in res.scores) == sorted(by_id)
    assert all(s["image"] == by_id[s["id"]][0] and Path(s["image"]).is_file() for s in res.scores)
    # validation: a path that is not the example's; drop undoes; the original folder never changed
    wrong = [{"id": rows[3]["id"], "path": rows[4]["path"], "new_label": "ants"}]
    with pytest.raises(ImportValidationError, match=r"row 1 \(line 2\): image path of id .* differs"):
        import_annotations(_write_csv(tmp_path / "wrong.csv", wrong), recipe, vdir)
    store.drop("v0001")
    assert store.names() == [] and fingerprint_dir(d / "train") == bees["fp"]


def test_imagefolder_dev_split_is_pinned_in_the_version(bees, tmp_path):
    """No dev folder: the recipe cuts a seeded dev split from the training folder; a version stores that split
    (links) so it trains on the same rows and evaluates on the same dev images."""
    d = bees["dir"]
    recipe = load_recipe(ROOT / "recipes" / "vision_hymenoptera.yaml", [
        f"data.train_file={d / 'train'}", "data.dev_file=null", "model.kwargs.image.dev_fraction=0.25",
        *TINY])
    src = ImageSource(recipe)
    train_paths, dev_paths = src.paths(src.splits.train), src.paths(src.splits.dev)
    assert len(train_paths) == 18 and len(dev_paths) == 6
    names = src.label_names
    lab = [names[i] for i in src.train_labels()]
    ann = [{"id": "4", "path": train_paths[4], "new_label": "bees" if lab[4] == "ants" else "ants"}]
    rep = import_annotations(_write_csv(tmp_path / "a.csv", ann), recipe, tmp_path / "v")
    store = VersionStore(tmp_path / "v", recipe)
    assert store.manifest(rep["version"])["dev_file"] == "dev"
    vsrc = ImageSource(store.recipe_for(rep["version"]))
    assert sorted(vsrc.paths(vsrc.splits.dev)) == sorted(dev_paths)
    dev_lab = dict(zip(src.paths(src.splits.dev), src.splits.dev["labels"]))
    assert all(dev_lab[p] == y for p, y in zip(vsrc.paths(vsrc.splits.dev), vsrc.splits.dev["labels"]))
    got = dict(zip(store.ids(rep["version"]), zip(vsrc.paths(vsrc.splits.train),
                                                   [names[i] for i in vsrc.train_labels()])))
    assert sorted(got) == list(range(18)) and got[4] == (train_paths[4], ann[0]["new_label"])
    assert all(got[i] == (train_paths[i], lab[i]) for i in range(18) if i != 4)
    assert fingerprint_dir(d / "train") == bees["fp"]
