"""Kubernetes objects for forklift's training jobs and endpoints (`forklift serve --runtime kubernetes`).

This package knows Kubernetes objects and nothing of SageMaker's request shapes: the control plane
(the Kubernetes backend) turns a job or a variant into a `pods.PodPlan` and asks `objects` for the
Job, Deployment, Service, Secret and NetworkPolicy; it creates and watches them through the API.

- `settings`: the `[kubernetes]` table of config.toml (`KubeSettings`), and `runtime`.
- `names`: DNS-1123 names for SageMaker names (`object_name`), label keys and values.
- `pods`: the plan of one container and its pod spec, confined as docker confines a container.
- `objects`: the Job, the Deployment and its Service; `pullsecrets`: registry credentials as a
  dockerconfigjson Secret, and `redacted`; `netpol`: isolation and VpcConfig as a NetworkPolicy;
  `manifests`: YAML for people.

Decisions the objects rest on:

- **One namespace**, `[kubernetes] namespace`: every object forklift makes lives there, labelled
  `forklift.io/managed-by=forklift`, so the server lists, reconciles and removes its own.
- **One volume.** Data reaches pods through ONE ReadWriteMany PersistentVolumeClaim
  (`volume_claim`) that also holds the forklift server's FORKLIFT_HOME (at `volume_subpath` inside
  it, default its root). A pod mounts sub-paths of that claim at /opt/ml/input,
  /opt/ml/input/config (read-only), /opt/ml/model, /opt/ml/output, and each channel at
  /opt/ml/input/data/<channel>: the same directories the runc backend bind-mounts, so the server
  stages channels and packs `model.tar.gz` from the claim exactly as it does on runc. No mount is
  ever the claim's root or above FORKLIFT_HOME (`pods.claim_path`), so a pod never sees the
  server's database, keys or other jobs.
- **Pinned images.** A pod runs `registry/repository@sha256:<digest>`, the digest forklift
  resolved; a tag is refused (`errors.NotPinned`).
- **Credentials in a Secret only.** One `kubernetes.io/dockerconfigjson` Secret per job or model
  variant, referenced by `imagePullSecrets`; the password is never in a pod spec, an env var, an
  exception or a log, and `to_yaml` redacts Secrets.
- **Forklift owns the life cycle.** A Job runs once (`backoffLimit: 0`, `restartPolicy: Never`) and
  is deleted by forklift after the outcome is recorded (no `ttlSecondsAfterFinished`).

Importing this package loads nothing; `objects` and the modules below it load the kubernetes client.
"""
