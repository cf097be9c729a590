"""Follow-up questions made standalone without an LLM: what refers back, and what the rewrite reads like.

Pure: no model. Topics are built by hand the way the chain builds them (previous question, cited section's title
and parent heading).
"""

from __future__ import annotations

import pytest

from assistant.followup import Topic, condense, refers_back

SQS = Topic("What is SQS?", "SQS (Simple Queue Service)", "Notification and Messaging Services")
ECS = Topic("What is ECS?", "Elastic Container Service (ECS)", "Container Services")
EBS = Topic("What is EBS?", "Elastic Block Store (EBS)")  # a top-level section: no parent category


# The docstring examples.


def test_refers_back_docstring_examples():
    assert refers_back("How is it different from SNS?") == "pronoun"
    assert refers_back("And the Kubernetes one?") == "ellipsis"


def test_condense_docstring_pronoun_example():
    condensed = condense("How is it different from SNS?", SQS)
    assert condensed.standalone == "How is SQS (Simple Queue Service) different from SNS?"
    assert condensed.kind == "pronoun"
    assert condensed.question == "How is it different from SNS?"


def test_condense_docstring_ellipsis_example():
    condensed = condense("And the Kubernetes one?", ECS)
    assert condensed.standalone == "What is the Kubernetes one in Container Services?"
    assert condensed.kind == "ellipsis"


# Pronouns.


@pytest.mark.parametrize(
    ("question", "standalone"),
    [
        ("When should I pick it over SNS?", "When should I pick SQS (Simple Queue Service) over SNS?"),
        ("Is that a managed service?", "Is SQS (Simple Queue Service) a managed service?"),
        ("Who pays for them?", "Who pays for SQS (Simple Queue Service)?"),
        ("It scales how far?", "SQS (Simple Queue Service) scales how far?"),
    ],
)
def test_pronoun_is_replaced_by_the_topic_title(question, standalone):
    condensed = condense(question, SQS)
    assert condensed.kind == "pronoun"
    assert condensed.standalone == standalone


def test_possessive_pronoun_becomes_possessive_title():
    assert condense("What are its size limits?", EBS).standalone == "What are Elastic Block Store (EBS)'s size limits?"
    assert condense("What is their latency?", SQS).standalone == "What is SQS (Simple Queue Service)'s latency?"


def test_only_the_first_pronoun_is_replaced():
    standalone = condense("Is it durable and can I encrypt it?", EBS).standalone
    assert standalone == "Is Elastic Block Store (EBS) durable and can I encrypt it?"


def test_topic_without_title_falls_back_to_its_question():
    """No cited section: the subject is the previous question itself, so the rewrite still names it."""
    condensed = condense("How is it different from SNS?", Topic("SQS"))
    assert condensed.standalone == "How is SQS different from SNS?"


# Ellipsis: the user swaps the subject and keeps the question.


@pytest.mark.parametrize(
    ("question", "standalone"),
    [
        ("What about SNS?", "What is SNS in Notification and Messaging Services?"),
        ("and what about SES?", "What is SES in Notification and Messaging Services?"),
        ("How about SES", "What is SES in Notification and Messaging Services?"),
        ("Same for SNS?", "What is SNS in Notification and Messaging Services?"),
    ],
)
def test_what_about_keeps_the_previous_question_frame(question, standalone):
    condensed = condense(question, SQS)
    assert condensed.kind == "ellipsis"
    assert condensed.standalone == standalone


def test_and_the_one_takes_the_frame_of_a_longer_previous_question():
    topic = Topic("Which service is the container registry?", "Elastic Container Registry (ECR)", "Container Services")
    condensed = condense("And the Kubernetes one?", topic)
    assert condensed.standalone == "Which service is the Kubernetes one in Container Services?"
    assert condensed.kind == "ellipsis"


def test_ellipsis_that_is_itself_a_question_keeps_its_own_frame():
    """ "And what does SNS cost?" already has a frame, so the previous one is not put in front of it."""
    condensed = condense("And what does SNS cost?", SQS)
    assert condensed.standalone == "What does SNS cost in Notification and Messaging Services?"


def test_ellipsis_without_category_adds_no_place():
    assert condense("What about EFS?", EBS).standalone == "What is EFS?"


def test_ellipsis_after_a_frameless_question_uses_the_rest_alone():
    topic = Topic("SQS pricing", "SQS (Simple Queue Service)")
    assert condense("What about SNS?", topic).standalone == "SNS?"


# Nothing to rewrite.


@pytest.mark.parametrize(
    "question", ["How is it different from SNS?", "And the Kubernetes one?", "What about SNS?", "What is it?"]
)
def test_no_rewrite_without_topic(question):
    condensed = condense(question, None)
    assert condensed.standalone == question
    assert condensed.kind == "none"


