"""The Staff group, with the accounts permissions staff have: they may look up users, not change them."""

from django.db import migrations


def create_staff_group(apps, schema_editor):
    from accounts.roles import grant_staff_permissions

    grant_staff_permissions(apps, app_label="accounts", codenames=["view_user"])


def remove_staff_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Staff").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_staff_group, remove_staff_group)]
