"""Only the package list lives here; everything else is in pyproject.toml.

``[tool.setuptools.packages.find]`` cannot add packages of its own, and the wheel needs two besides the ones it
finds: the repository's ``recipes/`` and ``data/sst2/``, mapped into the package as
``nlp_cv_tricks/bundled/recipes/`` and ``nlp_cv_tricks/bundled/data/sst2/`` (``[tool.setuptools.package-dir]``),
so that ``nlp-cv-tricks train quickstart`` works from an installed wheel while the repository keeps one copy
where its README and docs name them.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["nlp_cv_tricks*"]) + ["nlp_cv_tricks.bundled.recipes",
                                                              "nlp_cv_tricks.bundled.data.sst2"])
