"""Notifications to the alerts topic (SNS email)."""

from __future__ import annotations

from autostop import aws

_SUBJECT_LIMIT = 100  # SNS rejects longer subjects


def publish(topic_arn: str | None, subject: str, message: str) -> bool:
    """Publish to the topic; False (nothing sent) when no topic is configured."""
    if not topic_arn:
        return False
    aws.client("sns").publish(TopicArn=topic_arn, Subject=subject[:_SUBJECT_LIMIT], Message=message)
    return True
