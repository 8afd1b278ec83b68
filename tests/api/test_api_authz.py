"""Per-key policies, against a real `forklift serve`, keys made by the real `forklift keys create --policy`
and the real boto3 clients signing with them.

Every request is authorized once authenticated: `sagemaker:<Operation>` / `logs:<Operation>` /
`sagemaker:InvokeEndpoint` on the ARN of the resource it names (`cloudwatch:<Operation>` on `*`); a
refusal is AWS's AccessDeniedException naming the key's user ARN, the action and the resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from test_api_keys import NO_RETRY, REGION, created_key, eventually, forklift, unsigned_list

from conftest import Server, start_server, stop_server
from fixtures.cloudwatch import PROTOCOLS, cloudwatch_client

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Allowed"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/Other"
SAGEMAKER_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"

POLICIES = {
    "describer": [{"Effect": "Allow", "Action": "sagemaker:Describe*", "Resource": "*"}],
    "denied-one": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "sagemaker:DescribeTrainingJob",
                    "Resource": f"{SAGEMAKER_ARN}:training-job/secret-*"}],
    "invoker": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint",
                 "Resource": f"{SAGEMAKER_ARN}:endpoint/open-?"},
                {"Effect": "Deny", "Action": "sagemaker:InvokeEndpoint",
                 "Resource": f"{SAGEMAKER_ARN}:endpoint/open-x"}],
    "logger": [{"Effect": "Allow", "Action": "logs:*",
                "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}"}],
    "passer": [{"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"},
               {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE}],
    "path-passer": [{"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"},
                    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/team/*"}],
    "deployer": [{"Effect": "Allow", "Action": "sagemaker:CreateEndpoint",
                  "Resource": [f"{SAGEMAKER_ARN}:endpoint/team-a-*", f"{SAGEMAKER_ARN}:endpoint-config/team-a-*"]}],
    "log-denied": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "logs:*",
                    "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/secret"}],
    "tagger": [{"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"},
               {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE},
               {"Effect": "Allow", "Action": ["sagemaker:AddTags", "sagemaker:ListTags"],
                "Resource": f"{SAGEMAKER_ARN}:training-job/tagged-*"}],
    "not-logs": [{"Effect": "Allow", "NotAction": "logs:*", "NotResource": f"{SAGEMAKER_ARN}:model/*"}],
    "metrics-lister": [{"Effect": "Allow", "Action": ["cloudwatch:ListMetrics", "cloudwatch:GetMetricStatistics"],
                        "Resource": "*"}],
}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, database) -> Iterator[tuple[Server, dict[str, tuple[str, str]]]]:
    server = start_server(tmp_path_factory.mktemp("authz-serve") / "home", database=database)
    keys = {"full": created_key(server.home, "--name", "full")}
    for name, statements in POLICIES.items():
        path = server.home / f"{name}.json"
        path.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}))
        keys[name] = created_key(server.home, "--name", name, "--policy", str(path))
    eventually(lambda: unsigned_list(server).status_code == 400)
    yield server, keys
    stop_server(server)


def client(server: Server, keys: dict, name: str, service: str = "sagemaker"):
    key, secret = keys[name]
    return boto3.client(service, endpoint_url=server.url, region_name=REGION, config=NO_RETRY,
                        aws_access_key_id=key, aws_secret_access_key=secret)


def refusal(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def job_request(name: str, role: str = ROLE) -> dict:
    """A request that passes authorization and then fails the image rules (no job is started)."""
    return {"TrainingJobName": name, "RoleArn": role,
            "AlgorithmSpecification": {"TrainingImage": "registry.example/team/img:1", "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}}


def test_a_describe_only_key_describes_but_may_not_create(keyed):
    server, keys = keyed
    sagemaker = client(server, keys, "describer")
    code, _ = refusal(lambda: sagemaker.describe_training_job(TrainingJobName="nope"))
    assert code == "ValidationException"  # authorized: the job simply does not exist
    code, message = refusal(lambda: sagemaker.create_training_job(**job_request("made")))
    assert code == "AccessDeniedException"
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/describer is not authorized to perform: "
                       f"sagemaker:CreateTrainingJob on resource: {SAGEMAKER_ARN}:training-job/made because no "
                       "identity-based policy allows the sagemaker:CreateTrainingJob action")
    [denied] = [r for path in sorted((server.home / "audit").glob("*.jsonl"))
                for r in map(json.loads, path.read_text().splitlines())
                if r.get("operation") == "CreateTrainingJob" and r.get("resource", "").endswith("/made")]
    assert denied["outcome"] == "AccessDeniedException"
    assert denied["principal"] == f"arn:aws:iam::{ACCOUNT}:user/describer"
    code, message = refusal(sagemaker.list_training_jobs)  # List* names no resource: "*"
    assert code == "AccessDeniedException" and "sagemaker:ListTrainingJobs on resource: * because" in message
    logs = client(server, keys, "describer", "logs")
    code, message = refusal(logs.describe_log_groups)
    assert code == "AccessDeniedException" and "logs:DescribeLogGroups" in message


def test_a_key_without_a_policy_has_full_access(keyed):
    server, keys = keyed
    assert client(server, keys, "full").list_training_jobs()["TrainingJobSummaries"] == []
    code, message = refusal(lambda: client(server, keys, "full").create_training_job(**job_request("full-job")))
    assert code == "ValidationException" and "platform registry" in message


def test_deny_beats_allow_on_the_resource_it_names(keyed):
    server, keys = keyed
    sagemaker = client(server, keys, "denied-one")
    code, message = refusal(lambda: sagemaker.describe_training_job(TrainingJobName="secret-plan"))
    assert code == "AccessDeniedException"
    assert message.endswith(f"sagemaker:DescribeTrainingJob on resource: {SAGEMAKER_ARN}:training-job/secret-plan "
                            "with an explicit deny in an identity-based policy")
    assert refusal(lambda: sagemaker.describe_training_job(TrainingJobName="public"))[0] == "ValidationException"


def test_invoke_endpoint_is_scoped_to_the_endpoints_the_policy_names(keyed):
    server, keys = keyed
    runtime = client(server, keys, "invoker", "sagemaker-runtime")
    # allowed: past authorization the endpoint is simply unknown
    code, message = refusal(lambda: runtime.invoke_endpoint(EndpointName="open-a", Body=b"{}"))
    assert code == "ValidationError" and "open-a" in message
    code, message = refusal(lambda: runtime.invoke_endpoint(EndpointName="closed", Body=b"{}"))
    assert code == "AccessDeniedException"
    assert f"sagemaker:InvokeEndpoint on resource: {SAGEMAKER_ARN}:endpoint/closed because" in message
    code, message = refusal(lambda: runtime.invoke_endpoint(EndpointName="open-x", Body=b"{}"))
    assert code == "AccessDeniedException" and "explicit deny" in message
    code, _ = refusal(lambda: client(server, keys, "invoker").describe_endpoint(EndpointName="open-a"))
    assert code == "AccessDeniedException"  # the key may invoke, nothing else


def test_logs_actions_are_scoped_to_the_log_group(keyed):
    server, keys = keyed
    logs = client(server, keys, "logger", "logs")
    code, _ = refusal(lambda: logs.get_log_events(logGroupName=LOG_GROUP, logStreamName="job/algo-1-0"))
    assert code == "ResourceNotFoundException"  # authorized: no such stream yet
    code, message = refusal(lambda: logs.get_log_events(logGroupName="/other", logStreamName="s"))
    assert code == "AccessDeniedException"
    assert f"logs:GetLogEvents on resource: arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/other because" in message
    assert refusal(lambda: client(server, keys, "logger").list_models())[0] == "AccessDeniedException"


def test_not_action_and_not_resource(keyed):
    server, keys = keyed
    sagemaker = client(server, keys, "not-logs")
    assert sagemaker.list_models()["Models"] == []
    assert refusal(lambda: sagemaker.describe_model(ModelName="m"))[0] == "AccessDeniedException"
    assert refusal(client(server, keys, "not-logs", "logs").describe_log_groups)[0] == "AccessDeniedException"


def test_passing_a_role_needs_iam_pass_role_on_it(keyed):
    server, keys = keyed
    sagemaker = client(server, keys, "passer")
    code, message = refusal(lambda: sagemaker.create_training_job(**job_request("passes")))
    assert code == "ValidationException" and "platform registry" in message  # authorized, then the image rules
    code, message = refusal(lambda: sagemaker.create_training_job(**job_request("passes-not", OTHER_ROLE)))
    assert code == "AccessDeniedException"
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/passer is not authorized to perform: iam:PassRole on "
                       f"resource: {OTHER_ROLE} because no identity-based policy allows the iam:PassRole action")


def test_tags_need_sagemaker_add_tags_on_the_resource_they_tag(keyed):
    """AddTags and ListTags are asked about the ResourceArn given; a Create* with Tags needs AddTags too."""
    server, keys = keyed
    sagemaker = client(server, keys, "passer")
    tags = [{"Key": "team", "Value": "a"}]
    code, message = refusal(lambda: sagemaker.create_training_job(**job_request("untagged"), Tags=tags))
    assert code == "AccessDeniedException"
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/passer is not authorized to perform: sagemaker:AddTags on "
                       f"resource: {SAGEMAKER_ARN}:training-job/untagged because no identity-based policy allows "
                       "the sagemaker:AddTags action")
    # An experiment run's claim is forklift's own tag, which every run carries: not the caller tagging.
    claim = [{"Key": "forklift:experiment", "Value": "mnist"}, {"Key": "forklift:experiment-run", "Value": "x"}]
    code, message = refusal(lambda: sagemaker.create_training_job(**job_request("claimed"), Tags=claim))
    assert code == "ValidationException", message  # past authorization (the claim itself is then checked)
    tagger = client(server, keys, "tagger")
    code, message = refusal(lambda: tagger.create_training_job(**job_request("tagged-1"), Tags=tags))
    assert code == "ValidationException" and "platform registry" in message  # authorized, then the image rules
    code, message = refusal(lambda: tagger.add_tags(ResourceArn=f"{SAGEMAKER_ARN}:training-job/tagged-2", Tags=tags))
    assert code == "ValidationException" and f"{SAGEMAKER_ARN}:training-job/tagged-2 does not exist" in message
    other = f"{SAGEMAKER_ARN}:model/other"
    for call in (lambda: tagger.add_tags(ResourceArn=other, Tags=tags), lambda: tagger.list_tags(ResourceArn=other),
                 lambda: tagger.delete_tags(ResourceArn=other, TagKeys=["team"])):
        code, message = refusal(call)
        assert code == "AccessDeniedException" and f"on resource: {other} because" in message


def test_a_role_path_does_not_pass_a_role_the_policy_does_not_name(keyed):
    """forklift's roles are known by name: role/team/Admin is the role Admin, and PassRole is asked for it."""
    server, keys = keyed
    sagemaker = client(server, keys, "path-passer")
    code, message = refusal(lambda: sagemaker.create_training_job(
        **job_request("by-path", f"arn:aws:iam::{ACCOUNT}:role/team/Admin")))
    assert code == "AccessDeniedException"
    assert f"iam:PassRole on resource: arn:aws:iam::{ACCOUNT}:role/Admin because" in message


