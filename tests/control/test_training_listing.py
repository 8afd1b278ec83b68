"""ListTrainingJobs: filters, sort orders, and NextToken pages that stay correct while jobs are created."""

from __future__ import annotations

import uuid
from datetime import timedelta

from training_support import busybox_job, wait_for


def failing_job(name: str, image: str) -> dict:
    # A tag that does not exist: the job fails at the pull, without starting a container.
    return busybox_job(name, image.rsplit(":", 1)[0] + ":absent", "true")


def test_filters_sort_and_pagination_while_jobs_are_created(sagemaker, training_images):
    tag = uuid.uuid4().hex[:6]
    names = [f"list{tag}-{i:02d}" for i in range(7)]
    for name in names[:5]:
        sagemaker.create_training_job(**failing_job(name, training_images.busybox))

    page = sagemaker.list_training_jobs(NameContains=f"list{tag}", MaxResults=2, SortOrder="Ascending")
    seen = [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
    assert seen == names[:2]
    for name in names[5:]:  # created between pages
        sagemaker.create_training_job(**failing_job(name, training_images.busybox))
    token = page["NextToken"]
    while token:
        page = sagemaker.list_training_jobs(NameContains=f"list{tag}", MaxResults=2, SortOrder="Ascending",
                                            NextToken=token)
        seen += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
        token = page.get("NextToken")
    assert seen == names

    paginator = sagemaker.get_paginator("list_training_jobs")
    by_name = [s["TrainingJobName"] for p in paginator.paginate(
        NameContains=f"LIST{tag}", SortBy="Name", SortOrder="Descending", PaginationConfig={"PageSize": 3})
        for s in p["TrainingJobSummaries"]]
    assert by_name == sorted(names, reverse=True)

    for name in names:
        wait_for(sagemaker, name)
    failed = sagemaker.list_training_jobs(NameContains=f"list{tag}", StatusEquals="Failed", MaxResults=100)
    assert len(failed["TrainingJobSummaries"]) == 7
    assert all(s["TrainingJobStatus"] == "Failed" for s in failed["TrainingJobSummaries"])
    assert sagemaker.list_training_jobs(NameContains=f"list{tag}", StatusEquals="Completed")[
        "TrainingJobSummaries"] == []
    # boto3 sends request timestamps in whole seconds: compare against a second before the first job.
    first = sagemaker.describe_training_job(TrainingJobName=names[0])["CreationTime"] - timedelta(seconds=1)
    after = sagemaker.list_training_jobs(NameContains=f"list{tag}", CreationTimeAfter=first, MaxResults=100,
                                         SortOrder="Ascending")
    assert [s["TrainingJobName"] for s in after["TrainingJobSummaries"]] == names
    before = sagemaker.list_training_jobs(NameContains=f"list{tag}", CreationTimeBefore=first)
    assert before["TrainingJobSummaries"] == []


def test_a_token_from_another_listing_is_refused(sagemaker, training_images):
    import pytest
    from botocore.exceptions import ClientError

    tag = uuid.uuid4().hex[:6]
    for i in range(3):
        sagemaker.create_training_job(**failing_job(f"tok{tag}-{i}", training_images.busybox))
    token = sagemaker.list_training_jobs(NameContains=f"tok{tag}", MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as error:
        sagemaker.list_training_jobs(NameContains=f"tok{tag}", MaxResults=1, SortBy="Name", NextToken=token)
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_jobs_cli_list_show_and_errors(server, sagemaker, training_images):
    tag = uuid.uuid4().hex[:6]
    name = f"cli{tag}-job"
    sagemaker.create_training_job(**failing_job(name, training_images.busybox))
    wait_for(sagemaker, name)
    listed = server.forklift("jobs", "list", "--name-contains", f"cli{tag}")
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and "Failed" in listed.stdout
    shown = server.forklift("jobs", "show", name)
    assert shown.returncode == 0, shown.stderr
    assert "manifest unknown" in shown.stdout and "Downloading" in shown.stdout
    missing = server.forklift("jobs", "show", "no-such-job")
    assert missing.returncode == 1 and "Requested resource not found." in missing.stderr
