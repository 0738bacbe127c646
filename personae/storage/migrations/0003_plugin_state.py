from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('personae', '0002_accounts_memory_followups')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PluginState',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('plugin', fields.CharField(max_length=64)),
                ('persona_id', fields.CharField(max_length=64)),
                ('user', fields.ForeignKeyField('personae.User', source_field='user_id', db_constraint=True, to_field='id', related_name='plugin_state', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=100)),
                ('value', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'plugin_state', 'app': 'personae', 'unique_together': (('persona_id', 'user_id', 'plugin', 'key'),), 'pk_attr': 'id', 'table_description': 'A small JSON value a plugin keeps per scope (``runtime.plugin_state``).'},
            bases=['Model'],
        ),
    ]
