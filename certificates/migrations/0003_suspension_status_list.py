"""The signed suspension status list starts with the bits of every certificate that
is suspended already, so a suspension made before it existed is published too. Its
credential is left empty: the site signs it on the first request (as it does for a
new revocation list)."""

from django.db import migrations

# certificates.status_list.MIN_LIST_BITS when this was written; a list never shrinks.
LIST_BITS = 131_072


def fill_suspension_list(apps, schema_editor):
    Certificate = apps.get_model("certificates", "Certificate")
    StatusList = apps.get_model("certificates", "StatusList")
    if StatusList.objects.filter(slug="suspension").exists():
        return
    bits = bytearray(LIST_BITS // 8)
    for index in Certificate.objects.filter(status="suspended").values_list("status_index", flat=True):
        bits[index // 8] |= 0x80 >> (index % 8)
    StatusList.objects.create(slug="suspension", bits=bytes(bits), credential="")


class Migration(migrations.Migration):
    dependencies = [("certificates", "0002_pending_certificate")]

    operations = [migrations.RunPython(fill_suspension_list, migrations.RunPython.noop)]
