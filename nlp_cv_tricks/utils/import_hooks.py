"""Run a function when a module is first imported (or at once if it already is): the command line quiets the
logging and progress bars of transformers, datasets and huggingface_hub this way, without importing them itself
(transformers alone takes ~0.5 s, and a FastText run needs none of them); and modules a run will need at its end
imported early, in a thread, while a loop that releases the GIL trains."""

from __future__ import annotations

import importlib.abc
import sys
import threading
from typing import Callable

__all__ = ["when_imported", "prefetch_imports"]

_PENDING: dict[str, list[Callable]] = {}
_LOCK = threading.Lock()


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched module it asks the other finders and wraps the loader's
    ``exec_module`` so that the callbacks run once the module has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PENDING:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # a loader shared by many modules (a class, as the built-in importers) is left alone
        original = loader.exec_module

        def exec_module(module):
            original(module)
            with _LOCK:
                callbacks = _PENDING.pop(fullname, [])
            for fn in callbacks:
                fn(module)

        loader.exec_module = exec_module
        return spec


_FINDER = _Finder()


def when_imported(name: str, fn: Callable) -> None:
    """Call ``fn(module)`` once ``name`` is imported: now if it already is, else right after its import."""
    module = sys.modules.get(name)
    if module is not None:
        fn(module)
        return
    with _LOCK:
        _PENDING.setdefault(name, []).append(fn)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def prefetch_imports(names) -> threading.Thread:
    """Import the modules ``names`` in a daemon thread (returned, started): while the main thread runs compiled
    code that releases the GIL (the compiled FastText loop), the imports take another core instead of the end of
    the run. A module that fails to import is skipped silently; its user imports it again and reports."""
    import importlib

    def load() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the code that needs it says what is missing
                pass

    thread = threading.Thread(target=load, name="nct-prefetch-imports", daemon=True)
    thread.start()
    return thread
