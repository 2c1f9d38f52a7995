"""Extension points that apps above accounts fill in their AppConfig.ready().

accounts is a bottom layer (enforced by import-linter), so the GDPR export and the
account deletion never import the apps that hold a learner's data: each app
registers what it exports and what it erases. Apps register in INSTALLED_APPS order,
which is the order of the export's sections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

# Each yields (section name, rows) pairs for the data export; rows are produced lazily.
account_exporters: list[Callable[[Any], Iterator[tuple[str, Iterable[dict]]]]] = []
# Each erases or anonymises its app's data of a user, inside the deletion's
# transaction and before the user row is deleted (files: via transaction.on_commit).
account_erasers: list[Callable[[Any], None]] = []
# Each gives `create_demo_users`' demo instructor what it needs to teach (courses
# makes them an instructor of every course) and returns a line to print, or "".
demo_instructor_setup: list[Callable[[Any], str]] = []
