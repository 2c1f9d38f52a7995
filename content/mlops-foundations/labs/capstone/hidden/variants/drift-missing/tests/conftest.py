import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# api.py loads model.pkl at import time: train once if it is missing.
if not (ROOT / "model.pkl").exists():
    subprocess.run([sys.executable, "train.py"], cwd=ROOT, check=True)
sys.path.insert(0, str(ROOT))
