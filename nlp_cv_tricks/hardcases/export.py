"""Export the top hard cases to annotation files: CSV, JSONL and Label Studio import JSON.

Every row has the example id, its text (or, for image recipes, the image file in column ``path``), the current
and predicted labels, the OOF probabilities, the scores, and empty ``new_label``, ``action``, ``annotator`` and
``note`` columns for the annotator. Rows may be appended to add new examples (empty id, ``action=add``, and the
text or the image ``path``). A ``label_config.xml`` for a Label Studio project is written next to the JSON; its
exported annotations import back as they are.

Images: for an image folder the ``path`` is the original file (absolute). Pixel sources (MNIST-style CSV,
``.npy``) have no files, so each exported image is written as a PNG to ``<out>/<name>_images/<id>.png``
(atomically, never overwriting) and ``path`` references it, so an annotator can see it. In the Label Studio
JSON the image is ``data.image`` (``image_url_prefix`` + path; with Label Studio's local file serving use
``image_url_prefix="/data/local-files/?d="`` and paths under its document root) and ``data.path``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import quoteattr

from ._common import atomic_write_csv, atomic_write_json, atomic_write_jsonl
from .mine import load_scores

__all__ = ["export_hard_cases", "ANNOTATION_COLUMNS"]

ANNOTATION_COLUMNS = ["id", "text", "path", "current_label", "predicted_label", "p_current", "p_predicted",
                      "probabilities", "error_score", "is_label_issue", "difficulty", "region",
                      "new_label", "action", "annotator", "note"]


def select(scores: list[dict], top: Optional[int] = None, budget: Optional[float] = None, by: str = "error",
           only_issues: bool = False) -> list[dict]:
    """The ``top`` examples (or ``budget``: a fraction of the data when < 1, else a count) ranked ``by`` error
    (likely label error) or difficulty."""
    if by not in ("error", "difficulty"):
        raise ValueError(f"by must be 'error' or 'difficulty', got {by!r}")
    if (top is None) == (budget is None):
        raise ValueError("give exactly one of top (a count) or budget (a fraction < 1, or a count)")
    n = top if top is not None else (int(round(budget * len(scores))) if budget < 1 else int(budget))
    if n <= 0:
        raise ValueError(f"the selection is empty (top={top}, budget={budget}, {len(scores)} examples)")
    key = "error_rank" if by == "error" else "difficulty_rank"
    pool = [s for s in scores if s["is_label_issue"]] if only_issues else scores
    return sorted(pool, key=lambda s: s[key])[:n]


def _row(s: dict, names: list[str]) -> dict:
    return {"id": s["id"], "text": s.get("text", ""), "path": s.get("image", ""),
            "current_label": s["label_name"], "predicted_label": s["pred_name"],
            "p_current": round(s["p_label"], 6), "p_predicted": round(s["p_pred"], 6),
            "probabilities": {n: round(p, 6) for n, p in zip(names, s["probs"])},
            "error_score": round(s["error_score"], 6), "is_label_issue": s["is_label_issue"],
            "difficulty": round(s["difficulty"], 6), "region": s["region"],
            "new_label": "", "action": "", "annotator": "", "note": ""}


def label_studio_config(names: list[str], kind: str = "text") -> str:
    choices = "\n".join(f"    <Choice value={quoteattr(n)}/>" for n in names)
    obj = '<Text name="text" value="$text"/>' if kind == "text" else '<Image name="image" value="$image"/>'
    return (f"<View>\n  {obj}\n  <Header value=\"Current label: $current_label, predicted: $predicted_label\"/>\n"
            f"  <Choices name=\"label\" toName=\"{kind}\" choice=\"single\">\n{choices}\n  </Choices>\n"
            f"  <Choices name=\"action\" toName=\"{kind}\" choice=\"single\">\n    <Choice value=\"drop\"/>\n"
            f"  </Choices>\n  <TextArea name=\"note\" toName=\"{kind}\"/>\n</View>\n")


def export_hard_cases(mine_dir, out_dir, top: Optional[int] = None, budget: Optional[float] = None,
                      by: str = "error", only_issues: bool = False, formats=("csv", "jsonl", "labelstudio"),
                      name: str = "annotate", image_url_prefix: str = "") -> dict[str, str]:
    """Write the selection as ``<name>.csv``, ``<name>.jsonl`` and ``<name>.labelstudio.json`` (+
    ``label_config.xml``, and ``<name>_images/`` for images without files) in ``out_dir``; existing files are
    never overwritten. Returns the paths."""
    mine_dir, out_dir = Path(mine_dir), Path(out_dir)
    if not (mine_dir / "summary.json").is_file():
        raise FileNotFoundError(f"{mine_dir}: no finished mining here (summary.json missing); run `hardcases mine` "
                                "first or pass its --out directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} is a file; export writes its files into a directory")
    summary = json.loads((mine_dir / "summary.json").read_text())
    names = summary["label_names"]
    kind = summary.get("example_kind", "text")
    chosen = select(load_scores(mine_dir), top, budget, by, only_issues)
    rows = [_row(s, names) for s in chosen]
    paths = {}
    targets = {"csv": out_dir / f"{name}.csv", "jsonl": out_dir / f"{name}.jsonl",
               "labelstudio": out_dir / f"{name}.labelstudio.json"}
    unknown = set(formats) - set(targets)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {sorted(targets)}")
    for f in formats:
        if targets[f].exists():
            raise FileExistsError(f"{targets[f]} exists; export never overwrites annotation files "
                                  "(choose another --out or --name)")
    columns = [c for c in ANNOTATION_COLUMNS if c != ("path" if kind == "text" else "text")]
    if kind == "image" and any(not r["path"] for r in rows):
        _write_pngs(mine_dir, summary, chosen, rows, out_dir / f"{name}_images")
    if "csv" in formats:
        atomic_write_csv(targets["csv"], rows, columns)
        paths["csv"] = str(targets["csv"])
    if "jsonl" in formats:
        atomic_write_jsonl(targets["jsonl"], [{c: r[c] for c in columns} for r in rows])
        paths["jsonl"] = str(targets["jsonl"])
    if "labelstudio" in formats:
        tasks = []
        for r in rows:
            data = {c: r[c] for c in columns if c not in ("new_label", "action", "annotator", "note")}
            data["probabilities"] = json.dumps(r["probabilities"])
            if kind == "image":
                data["image"] = image_url_prefix + r["path"]
            tasks.append({"data": data, "predictions": [{
                "model_version": "nlp-cv-tricks-hardcases", "score": r["p_predicted"],
                "result": [{"from_name": "label", "to_name": kind, "type": "choices",
                            "value": {"choices": [r["predicted_label"]]}}]}]})
        atomic_write_json(targets["labelstudio"], tasks)
        cfg = out_dir / "label_config.xml"
        if not cfg.exists():
            from ..utils.io import atomic_write_text

            atomic_write_text(cfg, label_studio_config(names, kind))
        paths["labelstudio"] = str(targets["labelstudio"])
    return paths


def _write_pngs(mine_dir: Path, summary: dict, chosen: list[dict], rows: list[dict], img_dir: Path) -> None:
    """Images of a pixel source (no files): write each exported one as ``<img_dir>/<id>.png`` and set its
    ``path``. The images come from the mined recipe's data (``<mine_dir>/recipe.yaml``), which must still be
    the data that was mined (same number of examples and labels)."""
    from .images import ImageSource, write_png
    from .mine import load_mine_recipe

    src = ImageSource(load_mine_recipe(mine_dir))
    labels = src.train_labels()
    if len(labels) != summary["n"]:
        raise ValueError(f"{mine_dir}: the recipe's training images are now {len(labels)}, {summary['n']} were "
                         "mined; mine again")
    targets = [img_dir / f"{s['id']}.png" for s in chosen]
    for t in targets:
        if t.exists():
            raise FileExistsError(f"{t} exists; export never overwrites (choose another --out or --name)")
    for s, r, t in zip(chosen, rows, targets):
        if r["path"]:
            continue
        if int(labels[s["row"]]) != int(s["label"]):
            raise ValueError(f"{mine_dir}: training row {s['row']} is labelled {int(labels[s['row']])} in the data "
                             f"but {s['label']} in the scores; the data changed since mining")
        r["path"] = write_png(t, src.image(s["row"]))