@pytest.mark.parametrize(
    "question",
    [
        "What is CloudFront?",
        "Which database service is compatible with MongoDB?",
        "How do I connect my data center to AWS with a dedicated line?",
        "Explain Availability Zones",
        "Does DynamoDB scale to any load?",
    ],
)
def test_standalone_question_is_left_alone(question):
    assert refers_back(question) == "none"
    condensed = condense(question, SQS)
    assert condensed.standalone == question
    assert condensed.kind == "none"
    assert condensed.question == question


@pytest.mark.parametrize(
    "question",
    [
        "Is it possible to attach an EBS volume to two instances?",
        "is it true S3 cannot host an operating system?",
        "Is it worth using Lightsail for a first website?",
        "Which region is best? It depends on latency, I guess",
    ],
)
def test_dummy_it_is_not_a_reference(question):
    assert refers_back(question) == "none"
    assert condense(question, SQS).standalone == question


def test_dummy_it_does_not_hide_a_real_pronoun():
    assert refers_back("Is it possible to run it without servers?") == "pronoun"


def test_the_real_pronoun_is_swapped_not_the_dummy():
    standalone = condense("Is it possible to run it without servers?", SQS).standalone
    assert standalone == "Is it possible to run SQS (Simple Queue Service) without servers?"


def test_numeral_one_is_not_an_ellipsis():
    question = "Can one EBS volume be attached to two EC2 instances?"
    assert refers_back(question) == "none"
    assert condense(question, SQS).standalone == question


def test_pronoun_with_its_noun_in_the_same_question_is_left_alone():
    question = "What is CloudTrail and what does it log?"
    assert condense(question, SQS).standalone == question


@pytest.mark.parametrize("question", ["Tell me more", "Why?", "Any examples?", "more details please"])
def test_a_bare_follow_up_is_about_the_last_topic(question):
    """A question with nothing of its own to search for continues the previous turn."""
    topic = Topic("What is SQS?", "SQS (Simple Queue Service)", "Messaging")
    assert refers_back(question) == "bare"
    assert condense(question, topic).standalone == f"{question} — about SQS (Simple Queue Service)"
    assert condense(question, None).standalone == question


@pytest.mark.parametrize("question", ["Any downsides?", "benefits?", "drawbacks"])
def test_a_facet_alone_asks_about_the_last_topic(question):
    # The system-design notes file them under "Disadvantage(s): reverse proxy"; the question names no subject.
    condensed = condense(question, Topic("What is a reverse proxy?", "Reverse proxy (web server)"))
    assert condensed.kind == "bare"
    assert "Reverse proxy (web server)" in condensed.standalone


# An ellipsis asks for a sibling of the last topic: the chain puts one that names the new subject first.


def _hit(key: str, path: tuple[str, ...], score: float, keyword: float = 0.0):
    from corpus.types import Section
    from index.retrieve import Hit

    section = Section("db.md", key, path[-1], len(path), path, 1, 2, (), "text")
    return Hit(section, score, 0.5, keyword)


def test_condensed_ellipsis_keeps_the_category_it_asks_within():
    assert condense("And the Kubernetes one?", ECS).category == "Container Services"
    assert condense("How is it different from SNS?", SQS).category == ""  # a pronoun names its subject


def test_a_sibling_naming_the_new_subject_goes_first():
    """Notes written for this test: after "What is RDS?" (under Databases), "And the NoSQL one?" finds a general
    "What is NoSQL?" section first; DynamoDB, under Databases and naming NoSQL, is what was asked for."""
    from assistant.chain import _prefer_sibling
    from index.retrieve import Retrieval

    general = _hit("what-is-nosql", ("Notes", "What is NoSQL?"), 2.0, keyword=1.0)
    dynamo = _hit("dynamodb", ("Notes", "Databases", "DynamoDB"), 1.8, keyword=0.6)
    rds = _hit("rds", ("Notes", "Databases", "RDS"), 1.5)  # a sibling that does not name NoSQL
    fused = Retrieval("q", (1.0,), (general, dynamo, rds))
    plain = Retrieval("And the NoSQL one?", (1.0,), (general, dynamo, rds))
    moved = _prefer_sibling(fused, plain, "Databases")
    assert [h.section.anchor for h in moved.hits] == ["dynamodb", "what-is-nosql", "rds"]
    assert [h.score for h in moved.hits] == [2.0, 2.0, 1.5]  # still best first
    # No sibling names the subject, or none within reach, or no category: nothing moves.
    unnamed = Retrieval("q", (1.0,), (general, rds))
    assert _prefer_sibling(unnamed, unnamed, "Databases").hits == unnamed.hits
    far = Retrieval("q", (1.0,), (general, rds, rds, dynamo))
    assert _prefer_sibling(far, plain, "Databases").hits == far.hits
    assert _prefer_sibling(fused, plain, "").hits == fused.hits
