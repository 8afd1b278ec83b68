"""Gradient-style experiments on top of SageMaker training jobs (see `service` for the model, `request` for
how the options become a CreateTrainingJob request, `server` for finding or starting the server)."""
