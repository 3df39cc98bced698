"""`python -m rat.engine.workerproc FD KIND [MODULE...]`: start an engine worker.

A separate entry module, so `rat.engine.worker` (and the job registry in it) is imported once
under its real name rather than as `__main__`.
"""

import sys

from rat.engine.worker import main

sys.exit(main(sys.argv))
