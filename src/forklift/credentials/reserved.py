"""An experiment's stored registry credentials serve its own runs only.

`forklift experiments` keeps an experiment's `--registryUsername/--registryPassword` in the SecretStore,
owned by `experiment:NAME`, and names them in each run's training job as the reserved provider ARN
`…:function:forklift-secret-<id>` (see `functions`). That ARN is no secret (DescribeTrainingJob shows it),
so naming it proves nothing. What proves a run is the experiment's own is `run_token`: an HMAC, under a key
derived from this FORKLIFT_HOME's `secret.key` (which the experiments service shares with the server and an
API caller cannot read), over the secret id, the experiment, the job name and the image. The service sends
it as the job's `forklift:experiment-run` tag; CreateTrainingJob checks it (`check_reserved`) and keeps it
out of the stored job. A job name is used once, so a token seen once cannot start another job, nor pull
another image. CreateModel never may name such an ARN.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from forklift.config import Settings
from forklift.credentials.errors import CredentialsError

RUN_TAG = "forklift:experiment-run"
EXPERIMENT_TAG = "forklift:experiment"
_OWNER = "experiment:"
_PURPOSE = "experiment-run-claim-v1"


class ReservedCredentials(CredentialsError):
    """A request names an experiment's stored credentials without being one of that experiment's runs."""


@dataclass(frozen=True)
class RunClaim:
    """What a training job says about itself: which experiment's run it is, and the proof."""

    experiment: str
    job: str
    image: str
    token: str


def run_token(settings: Settings, secret_id: str, experiment: str, job: str, image: str) -> str:
    """The proof that training job `job` (pulling `image`) is a run of `experiment`, holding `secret_id`."""
    from forklift.credentials.secrets import derived_key  # cryptography loads only for an experiment's run

    message = "\0".join((secret_id, experiment, job, image)).encode()
    return hmac.new(derived_key(settings.home, _PURPOSE), message, hashlib.sha256).hexdigest()


def claim_from_tags(tags: Sequence[Mapping[str, str]] | None, job: str, image: str) -> RunClaim | None:
    """The claim a CreateTrainingJob request makes in its tags, if it makes one."""
    values = {tag.get("Key"): tag.get("Value", "") for tag in tags or ()}
    experiment, token = values.get(EXPERIMENT_TAG), values.get(RUN_TAG)
    if not experiment or not token:
        return None
    return RunClaim(experiment, job, image, token)


def check_reserved(settings: Settings, function_arn: str, field: str, claim: RunClaim | None = None) -> None:
    """ReservedCredentials unless `function_arn` is an ordinary provider, or the reserved ARN of stored
    credentials that `claim` proves to be for a run of an experiment holding them. `field` is the member
    the caller named the ARN in."""
    from forklift.credentials.functions import secret_id_of
    from forklift.credentials.secrets import SecretStore

    secret_id = secret_id_of(function_arn)
    if secret_id is None:
        return
    experiments = [o[len(_OWNER):] for o in SecretStore(settings).owners(secret_id) if o.startswith(_OWNER)]
    if claim is not None and claim.experiment in experiments:
        expected = run_token(settings, secret_id, claim.experiment, claim.job, claim.image)
        if hmac.compare_digest(expected, claim.token):
            return
    holders = (f"experiment {', '.join(experiments)}" if len(experiments) == 1 else
               f"experiments {', '.join(experiments)}" if experiments else "forklift's stored credentials")
    raise ReservedCredentials(
        f"{field} {function_arn} is reserved for {holders}: only that experiment's own runs "
        "(`forklift experiments start`) may pull with its stored registry credentials; name a credentials "
        "provider of your own (`forklift functions register`) instead")
