"""Similar submissions (issue 10): identical snapshots across learners are flagged, and
near-identical source files are found by copydetect's token fingerprints, while
unrelated code and the lab's own starter code are not."""

from __future__ import annotations

import hashlib
import io
import tarfile
import textwrap
import zipfile

import pytest

from courses.models import CourseStaff
from grading import similarity, storage
from labs.models import Lab
from tests.factories import UserFactory
from tests.grading.factories import SubmissionFactory

ORIGINAL = textwrap.dedent(
    """
    import json
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split


    def load(path):
        frame = pd.read_csv(path)
        features = frame.drop(columns=["target"])
        return features, frame["target"]


    def fit(features, labels, seed=42):
        x_train, x_val, y_train, y_val = train_test_split(features, labels, test_size=0.25, random_state=seed)
        model = LogisticRegression(max_iter=5000, C=0.5)
        model.fit(x_train, y_train)
        accuracy = float((model.predict(x_val) == y_val).mean())
        return model, accuracy


    def main():
        features, labels = load("data/train.csv")
        model, accuracy = fit(features, labels)
        with open("metrics.json", "w") as handle:
            json.dump({"accuracy": accuracy, "rows": len(labels)}, handle)
        print(f"validation accuracy {accuracy:.3f}")


    if __name__ == "__main__":
        main()
    """
)

# The same program with every name changed, comments added and one line moved:
# what a learner who copied and "made it their own" hands in.
DISGUISED = textwrap.dedent(
    """
    import json
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split


    # Read the training table.
    def read_table(csv_file):
        df = pd.read_csv(csv_file)
        X = df.drop(columns=["target"])
        return X, df["target"]


    def train(X, y, random_seed=42):
        # hold out a quarter for validation
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=random_seed)
        clf = LogisticRegression(max_iter=5000, C=0.5)
        clf.fit(X_tr, y_tr)
        acc = float((clf.predict(X_te) == y_te).mean())
        return clf, acc


    def run():
        X, y = read_table("data/train.csv")
        clf, acc = train(X, y)
        with open("metrics.json", "w") as out:
            json.dump({"accuracy": acc, "rows": len(y)}, out)
        print(f"validation accuracy {acc:.3f}")


    if __name__ == "__main__":
        run()
    """
)

UNRELATED = textwrap.dedent(
    '''
    """Population stability index between two samples."""
    import numpy as np


    class DriftMonitor:
        def __init__(self, bins=10, threshold=0.2):
            self.bins = bins
            self.threshold = threshold

        def edges(self, expected):
            cuts = np.quantile(expected, np.linspace(0, 1, self.bins + 1))
            cuts[0], cuts[-1] = -np.inf, np.inf
            return np.unique(cuts)

        def psi(self, expected, actual):
            cuts = self.edges(expected)
            e = np.clip(np.histogram(expected, cuts)[0] / len(expected), 1e-6, None)
            a = np.clip(np.histogram(actual, cuts)[0] / len(actual), 1e-6, None)
            return float(np.sum((a - e) * np.log(a / e)))

        def report(self, reference, current):
            out = {}
            for column in reference.columns:
                if column == "target" or column not in current:
                    continue
                value = self.psi(reference[column].to_numpy(), current[column].to_numpy())
                out[column] = {"psi": value, "drift": value > self.threshold}
            return out
    '''
)

# A long helper every learner is given in the starter: handing it in unchanged is no copying.
STARTER_HELPERS = textwrap.dedent(
    """
    import csv
    import hashlib
    import pathlib


    def read_rows(path):
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            return [dict(row) for row in reader]


    def fingerprint_file(path, chunk_size=65536):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(chunk_size), b""):
                digest.update(block)
        return digest.hexdigest()


    def ensure_directory(name):
        folder = pathlib.Path(name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


    def summarise(rows, column):
        values = [float(row[column]) for row in rows if row.get(column) not in (None, "")]
        if not values:
            return {"count": 0, "mean": None, "min": None, "max": None}
        return {"count": len(values), "mean": sum(values) / len(values), "min": min(values), "max": max(values)}
    """
)


