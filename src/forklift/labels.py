"""The labels forklift puts on its containers, and what `forklift ps` reads them by.

Plain names, importable by every layer: the control plane and `forklift run` write them, the CLI
reads them back from the runtime without importing the control plane.
"""

TRAINING_JOB = "forklift.training-job"  # the training job a container runs
ENDPOINT = "forklift.endpoint"  # the endpoint an instance serves
VARIANT = "forklift.variant"  # ... and its production variant
RUN = "forklift.run"  # the image a `forklift run` container runs
