"""A real S3 API on loopback (moto's standalone server), for the object-store tier's tests.

Clients reach it through the real s3fs/botocore stack, found by
``AWS_ENDPOINT_URL`` as in a deployment. moto keeps its buckets in this
process, so they outlive a restart of the server (and are shared by every
server in the process: tests use buckets of their own).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from redis_server import free_port

REGION = "us-east-1"
# moto accepts any keys until authentication is switched on (read_only_credentials).
DUMMY_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str

    def options(self):
        """``remote_options`` that make a tier use these keys."""
        return {"key": self.key, "secret": self.secret}


class S3Server:
    """moto's S3 on a free loopback port; stoppable and restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        # Each request is logged at INFO by werkzeug; the tests' logs are ours.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port: connections are refused, as for a dead host."""
        if self._server is not None:
            self._server.stop()
            self._server._server.server_close()
            self._server = None

    def client(self, credentials: Credentials | None = None, service: str = "s3"):
        import boto3

        keys = credentials or Credentials(
            DUMMY_KEYS["AWS_ACCESS_KEY_ID"], DUMMY_KEYS["AWS_SECRET_ACCESS_KEY"]
        )
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=keys.key,
            aws_secret_access_key=keys.secret,
        )

    def new_bucket(self) -> str:
        name = f"voices-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def users(self, bucket: str) -> tuple[Credentials, Credentials]:
        """IAM users that may write, and only read, ``bucket``: (writer, reader)."""
        return (
            self.user(bucket, ["s3:*"]),
            self.user(bucket, ["s3:GetObject", "s3:ListBucket"]),
        )

    def user(
        self, bucket: str, actions: list[str], resources: list[str] | None = None
    ) -> Credentials:
        """Keys of a new IAM user allowed ``actions`` on ``resources`` (default: ``bucket``)."""
        iam = self.client(service="iam")
        name = f"user-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": resources or [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def enforce_credentials(self, *, enforce: bool) -> None:
        """Switch moto's IAM checks on (every request needs a user's keys) or off."""
        import requests

        count = b"0" if enforce else b"inf"
        response = requests.post(f"{self.endpoint}/moto-api/reset-auth", data=count, timeout=10)
        response.raise_for_status()