def test_create_endpoint_needs_the_action_on_its_endpoint_config_too(keyed):
    server, keys = keyed
    sagemaker = client(server, keys, "deployer")
    code, message = refusal(lambda: sagemaker.create_endpoint(EndpointName="team-a-1",
                                                              EndpointConfigName="team-a-config"))
    assert code == "ValidationException" and "team-a-config" in message  # authorized; no such config
    code, message = refusal(lambda: sagemaker.create_endpoint(EndpointName="team-a-2",
                                                              EndpointConfigName="team-b-config"))
    assert code == "AccessDeniedException"
    assert f"sagemaker:CreateEndpoint on resource: {SAGEMAKER_ARN}:endpoint-config/team-b-config" in message


def test_a_log_group_arn_of_another_region_or_account_is_authorized_as_this_servers(keyed):
    server, keys = keyed
    logs = client(server, keys, "log-denied", "logs")
    for identifier in ("/secret", "arn:aws:logs:eu-west-9:111111111111:log-group:/secret",
                       "arn:aws-cn:logs:cn-north-1:222222222222:log-group:/secret"):
        code, message = refusal(lambda identifier=identifier: logs.get_log_events(
            logGroupIdentifier=identifier, logStreamName="s"))
        assert code == "AccessDeniedException", identifier
        assert f"on resource: arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/secret with an explicit deny" in message


