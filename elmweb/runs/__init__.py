"""The runs app: evolution runs, their genomes, evaluations, archive and events.

Layout (Django-Styleguide): ``services`` write, ``selectors`` read, ``views``,
``tasks`` and ``consumers`` are thin entry points that call them.
"""
