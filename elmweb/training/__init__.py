"""Stage 2 in the lab: datasets from runs, training a model as a Celery task, its evaluation."""
