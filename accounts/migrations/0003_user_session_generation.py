from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_staff_group"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="session_generation",
            field=models.PositiveSmallIntegerField(
                default=0,
                editable=False,
                help_text=(
                    "Bumped when the user's sessions must end at once (logout, password change "
                    "or reset, suspension, refresh-token reuse): access tokens carry the value "
                    "they were made with and any other is refused."
                ),
            ),
        ),
    ]
