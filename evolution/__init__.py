"""elmweb's ELM engine: Sodarace walkers, their physics, and (later) the evolution loop.

Packages:
    evolution.types: domain vocabulary (``WalkerSpec``, ``MuscleSpec``, ``Descriptor``,
        ``Evaluation``).
    evolution.sodarace: the walker API, validation, terrains, physics, fitness, seeds.

This package never imports Django, Celery or Channels; the web layer wraps it.
"""
