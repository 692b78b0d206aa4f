"""The public API is lazy and registries import on use: what `import nlp_cv_tricks` and `--help` load, and that a
recipe's names resolve the same whatever was imported before."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["sklearn", "scipy", "timm", "matplotlib", "cleanlab", "tensorboard", "pandas", "numba", "datasets",
         "accelerate", "nlp_cv_tricks.diagnostics", "nlp_cv_tricks.models.text_baselines", "nlp_cv_tricks.tasks.question_answering",
         "nlp_cv_tricks.engine.trainer", "nlp_cv_tricks.tricks", "nlp_cv_tricks.hardcases"]


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_nothing_heavy_until_a_name_is_used():
    r = _run(f"""
        import json, sys
        import nlp_cv_tricks
        before = [m for m in {HEAVY!r} if m in sys.modules]
        n = len([m for m in sys.modules if m.startswith("nlp_cv_tricks")])
        recipe = nlp_cv_tricks.load_recipe("recipes/quickstart.yaml")
        after_recipe = [m for m in {HEAVY!r} if m in sys.modules]
        trainer = nlp_cv_tricks.Trainer
        print(json.dumps({{"before": before, "n": n, "after_recipe": after_recipe,
                          "trainer": trainer.__module__, "all": sorted(nlp_cv_tricks.__all__)}}))
    """)
    assert r["before"] == [] and r["n"] == 1, r
    assert r["after_recipe"] == [], r
    assert r["trainer"] == "nlp_cv_tricks.engine.trainer"
    assert {"Trainer", "Trick", "load_recipe", "register_trick", "register_auto_classes"} <= set(r["all"])


def test_help_lists_every_verb_and_imports_no_verb_module():
    r = _run(f"""
        import contextlib, io, json, sys
        from nlp_cv_tricks.cli import VERBS, main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                main(["--help"])
            except SystemExit:
                pass
        loaded = sorted({{t.split(":")[0] for t, _ in VERBS.values()}} & set(sys.modules))
        print(json.dumps({{"help": buf.getvalue(), "loaded": loaded, "verbs": list(VERBS),
                          "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """)
    assert r["loaded"] == [] and r["heavy"] == [], r
    for verb in ["train", "eval", "predict", "push", *r["verbs"]]:
        assert verb in r["help"]


def test_every_verb_of_the_table_is_defined_by_its_module():
    from nlp_cv_tricks.cli import VERBS, build_parser

    for verb in VERBS:
        parser = build_parser(verb)
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        # the verb's own parser has options beyond -h (a one-line stub would have none)
        assert len(sub.choices[verb]._actions) > 1, verb
    full = build_parser(None)
    sub = next(a for a in full._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(VERBS) <= set(sub.choices)


def test_tasks_validate_and_resolve_whatever_was_imported_before():
    # a fresh process that imported nothing else: the QA and image task names are valid recipe values
    r = _run("""
        import json
        from nlp_cv_tricks.config import load_recipe
        from nlp_cv_tricks.tasks import TASKS
        r = load_recipe("recipes/mrc_xquad_en.yaml")
        print(json.dumps({"task": r.task, "tasks": TASKS.names()}))
    """)
    assert r["task"] == "question-answering"
    assert set(r["tasks"]) == {"text-classification", "long-text-classification", "question-answering",
                               "image-classification"}


def test_unknown_task_names_the_nearest():
    from nlp_cv_tricks.tasks import TASKS

    msg = TASKS.unknown_message("question-answerin", "task")
    assert "did you mean 'question-answering'" in msg


def test_every_builtin_trick_and_callback_loads_on_use_and_unknown_names_get_a_suggestion():
    from nlp_cv_tricks.callbacks.registry import BUILTIN_CALLBACKS, CALLBACKS, build_callback
    from nlp_cv_tricks.engine.events import Callback, Trick
    from nlp_cv_tricks.tricks.registry import BUILTIN_TRICKS, TRICKS, build_trick

    assert not set(BUILTIN_TRICKS) & set(BUILTIN_CALLBACKS)
    for table, builtins, base in ((TRICKS, BUILTIN_TRICKS, Trick), (CALLBACKS, BUILTIN_CALLBACKS, Callback)):
        for name in builtins:
            if name in ("mixup", "ema"):
                pytest.importorskip("timm")
            cls = table.load(name)
            assert issubclass(cls, base) and cls.name == name  # the class's own name, not set by the table
            assert cls.__dict__["name"] == name
    with pytest.raises(ValueError, match="did you mean 'fgm'"):
        build_trick("fgn")
    with pytest.raises(ValueError, match="did you mean 'train_eval'"):
        build_callback("train_evl")


def test_a_third_party_trick_registers_through_an_entry_point(monkeypatch, tmp_path):
    from nlp_cv_tricks.tricks import registry

    (tmp_path / "my_plugin.py").write_text(textwrap.dedent("""
        from nlp_cv_tricks.engine.events import Trick

        class Whisper(Trick):
            def __init__(self, volume: float = 1.0):
                self.volume = volume
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from importlib import metadata

    real = metadata.entry_points

    def entry_points(group=None, **kw):
        if group == registry.ENTRY_POINT_GROUP:
            return [metadata.EntryPoint("whisper", "my_plugin:Whisper", group)]
        return real(group=group, **kw)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    for attr in ("_targets", "_loaded"):  # the table as it was comes back after the test
        monkeypatch.setattr(registry.TRICKS, attr, dict(getattr(registry.TRICKS, attr)))
    monkeypatch.setattr(registry.TRICKS, "_entry_points_read", False)
    trick = registry.build_trick({"whisper": {"volume": 0.5}})
    assert type(trick).__name__ == "Whisper" and trick.volume == 0.5 and trick.name == "whisper"
    assert "whisper" in registry.available_tricks()
    import nlp_cv_tricks as nct

    @nct.register_trick("shout")  # the public decorator registers in the same table
    class Shout(nct.Trick):
        pass

    assert Shout.name == "shout" and type(nct.build_tricks(["shout", "whisper"])[1]).__name__ == "Whisper"
    with pytest.raises(ValueError, match="already registered by Shout"):
        nct.register_trick("shout")(type("Other", (nct.Trick,), {}))


def test_architectures_load_on_use():
    r = _run("""
        import json, sys
        from nlp_cv_tricks.models.factory import architectures, is_architecture
        names = architectures()
        before = "nlp_cv_tricks.models.text_baselines" in sys.modules
        ok = is_architecture("textcnn")
        print(json.dumps({"names": names, "before": before, "ok": ok, "hub": is_architecture("bert-base-uncased")}))
    """)
    assert {"textcnn", "fasttext", "dpcnn"} <= set(r["names"])
    assert r["before"] is False and r["ok"] is True and r["hub"] is False


def test_a_command_raises_the_collector_threshold_and_a_library_import_does_not():
    r = _run("""
        import gc, json
        import nlp_cv_tricks
        from nlp_cv_tricks.models.text_baselines import build_baseline
        library = gc.get_threshold()
        from nlp_cv_tricks.cli import main
        rc = main(["train", "no_such_recipe.yaml"])  # a command that gets past parsing, then refuses the file
        command = gc.get_threshold()
        main(["train", "no_such_recipe.yaml"])
        print(json.dumps({"library": library, "command": command, "again": gc.get_threshold(), "rc": rc}))
    """)
    assert r["library"] == [700, 10, 10], r  # CPython's default: a program importing the package keeps its own
    assert r["command"] == [10_000, 10, 10] and r["again"] == r["command"] and r["rc"] == 2, r


def test_when_imported_runs_after_the_import_or_at_once(tmp_path):
    """The command line quiets libraries when they are imported, not by importing them: the callback runs once the
    module has executed (or at once for a module already imported), and a module never imported costs nothing."""
    import subprocess
    import sys

    (tmp_path / "late_mod.py").write_text("VALUE = 41\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from nlp_cv_tricks.utils.import_hooks import when_imported; "
            "seen = []; when_imported('late_mod', lambda m: seen.append(m.VALUE + 1)); "
            "when_imported('never_imported_mod', lambda m: seen.append('no')); "
            "assert seen == [] and 'late_mod' not in sys.modules; import late_mod; assert seen == [42], seen; "
            "when_imported('os', lambda m: seen.append(m.__name__)); assert seen == [42, 'os'], seen")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
