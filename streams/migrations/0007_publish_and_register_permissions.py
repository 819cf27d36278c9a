"""Permissions of the API's publishing actions: telemetry and product registration."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('streams', '0006_telemetry_overwrite'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='machinemetric',
            options={'ordering': ['time', 'parameter_id'], 'permissions': [('publish_telemetry', 'Can publish telemetry events (metrics and work orders)')]},
        ),
        migrations.AlterModelOptions(
            name='product',
            options={'ordering': ['product_id'], 'permissions': [('register_product', 'Can register products (publish to the registration topic)')]},
        ),
    ]
