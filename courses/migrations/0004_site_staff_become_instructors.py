"""Before course roles, every site-staff user (`is_staff`) could see every course's
submissions, regrade and export grades. So that nobody loses access on upgrade, each
active staff user who is not a superuser becomes an instructor of every course that
exists now; an administrator then narrows the roles on each course's staff page or in
the admin (README "Course staff roles"). Superusers need no rows: they may do
everything. Reversing deletes nothing (roles added later cannot be told apart)."""

from django.conf import settings
from django.db import migrations


def site_staff_become_instructors(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Course = apps.get_model("courses", "Course")
    CourseStaff = apps.get_model("courses", "CourseStaff")
    staff = list(User.objects.filter(is_staff=True, is_active=True, is_superuser=False))
    CourseStaff.objects.bulk_create(
        [CourseStaff(user=user, course=course, role="instructor") for user in staff for course in Course.objects.all()],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0003_course_staff"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(site_staff_become_instructors, migrations.RunPython.noop)]
