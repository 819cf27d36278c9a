"""Celery retry and revoke permissions, and the audit log of operator actions (console.AuditEntry)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('console', '0002_groups'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='operations',
            options={'default_permissions': (), 'managed': False, 'permissions': [('view_operations', 'Can view the operations dashboard and the Kafka topics'), ('view_topic_messages', 'Can read recent messages of Kafka topics'), ('retry_task', 'Can retry a failed Celery task with its original arguments'), ('revoke_task', 'Can revoke a queued Celery task')]},
        ),
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('actor_name', models.CharField(help_text='Username at the time (kept if the user is deleted).', max_length=150)),
                ('action', models.CharField(db_index=True, help_text='e.g. task_retry, task_revoke', max_length=64)),
                ('target', models.CharField(db_index=True, help_text='What was acted on, e.g. task:<id>', max_length=255)),
                ('outcome', models.CharField(choices=[('succeeded', 'Succeeded'), ('refused', 'Refused'), ('failed', 'Failed')], max_length=16)),
                ('detail', models.JSONField(blank=True, default=dict)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'audit entry',
                'verbose_name_plural': 'audit entries',
                'ordering': ['-at', '-id'],
            },
        ),
    ]
