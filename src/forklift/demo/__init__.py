"""The main job: forklift end to end on its embedded defaults, loudly failing on any step.

A private registry with TLS (a generated CA registered in certs.d) and basic auth; a training image
and an inference image built and pushed with credentials; a credentials-provider function; then
`forklift serve` and AWS's documented boto3 code, unchanged but for the endpoint (set through
`AWS_ENDPOINT_URL_SAGEMAKER`): a training job from the private registry (Vpc mode, credentials
function), the trained model deployed to an endpoint, predictions; and the same training image as a
Gradient-style experiment.
"""

# Nothing is imported here: `forklift samples` uses `demo.samples` without loading the demo's flows
# (`demo.main.run_demo` runs them).
