"""``python -m grading`` (run from book/; ``make grade`` does): see `grading.grader`."""

import sys

from .grader import main

sys.exit(main())
