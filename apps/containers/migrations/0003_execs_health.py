import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import apps.containers.models


class Migration(migrations.Migration):
    dependencies = [
        ("containers", "0002_options_states_oom"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="container",
            name="health_status",
            field=models.CharField(
                blank=True,
                choices=[("", "No health check"), ("starting", "Starting"),
                         ("healthy", "Healthy"), ("unhealthy", "Unhealthy")],
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="container",
            name="health",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.CreateModel(
            name="Exec",
            fields=[
                ("id", models.CharField(default=apps.containers.models.new_container_id,
                                        editable=False, max_length=64, primary_key=True,
                                        serialize=False)),
                ("command", models.JSONField(default=list)),
                ("env", models.JSONField(blank=True, default=list)),
                ("user", models.CharField(blank=True, max_length=256)),
                ("working_dir", models.CharField(blank=True, max_length=4096)),
                ("tty", models.BooleanField(default=False)),
                ("attach_stdin", models.BooleanField(default=False)),
                ("state", models.CharField(
                    choices=[("created", "Created"), ("starting", "Starting"),
                             ("running", "Running"), ("exited", "Exited"), ("failed", "Failed")],
                    default="created", max_length=16)),
                ("pid", models.IntegerField(blank=True, null=True)),
                ("exit_code", models.IntegerField(blank=True, null=True)),
                ("error", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("container", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, related_name="execs",
                    to="containers.container")),
                ("created_by", models.ForeignKey(
                    blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-created_at"]},
        ),
    ]
