"""The course gradebook for 2,000 learners by 8 labs, against a minimal view.

    python bench/gradebook_page.py [--learners 2000] [--labs 8] [--repeats 15]

An isolated setup: PostgreSQL database `shipwright_bench_gradebook` (created if
missing, migrated on every run), SHIPWRIGHT_VAR_DIR=var/bench-gradebook, no Redis
(the embedded broker; nothing here sends a task). It seeds, once, a course
`bench-gradebook` with L labs and N enrolled learners, each with 0 to 4 finished
attempts per lab (a quarter of cells untouched, the rest failed, passed or both,
plus a few queued): about 2.5 submissions per cell, bulk-inserted. A later run with
the same sizes reuses it.

The pages are requested in this process through Django's test client (the whole
request: middleware, session, the role check, the selector's queries, the template),
with the production settings (DJANGO_DEBUG=0, a random secret key): the gradebook as
the instructor first opens it (sorted by name, first page of 100 rows), sorted by a
lab's column descending, filtered to "not passed" in one lab, the JSON export of
every learner, and the baseline /livez (a view that returns "ok"), alternating, R
repeats each after one warm-up. Prints the median and the worst of each, and each
median over the baseline's. Target: the gradebook well under a second (≤ 0.5 s).
Every response must be 200 and the JSON must hold every learner, or the exit status is 1.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time

from _setup import bench_env, django_setup, ensure_database, exit_on_sigterm, manage, print_table

DATABASE = "shipwright_bench_gradebook"
VAR_DIR = "var/bench-gradebook"
COURSE = "bench-gradebook"
INSTRUCTOR = "bench-instructor@example.invalid"


def seed(learners: int, labs: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from courses.models import Course, CourseStaff, Enrollment
    from grading.models import Submission
    from labs.models import Lab

    course = Course.objects.filter(slug=COURSE).first()
    if course and course.enrollments.count() == learners and course.labs.count() == labs:
        return
    started = time.monotonic()
    rng = random.Random(42)
    now = timezone.now()
    with transaction.atomic():
        Course.objects.filter(slug=COURSE).delete()
        User.objects.filter(email__endswith="@bench.invalid").delete()
        course = Course.objects.create(
            slug=COURSE, title="Bench course", summary="-", estimated_hours=1, published=True
        )
        spec = {"checks": [{"name": "works", "kind": "exit_code", "stage": "run", "points": 100}], "stages": []}
        lab_rows = Lab.objects.bulk_create(
            Lab(
                course=course,
                slug=f"lab-{k}",
                title=f"Lab {k}",
                kind="repo",
                order=k,
                instructions_html="-",
                pass_mark=60,
                spec=spec,
                starter_zip=b"",
                hidden_archive=b"",
                content_hash="-",
            )
            for k in range(1, labs + 1)
        )
        users = User.objects.bulk_create(
            User(email=f"learner{n:05d}@bench.invalid", display_name=f"Learner {n:05d}", password="!")
            for n in range(learners)
        )
        Enrollment.objects.bulk_create(Enrollment(user=u, course=course) for u in users)
        rows = []
        for user in users:
            for lab in lab_rows:
                for _ in range(rng.choice([0, 0, 1, 2, 3, 4, 4, 5])):
                    score = rng.uniform(20, 100)
                    status = rng.choices(["passed" if score >= 60 else "failed", "queued"], weights=[30, 1])[0]
                    finished = status != "queued"
                    rows.append(
                        Submission(
                            user=user,
                            lab=lab,
                            source_kind="archive",
                            snapshot_sha256="0" * 64,
                            status=status,
                            score=score if finished else None,
                            max_score=100.0 if finished else None,
                            finished_at=now if finished else None,
                        )
                    )
        Submission.objects.bulk_create(rows, batch_size=5000)
        instructor, _ = User.objects.get_or_create(email=INSTRUCTOR, defaults={"display_name": "Bench Instructor"})
        CourseStaff.objects.get_or_create(user=instructor, course=course, defaults={"role": "instructor"})
    # Fresh statistics, as autovacuum would gather soon after real traffic: the planner
    # otherwise plans for the empty tables it last saw.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seeded {learners} learners x {labs} labs, {len(rows)} submissions in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--labs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    exit_on_sigterm()
    env = bench_env(
        database=DATABASE,
        var_dir=VAR_DIR,
        redis_db=None,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="0",
    )
    env.pop("SHIPWRIGHT_CACHE_URL", None)
    ensure_database(DATABASE)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")  # production settings serve hashed names
    django_setup(env)
    seed(args.learners, args.labs)

    from django.test import Client

    from accounts.models import User

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(email=INSTRUCTOR))
    base = f"/instructor/courses/{COURSE}"
    targets = {
        "baseline /livez": "/livez",
        "gradebook, by name, page 1": f"{base}/gradebook/",
        "gradebook, by a lab's score desc": f"{base}/gradebook/?sort=lab-3&dir=desc",
        "gradebook, not passed lab-5": f"{base}/gradebook/?lab=lab-5&status=not_passed",
        "JSON export, every learner": f"{base}/gradebook.json",
    }
    times: dict[str, list[float]] = {name: [] for name in targets}
    failures = 0
    for repeat in range(args.repeats + 1):
        for name, url in targets.items():
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                failures += 1
                print(f"{url}: HTTP {response.status_code}", file=sys.stderr)
            elif url.endswith(".json") and len(response.json()["learners"]) != args.learners:
                failures += 1
                print(f"{url}: {len(response.json()['learners'])} learners, not {args.learners}", file=sys.stderr)
            if repeat:  # the first round is the warm-up
                times[name].append(elapsed)
    baseline = statistics.median(times["baseline /livez"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        ratio = "" if name.startswith("baseline") else f" = {median / baseline:.0f}x baseline"
        target = "<= 0.5 s" if name.startswith("gradebook") else ""
        rows.append((f"{name} (median, max {max(values) * 1000:.0f} ms){ratio}", f"{median * 1000:.0f} ms", target))
    print(f"{args.learners} learners x {args.labs} labs, {args.repeats} repeats")
    print_table(rows)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
