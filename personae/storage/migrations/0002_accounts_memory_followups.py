from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('personae', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('personae.User', source_field='user_id', db_constraint=True, to_field='id', related_name='api_tokens', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_tokens', 'app': 'personae', 'pk_attr': 'id', 'table_description': 'A bearer token a user created for API clients. Only its hash is stored.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FollowUp',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('persona_id', fields.CharField(max_length=64)),
                ('user', fields.ForeignKeyField('personae.User', source_field='user_id', db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.CASCADE)),
                ('conversation', fields.CharField(max_length=191)),
                ('platform', fields.CharField(max_length=32)),
                ('topic', fields.CharField(max_length=200)),
                ('question', fields.TextField(unique=False)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'follow_ups', 'app': 'personae', 'indexes': [Index(fields=['persona_id', 'user_id', 'created_at']), Index(fields=['status', 'due_at'])], 'pk_attr': 'id', 'table_description': 'A curiosity follow-up question a persona wants to ask a user.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LinkCode',
            fields=[
                ('code_hash', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('platform', fields.CharField(max_length=32)),
                ('external_id', fields.CharField(max_length=191)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'link_codes', 'app': 'personae', 'pk_attr': 'code_hash', 'table_description': 'A one-time code that links a platform identity to a web account.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MemoryRevision',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item_id', fields.BigIntField()),
                ('persona_id', fields.CharField(max_length=64)),
                ('user', fields.ForeignKeyField('personae.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memory_revisions', on_delete=OnDelete.CASCADE)),
                ('action', fields.CharField(max_length=16)),
                ('kind', fields.CharField(max_length=32)),
                ('old_text', fields.TextField(unique=False)),
                ('new_text', fields.TextField(null=True, unique=False)),
                ('message_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'memory_revisions', 'app': 'personae', 'indexes': [Index(fields=['persona_id', 'user_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A change to a memory item: its text before and after, and the message'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebSession',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('user', fields.ForeignKeyField('personae.User', source_field='user_id', db_constraint=True, to_field='id', related_name='web_sessions', on_delete=OnDelete.CASCADE)),
                ('csrf_token', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'web_sessions', 'app': 'personae', 'pk_attr': 'id', 'table_description': "A browser login session. Only the cookie value's hash is stored."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='MemoryItem',
            name='embedding',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='MemoryItem',
            name='last_used_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='MemoryItem',
            name='uses',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='User',
            name='current_persona',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='User',
            name='password_hash',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name='User',
            name='username',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
    ]
