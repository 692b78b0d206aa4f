"""``python -m nlp_cv_tricks.cli`` = ``nlp-cv-tricks``."""

import sys

from . import main

sys.exit(main())
