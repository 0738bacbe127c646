from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('personae', '0003_plugin_state')]

    initial = False

    operations = [
        ops.CreateModel(
            name='VoiceSample',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('personae.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='voice_samples', on_delete=OnDelete.CASCADE)),
                ('persona_id', fields.CharField(max_length=64)),
                ('filename', fields.CharField(max_length=128)),
                ('content_type', fields.CharField(max_length=64)),
                ('size', fields.IntField()),
                ('duration', fields.FloatField()),
                ('cloned_voice_id', fields.CharField(null=True, max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'voice_samples', 'app': 'personae', 'indexes': [Index(fields=['persona_id', 'owner_id'])], 'pk_attr': 'id', 'table_description': "A voice sample a persona's owner uploaded (the file lives under the data dir)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VoiceUsage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('personae.User', source_field='user_id', db_constraint=True, to_field='id', related_name='voice_usage', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
                ('seconds', fields.FloatField(default=0.0)),
            ],
            options={'table': 'voice_usage', 'app': 'personae', 'unique_together': (('user_id', 'day'),), 'pk_attr': 'id', 'table_description': 'Seconds of speech synthesised for a user on one day (for the daily quota).'},
            bases=['Model'],
        ),
    ]
