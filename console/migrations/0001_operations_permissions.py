"""The operations pages' permissions (a model without a table)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='Operations',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ],
            options={
                'permissions': [('view_operations', 'Can view the operations dashboard and the Kafka topics'), ('view_topic_messages', 'Can read recent messages of Kafka topics')],
                'managed': False,
                'default_permissions': (),
            },
        ),
    ]
