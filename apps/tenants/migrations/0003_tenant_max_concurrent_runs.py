from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_quotas_isolation_schema_dump"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="max_concurrent_runs",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
