"""nlp-cv-tricks: fine-tuning NLP and CV models with the tuning tricks practitioners swear by.

Importing the package registers its model architectures with the ``transformers`` Auto classes, so
``AutoModelFor*.from_pretrained(dir)`` loads models it trained.
"""

__version__ = "0.1.0"

from .config import Recipe, RecipeError, load_recipe  # noqa: E402
from .engine.events import Trick  # noqa: E402
from . import tasks as _tasks  # noqa: E402,F401  (registers the built-in tasks)


def _register() -> None:
    """Registration hooks of the package's own modules (architectures, tasks, subcommands)."""
    from .models import text_baselines

    text_baselines.register_auto_classes()  # AutoModelForSequenceClassification loads TextCNN & co.
    text_baselines.register_architectures()  # model.name: textcnn | fasttext | dpcnn | textrnn | ...
    from .data.mrc_task import register as _register_qa

    _register_qa()  # question-answering task, Auto classes of the QA heads, qa-eval / qa-predict
    from . import diagnostics  # noqa: F401  (diagnose/inspect/probe-cls/plot-embeddings; imbalance_watch, ...)
    from .ablate import add_cli as _ablate_cli
    from .cli import register_cli

    register_cli(_ablate_cli)  # ablate, lr-sweep
    from .hardcases.cli import add_cli as _hardcases_cli

    register_cli(_hardcases_cli)  # hardcases mine|export|import|retrain|loop|versions
    from .report.cli import add_cli as _report_cli

    register_cli(_report_cli)  # report
    from .models.long import register as _register_long

    _register_long()  # chunk_pool Auto classes, the long-text-classification task, convert-long


_register()

__all__ = ["Recipe", "RecipeError", "load_recipe", "Trick", "__version__"]


def __getattr__(name):  # lazy: importing the package stays cheap
    if name == "Trainer":
        from .engine.trainer import Trainer

        return Trainer
    raise AttributeError(name)
