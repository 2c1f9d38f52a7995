"""Stage `train` of the API labs: run `python train.py` only when model.pkl is absent.

CONTRACTS.md: the grader starts the service "after `python train.py` when
`model.pkl` is absent". Exit status is train.py's (0 when nothing had to run).
"""

import os
import sys
from pathlib import Path

if Path("model.pkl").is_file():
    print("model.pkl present: train.py not run")
    sys.exit(0)
if not Path("train.py").is_file():
    print("model.pkl is absent and there is no train.py to create it")
    sys.exit(1)
os.execv(sys.executable, [sys.executable, "train.py"])
