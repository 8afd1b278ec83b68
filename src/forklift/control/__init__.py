"""The state machines behind the API: training jobs, and models, endpoint configs and endpoints.

No HTTP here. `control.plane.ControlPlane` wires the pieces one server process needs:

    plane = ControlPlane.create(settings)     # store (SQLAlchemy), scheduler, runtime, services
    plane.start()                             # reconcile after a restart, then admit jobs
    plane.training.create(request, arn, who)  # TrainingService: create / describe / list / stop
    plane.logs                                # training jobs' LogSource
    plane.log_source()                        # training and endpoint logs: what the Logs API reads
    plane.close()                             # stop scheduling; containers keep running
"""

# Nothing is imported here: a module of this package (the instance types the CLI lists, say) loads
# without the whole control plane.