def test_keys_list_says_which_keys_have_a_policy(keyed):
    server, keys = keyed
    listing = json.loads(forklift(server.home, "keys", "list", "-o", "json").stdout)["AccessKeys"]
    assert {k["Name"]: k["HasPolicy"] for k in listing} == {"full": False, **{name: True for name in POLICIES}}
    table = forklift(server.home, "keys", "list").stdout
    assert "full access" in table and all(secret not in table for _, secret in keys.values())


@pytest.mark.parametrize(("document", "says"), [
    ("{not json", "not valid JSON"),
    ('{"Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}, {"Effect": "Permit", '
     '"Action": "x", "Resource": "*"}]}', 'Statement[1].Effect must be "Allow" or "Deny"'),
    ('{"Statement": {"Effect": "Allow", "Action": "sagemaker:*"}}', "Statement[0] needs exactly one of Resource"),
])
def test_a_malformed_policy_file_is_refused_by_the_cli(tmp_path: Path, document: str, says: str):
    home = tmp_path / "home"
    path = tmp_path / "policy.json"
    path.write_text(document)
    refused = forklift(home, "keys", "create", "--policy", str(path))
    assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr
    assert "AWS_SECRET_ACCESS_KEY" not in refused.stdout
    assert "FKIA" not in forklift(home, "keys", "list").stdout  # nothing was stored


