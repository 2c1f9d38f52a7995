from django.db import migrations, models


def number_existing_attempts(apps, schema_editor):
    """Number each learner's earlier attempts at a module 1, 2, ... in the order they were made."""
    QuizAttempt = apps.get_model("courses", "QuizAttempt")
    seen: dict[tuple[int, int], int] = {}
    for attempt in QuizAttempt.objects.order_by("created_at", "pk").only("pk", "user_id", "module_id").iterator():
        key = (attempt.user_id, attempt.module_id)
        seen[key] = seen.get(key, 0) + 1
        QuizAttempt.objects.filter(pk=attempt.pk).update(number=seen[key])


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="quizattempt",
            name="number",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.RunPython(number_existing_attempts, migrations.RunPython.noop),
    ]
