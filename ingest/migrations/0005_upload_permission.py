"""The permission to upload files to the inbox through the API."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0004_overall_refresh_pending'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='ingestedfile',
            options={'ordering': ['-created_at', '-id'], 'permissions': [('upload_file', 'Can upload files to the inbox')]},
        ),
    ]
