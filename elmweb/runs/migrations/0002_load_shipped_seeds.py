"""Load the seeds shipped in ``evolution/sodarace/seeds/`` (trusted: the engine tests them)."""

from __future__ import annotations

from django.db import migrations


def load_seeds(apps, schema_editor):
    from evolution.sodarace import seeds

    Seed = apps.get_model("runs", "Seed")
    for seed in seeds.SEEDS.values():
        Seed.objects.update_or_create(
            name=seed.name,
            defaults={
                "title": seed.title,
                "description": seed.description,
                "text": seed.text,
                "preamble": seed.preamble,
                "builtin": True,
                "enabled": True,
            },
        )


def unload_seeds(apps, schema_editor):
    from evolution.sodarace import seeds

    apps.get_model("runs", "Seed").objects.filter(name__in=list(seeds.SEEDS), builtin=True).delete()


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_initial")]

    operations = [migrations.RunPython(load_seeds, unload_seeds)]
