"""Retrieval over the bundled AWS notes with the real model: the right sections rank near the top.

The questions are paraphrases written for these tests, not the dev eval set's, so passing them is not
a result of tuning to that set. Membership in the top k is asserted, never exact scores.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.model

# (question, sections that must all be in the top k, k)
QUESTIONS = [
    ("Which service is a managed Redis cache?", {"elasticache"}, 3),
    ("What does CloudTrail record?", {"cloudtrail"}, 1),
    ("audit trail of API calls in my account", {"cloudtrail"}, 3),
    ("how do I run containers with Kubernetes on AWS", {"elastic-kubernetes-service-eks"}, 3),
    ("what is kube-proxy", {"what-is-kubernetes-"}, 3),  # only in the commented-out (hidden) text
    ("what runs on every kubernetes node to keep pods running", {"what-is-kubernetes-"}, 3),  # hidden too
    ("difference between SQS and SNS", {"sqs-simple-queue-service", "sns-simple-notification-service"}, 3),
    ("queue to decouple microservices", {"sqs-simple-queue-service"}, 3),
    ("push notifications pub sub", {"sns-simple-notification-service"}, 3),
    ("Which registry holds my Docker container images?", {"elastic-container-registry-ecr"}, 3),
    ("which AWS database is for graphs", {"neptune"}, 1),
    ("which managed database behaves like MongoDB", {"documentdb"}, 3),
    ("what is a good place for time series data", {"timestream"}, 3),
    ("data warehouse for analytics", {"redshift"}, 3),
    ("monitor metrics of my EC2 instances", {"cloudwatch"}, 3),
    ("infrastructure as code templates on AWS", {"cloudformation"}, 3),
    ("DNS service to register a domain", {"amazon-route53"}, 3),
    ("block storage disk for an EC2 server", {"elastic-block-store-ebs"}, 3),
    ("recognise faces in images", {"rekognition"}, 3),
    ("serverless functions billed per execution", {"lambda"}, 3),
    ("my lambda needs to talk to a database in a private subnet", {"aws-privatelink"}, 3),
    ("is a region made of several availability zones", {"availability-zone-az"}, 3),
    ("what key value store does kubernetes use", {"etcd"}, 3),
]


def top_anchors(app, question: str, k: int) -> list[str]:
    return [hit.section.anchor for hit in app.assistant.search.search(question, k).hits]


@pytest.mark.parametrize(("question", "expected", "k"), QUESTIONS, ids=[q for q, _, _ in QUESTIONS])
def test_expected_sections_in_top_k(aws_app, question, expected, k):
    """The sections that answer the question are among the first k retrieved."""
    found = top_anchors(aws_app, question, k)
    assert expected <= set(found), f"{question!r}: top {k} = {found}"


def test_hidden_text_is_found_and_flagged(aws_app):
    """A section found through its commented-out text says so, so the UI can mark the citation."""
    hits = aws_app.assistant.search.search("what does the kube-scheduler do", 3).hits
    match = [h for h in hits if h.section.anchor == "what-is-kubernetes-"]
    assert match
    assert match[0].section.hidden


@pytest.mark.parametrize(
    "question",
    [q for q, _, _ in QUESTIONS]
    + ["table of contents", "EC2 vs ECS vs EKS vs Lambda", "Databases", "Storage", "Compute", "Container Services"],
)
def test_toc_and_empty_sections_never_retrieved(aws_app, question):
    """A list of links or a bare heading answers nothing, even when the query is its very title."""
    hits = aws_app.assistant.search.search(question, 10).hits
    assert hits
    assert all(hit.section.kind == "content" for hit in hits), [(h.section.anchor, h.section.kind) for h in hits]


def test_bundled_index_is_populated_as_expected(aws_app):
    """The session index holds every content section of the notes and nothing else."""
    indexable = {s.key for s in aws_app.index.sections if s.indexable}
    assert "aws.md#elasticache" in indexable
    assert "aws.md#table-of-contents" not in indexable
    assert set(aws_app.index.manifest.hashes) == indexable


def test_resync_without_changes_embeds_nothing(aws_app):
    """Re-syncing the unchanged bundled notes embeds no text (a restart costs no re-embedding)."""
    report = aws_app.reindex()
    assert report.embedded == 0
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert report.unchanged == len([s for s in aws_app.index.sections if s.indexable])
