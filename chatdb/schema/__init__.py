"""The schema as Peewee models: enums, fields, models and the content rules."""
