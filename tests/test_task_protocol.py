"""A task's whole life goes through its Task class (``nlp_cv_tricks/tasks/``): nothing outside ``tasks/`` switches
on a task's name, and ``eval`` / ``predict`` / the model card / ``train``'s closing lines reach every task the
same way."""

import ast
from pathlib import Path

import pytest

from nlp_cv_tricks.config import BUILTIN_TASKS

PKG = Path(__file__).resolve().parents[1] / "nlp_cv_tricks"
TASK_NAMES = set(BUILTIN_TASKS)


def _is_task_ref(node) -> bool:
    """``x.task``, ``task``, ``x.get("task")``, ``x["task"]`` (and ``str(...)`` of one)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str" and node.args:
        return _is_task_ref(node.args[0])
    if isinstance(node, ast.Attribute):
        return node.attr == "task"
    if isinstance(node, ast.Name):
        return node.id == "task"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "task"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "task"
    return False


def _strings(node) -> list:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def task_name_switches(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for each place of ``source`` that branches on a task's name: a comparison with a task
    name (``x == "question-answering"``, ``task in ("a", "b")``), a string test of a task value
    (``"text" in recipe.task``), or a table keyed by task names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(s in TASK_NAMES for o in operands for s in _strings(o)):
                found.append((node.lineno, "compares with a task name"))
            elif any(_is_task_ref(o) for o in operands) and any(_strings(o) for o in operands):
                found.append((node.lineno, "tests a task value against a string"))
        elif isinstance(node, ast.Dict):
            if any(isinstance(k, ast.Constant) and k.value in TASK_NAMES for k in node.keys):
                found.append((node.lineno, "a table keyed by task names"))
    return found


def _outside_tasks():
    for path in sorted(PKG.rglob("*.py")):
        if path.relative_to(PKG).parts[0] != "tasks":
            yield path


def test_the_detector_finds_each_kind_of_switch():
    src = '''
if recipe.task == "image-classification": pass
if task in ("text-classification", "long-text-classification"): pass
if "text" in recipe.task: pass
if str(r.get("task", "")) == "question-answering": pass
AUTO = {"question-answering": "AutoModelForQuestionAnswering"}
if task_cls.modality == "image": pass
name = "text-classification"
'''
    assert [line for line, _ in task_name_switches(src)] == [2, 3, 4, 5, 6]


def test_no_task_name_switch_outside_tasks():
    found = [f"{path.relative_to(PKG.parent)}:{line}: {what}" for path in _outside_tasks()
             for line, what in task_name_switches(path.read_text(encoding="utf-8"))]
    assert not found, ("these places switch on a task's name; ask the task's class instead "
                       "(nlp_cv_tricks.tasks.task_type / task_type_of_model_dir):\n" + "\n".join(found))


def test_every_builtin_task_has_its_whole_life():
    from nlp_cv_tricks.engine.task import Task
    from nlp_cv_tricks.tasks import TASK_TYPES, task_type

    for name in BUILTIN_TASKS:
        cls = task_type(name)
        assert issubclass(cls, Task) and cls.name == name and cls.description and cls.pipeline_tag
        for method in ("load_for_inference", "preprocess_for_inference", "evaluate", "predict", "card_model"):
            assert getattr(cls, method).__func__ is not getattr(Task, method).__func__, (name, method)
        assert cls.cli_summary("runs/x/best")[-1].startswith("or evaluate   : nlp-cv-tricks eval runs/x/best --data")
    assert set(BUILTIN_TASKS) <= set(TASK_TYPES.names())


def test_a_saved_model_finds_its_task(tmp_path):
    import json

    from nlp_cv_tricks.tasks import task_type_of_model_dir

    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert task_type_of_model_dir(run).name == "text-classification"  # no recipe: a text classifier
    (run / "best" / "recipe.yaml").write_text("task: long-text-classification\n")
    assert task_type_of_model_dir(run).name == "long-text-classification"
    (run / "best" / "config.json").write_text(json.dumps({"model_type": "nct-linear-qa"}))
    assert task_type_of_model_dir(run / "best").name == "question-answering"  # the saved files decide
    (run / "best" / "config.json").write_text(json.dumps({"architecture": "resnet10t", "pretrained_cfg": {}}))
    assert task_type_of_model_dir(run).name == "image-classification"
    assert task_type_of_model_dir(tmp_path / "nothing").name == "text-classification"  # its loader says why


def test_a_registered_task_gets_eval_and_predict(tmp_path, capsys):
    """A task added at run time (as through the entry point) is reached by ``eval`` and ``predict`` through its
    class, with nothing else to register."""
    import json

    from nlp_cv_tricks.cli import main
    from nlp_cv_tricks.engine.task import Task
    from nlp_cv_tricks.tasks import TASK_TYPES, TASKS, register_task

    class Echo(Task):
        name = "echo-task"

        @classmethod
        def evaluate(cls, request):
            return {"n": len(Path(request.data).read_text().split()), "batch_size": request.batch_size}

        @classmethod
        def predict(cls, request):
            Path(request.out).write_text("ok\n")
            return 1

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "echo"}))
    (model / "recipe.yaml").write_text("task: echo-task\n")
    data = tmp_path / "d.txt"
    data.write_text("a b c")
    register_task("echo-task", lambda recipe, accelerator: {}, task_type=Echo)
    try:
        assert main(["eval", str(model), "--data", str(data), "--batch-size", "3"]) == 0
        assert json.loads(capsys.readouterr().out) == {"n": 3, "batch_size": 3}
        assert main(["predict", str(model), "--data", str(data), "--out", str(tmp_path / "p.txt")]) == 0
        assert capsys.readouterr().out.strip() == f"wrote 1 predictions to {tmp_path / 'p.txt'}"
    finally:
        for table in (TASKS, TASK_TYPES):
            table._targets.pop("echo-task", None)
            table._loaded.pop("echo-task", None)


@pytest.mark.parametrize("verb", ["qa-eval", "qa-predict"])
def test_the_qa_verbs_are_aliases_of_eval_and_predict(verb):
    from nlp_cv_tricks.cli import _cmd_eval, _cmd_predict, build_parser

    args = build_parser(verb).parse_args([verb, "m", "--data", "d.json", "--out", "o"])
    assert args.func is (_cmd_eval if verb == "qa-eval" else _cmd_predict) and args.qa_alias
    assert args.batch_size == 32  # their own default, as before


def test_train_prints_how_to_load_and_evaluate_each_task():
    from nlp_cv_tricks.tasks import task_type

    qa = task_type("question-answering").cli_summary("r/best")
    assert qa == ["load it with  : import nlp_cv_tricks; nlp_cv_tricks.register_auto_classes()",
                  "                from transformers import AutoModelForQuestionAnswering, AutoTokenizer",
                  "                model = AutoModelForQuestionAnswering.from_pretrained('r/best')",
                  "                tokenizer = AutoTokenizer.from_pretrained('r/best')",
                  "or evaluate   : nlp-cv-tricks eval r/best --data SQUAD.json"]
    image = task_type("image-classification").cli_summary("r/best")
    assert image[1:] == ["                from transformers import AutoModelForImageClassification",
                         "                model = AutoModelForImageClassification.from_pretrained('r/best')",
                         "or evaluate   : nlp-cv-tricks eval r/best --data IMAGES"]
    assert task_type("long-text-classification").cli_summary("r/best")[-1].endswith("--data FILE")


def test_builtin_modalities_are_the_classes():
    """task_modality answers for built-in tasks from a table (the run report asks without importing torch); the
    table is what the Task classes say."""
    from nlp_cv_tricks.tasks import _BUILTIN_MODALITY, BUILTIN_TASK_TYPES, TASK_TYPES

    assert set(_BUILTIN_MODALITY) == set(BUILTIN_TASK_TYPES)
    for name, modality in _BUILTIN_MODALITY.items():
        assert TASK_TYPES.get(name).modality == modality, name