def render(server: Server, keys: dict, key_name: str | None, *args: str, secret_suffix: str = ""):
    """`forklift k8s render ARGS` against `server`, signed by the key named (unsigned with None)."""
    env = {}
    if key_name is not None:
        key, secret = keys[key_name]
        env = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret + secret_suffix, "AWS_DEFAULT_REGION": REGION}
    return forklift(server.home, "k8s", "render", *args, "--endpoint-url", server.url, **env)


def one_line_error(result) -> str:
    assert result.returncode == 1 and result.stdout == "", (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    return line


def test_k8s_render_is_authenticated_and_authorized_as_the_describe_it_stands_for(keyed):
    server, keys = keyed
    denied = one_line_error(render(server, keys, "denied-one", "--training-job", "secret-plan"))
    assert denied.startswith("Error: AccessDeniedException: ") and denied.endswith(
        f"sagemaker:DescribeTrainingJob on resource: {SAGEMAKER_ARN}:training-job/secret-plan with an explicit deny "
        "in an identity-based policy")
    # authorized: the job simply does not exist, and the answer names it
    assert one_line_error(render(server, keys, "denied-one", "--training-job", "public")) == \
        "Error: ResourceNotFound: Training job public does not exist on this server."
    denied = one_line_error(render(server, keys, "invoker", "--endpoint", "open-a"))
    assert f"sagemaker:DescribeEndpoint on resource: {SAGEMAKER_ARN}:endpoint/open-a because no" in denied
    assert one_line_error(render(server, keys, "describer", "--endpoint", "open-a")) == \
        "Error: ResourceNotFound: Could not find endpoint open-a."
    assert one_line_error(render(server, keys, None, "--training-job", "public")).startswith(
        "Error: MissingAuthenticationTokenException: ")
    assert one_line_error(render(server, keys, "full", "--training-job", "public", secret_suffix="x")).startswith(
        "Error: InvalidSignatureException: ")
    invalid = one_line_error(render(server, keys, "full", "--training-job", "not_a_name"))
    assert invalid.startswith("Error: ValidationException: ") and "trainingJobName" in invalid


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cloudwatch_actions_are_cloudwatch_ones_on_everything(keyed, protocol):
    server, keys = keyed
    key, secret = keys["metrics-lister"]
    cloudwatch = cloudwatch_client(server.url, protocol, REGION,
                                   {"aws_access_key_id": key, "aws_secret_access_key": secret})
    assert cloudwatch.list_metrics(Namespace="AWS/SageMaker")["Metrics"] == []  # signed for `monitoring`, allowed
    code, message = refusal(lambda: cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": "x"},
                                                      "Period": 60, "Stat": "Sum"}}],
        StartTime=0, EndTime=60))
    assert code == "AccessDeniedException"
    assert "cloudwatch:GetMetricData on resource: * because no identity-based policy allows" in message
    stranger = cloudwatch_client(server.url, protocol, REGION, {"aws_access_key_id": "AKIDNOTAKEY",
                                                                "aws_secret_access_key": "wrong"})
    assert refusal(lambda: stranger.list_metrics())[0] == "UnrecognizedClientException"