def _snapshot(files: dict[str, str]) -> tuple[str, str]:
    """Stores a snapshot holding `files`; returns its name and SHA-256."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = raw.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    path = storage.work_dir() / f"{sha}.tar.gz"
    path.write_bytes(data)
    storage.put_snapshot(path)
    return path.name, sha


def _submit(user, lab, files, **extra):
    name, sha = _snapshot(files)
    return SubmissionFactory(user=user, lab=lab, snapshot_path=name, snapshot_sha256=sha, **extra)


@pytest.fixture
def store(settings, tmp_path):
    settings.SHIPWRIGHT_SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.SHIPWRIGHT_STORAGE_URL = ""


@pytest.fixture
def lab_with_starter(tiny_lab):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("tiny-starter/main.py", "raise SystemExit('not done')\n")
        archive.writestr("tiny-starter/helpers.py", STARTER_HELPERS)
    Lab.objects.filter(pk=tiny_lab.pk).update(starter_zip=raw.getvalue())
    return Lab.objects.get(pk=tiny_lab.pk)


@pytest.fixture
def cohort(store, lab_with_starter):
    lab = lab_with_starter
    people = {name: UserFactory(email=f"{name}@example.com") for name in ("ada", "bo", "cy", "dan", "eve")}
    subs = {
        # ada wrote it; bo disguised a copy; dan handed in ada's exact files.
        "ada": _submit(people["ada"], lab, {"train.py": ORIGINAL, "helpers.py": STARTER_HELPERS}),
        "bo": _submit(people["bo"], lab, {"src/model.py": DISGUISED, "helpers.py": STARTER_HELPERS}),
        "cy": _submit(people["cy"], lab, {"train.py": UNRELATED, "helpers.py": STARTER_HELPERS}),
        "eve": _submit(people["eve"], lab, {"monitor.py": UNRELATED.replace("DriftMonitor", "Psi") + "\n# mine\n"}),
    }
    # dan's earlier, different attempt is superseded by the copy he submits later.
    _submit(people["dan"], lab, {"train.py": "print('hello')\n"})
    subs["dan"] = _submit(people["dan"], lab, {"train.py": ORIGINAL, "helpers.py": STARTER_HELPERS})
    return lab, people, subs


def _pairs(lab, subs):
    names = {str(s.pk): name for name, s in subs.items()}
    return {
        (names[p.a], p.a_path, names[p.b], p.b_path): p.similarity
        for p in similarity.similar_pairs(lab)
        if p.a in names and p.b in names
    }


def test_identical_snapshots_of_different_learners_are_flagged(cohort):
    lab, people, subs = cohort
    groups = similarity.identical_snapshots(lab)
    assert [[s.user.email for s in group] for group in groups] == [["ada@example.com", "dan@example.com"]]


def test_a_learner_resubmitting_their_own_files_is_not_flagged(store, tiny_lab):
    ada = UserFactory()
    _submit(ada, tiny_lab, {"train.py": ORIGINAL})
    _submit(ada, tiny_lab, {"train.py": ORIGINAL})
    assert similarity.identical_snapshots(tiny_lab) == []
    assert similarity.similar_pairs(tiny_lab) == []


def test_a_disguised_copy_is_near_identical_and_unrelated_code_is_not(cohort):
    lab, _, subs = cohort
    pairs = _pairs(lab, subs)
    key = next(k for k in pairs if {k[0], k[2]} == {"ada", "bo"})
    assert {key[1], key[3]} == {"train.py", "src/model.py"}
    assert pairs[key] >= similarity.DEFAULT_THRESHOLD
    identical = next(k for k in pairs if {k[0], k[2]} == {"ada", "dan"})
    assert pairs[identical] == 1.0
    # cy's drift monitor resembles nobody's trainer; eve's reworked monitor resembles cy's.
    assert not [k for k in pairs if "cy" in (k[0], k[2]) and "eve" not in (k[0], k[2])]
    assert next(v for k, v in pairs.items() if {k[0], k[2]} == {"cy", "eve"}) >= similarity.DEFAULT_THRESHOLD
    # Sorted, most similar first.
    values = [p.similarity for p in similarity.similar_pairs(lab)]
    assert values == sorted(values, reverse=True)


def test_the_lab_s_starter_code_makes_nobody_look_alike(cohort):
    lab, _, subs = cohort
    assert not [k for k in _pairs(lab, subs) if "helpers.py" in (k[1], k[3])]


def test_results_are_cached_until_a_new_submission_arrives(cohort):
    lab, people, subs = cohort
    first = similarity.similar_pairs(lab)
    # The snapshots vanish from the store: the cached answer does not need them.
    for sub in subs.values():
        storage.store().delete(sub.snapshot_path)
    assert similarity.similar_pairs(lab) == first
    _submit(people["eve"], lab, {"train.py": DISGUISED})
    assert similarity.similar_pairs(lab) != first


@pytest.fixture
def staff_client(client, cohort):
    lab, _, _ = cohort
    auditor = UserFactory(email="reviewer@example.com")
    CourseStaff.objects.create(user=auditor, course=lab.course, role="auditor")
    client.force_login(auditor)
    return client


def test_the_page_lists_identical_groups_and_pairs_above_the_threshold(staff_client, cohort):
    page = staff_client.get("/instructor/labs/tiny-course/tiny/similar/").content.decode()
    assert "Snapshot <code>" in page and "dan@example.com" in page
    assert "src/model.py" in page
    assert "helpers.py</code>" not in page
    bad = staff_client.get("/instructor/labs/tiny-course/tiny/similar/?threshold=banana").content.decode()
    assert "The similarity threshold must be a number from 0.50 to 1" in bad


def test_the_side_by_side_view_marks_the_shared_code_for_staff_only(client, staff_client, cohort):
    lab, people, subs = cohort
    url = (
        f"/instructor/labs/tiny-course/tiny/similar/compare/"
        f"?a={subs['ada'].pk}&fa=train.py&b={subs['bo'].pk}&fb=src/model.py"
    )
    page = staff_client.get(url).content.decode()
    assert page.count("<mark>") >= 2 and "read_table" in page and "def load" in page
    missing = url.replace("fa=train.py", "fa=nope.py")
    assert staff_client.get(missing).status_code == 404
    other_lab = url.replace(str(subs["ada"].pk), "00000000-0000-0000-0000-000000000000")
    assert staff_client.get(other_lab).status_code == 404
    client.force_login(people["bo"])
    assert client.get(url).status_code == 404


def test_a_large_lab_is_compared_on_the_low_queue_and_shown_once_ready(staff_client, cohort, monkeypatch, settings):
    from grading import tasks

    lab, _, subs = cohort
    monkeypatch.setattr(similarity, "SYNC_LIMIT", 2)
    sent = []
    monkeypatch.setattr(tasks.lab_similarity, "apply_async", lambda **kw: sent.append(kw))
    url = "/instructor/labs/tiny-course/tiny/similar/"
    page = staff_client.get(url).content.decode()
    assert "in the background" in page and "src/model.py" not in page
    staff_client.get(url)  # a reload while it runs sends no second task
    assert sent == [{"args": [lab.pk], "queue": settings.SHIPWRIGHT_LOW_QUEUE}]
    assert tasks.lab_similarity(lab.pk) >= 3  # what the worker runs
    page = staff_client.get(url).content.decode()
    assert "in the background" not in page and "src/model.py" in page
