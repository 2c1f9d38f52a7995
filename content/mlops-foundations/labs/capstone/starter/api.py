"""uvicorn api:app --host 127.0.0.1 --port 8000 (from the repository root).

GET /health, POST /predict with an audit trail in $AUDIT_LOG: bring your
serve-model and audit-trail solutions together here.
"""

from fastapi import FastAPI

app = FastAPI()
