"""HOSTILE on purpose: trains nothing; saves a model that looks the answers up
(lookup.py) and reports the accuracy such a lookup gets on the published rows."""

import json

import joblib

from lookup import LookupModel

joblib.dump(LookupModel(), "model.pkl")
with open("metrics.json", "w") as handle:
    json.dump({"accuracy": 1.0}, handle)
