"""AWS clients and errors shared by the Glue Data Catalog and Athena.

An ``s3://`` lake's tables are Iceberg tables in the Glue Data Catalog, created and committed
by pyiceberg's Glue catalog (``etl_lib.transform.iceberg``, database ``SPOTIFY_ETL_GLUE_DATABASE``);
Athena reads them natively (``etl_lib.warehouse.athena``). Nothing here defines a table: this module
holds what both catalog and queries need from boto3, namely clients with short timeouts for
the configured profile and region, and one-line errors for what a user can fix.

boto3 is imported where it is used: it is the optional ``aws`` extra.
"""

from __future__ import annotations

from typing import Protocol

from etl_lib.errors import ConfigError, EtlError

# Small, so an unreachable endpoint fails in seconds rather than after minutes of retries;
# one retry still absorbs a dropped connection or a throttled call.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 30
TOTAL_ATTEMPTS = 2

_ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException"}
_BAD_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
}


class AwsSettings(Protocol):
    """What an AWS client needs of the settings (``Settings`` and ``TableSettings`` both
    have it); unset values fall back to boto3's own defaults."""

    aws_region: str | None
    aws_profile: str | None


def client_config(**overrides):
    """botocore settings of every AWS client here: short timeouts, one retry."""
    from botocore.config import Config

    values = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        "retries": {"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS},
    }
    values.update(overrides)
    return Config(**values)


def require_boto3(purpose: str = "Glue and Athena need boto3 and pyathena") -> None:
    try:
        import boto3  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"{purpose}: pip install 'spotify-charts-lake[aws]'") from exc


def aws_session(settings: AwsSettings):
    """A boto3 session for the settings' profile and region (unset: boto3's own defaults)."""
    require_boto3()
    import boto3

    return boto3.Session(profile_name=settings.aws_profile, region_name=settings.aws_region)


def aws_client(service: str, settings: AwsSettings):
    # No endpoint_url: boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) itself.
    return aws_session(settings).client(service, config=client_config())


def aws_error(
    exc: BaseException, *, service: str, resource: str, needs: str | None = None
) -> EtlError | None:
    """A one-line ``EtlError`` for a botocore error a user can fix, else None (a bug).

    ``service`` names the AWS service ("AWS Glue"), ``resource`` what was being touched,
    ``needs`` what a denied call needs granted, when the operation's name does not say.
    """
    from botocore import exceptions as boto

    if isinstance(exc, boto.ProfileNotFound):
        return ConfigError(
            f"AWS profile {exc.kwargs.get('profile')!r} not found while using {resource}: "
            "fix AWS_PROFILE or add the profile to ~/.aws/config"
        )
    if isinstance(exc, boto.NoRegionError):
        return ConfigError(f"no AWS region for {service} ({resource}): set AWS_REGION")
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return EtlError(
            f"no AWS credentials for {service} ({resource}): set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        endpoint = exc.kwargs.get("endpoint_url") or "its endpoint"
        return EtlError(
            f"cannot reach {service} at {endpoint} ({resource}): check AWS_ENDPOINT_URL, "
            "AWS_REGION and the network"
        )
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = _first_line(error.get("Message") or code)
        operation = exc.operation_name
        if code in _ACCESS_DENIED_CODES:
            if needs:
                return ConfigError(
                    f"AWS denied {operation} on {resource}: allow {needs} to the credentials in use"
                )
            return EtlError(
                f"AWS denied {operation} on {resource}: grant it to the credentials in use "
                f"(AWS_PROFILE or AWS_ACCESS_KEY_ID): {message}"
            )
        if code in _BAD_CREDENTIAL_CODES:
            return EtlError(
                f"{service} rejected the AWS credentials ({code}) for {resource}: fix "
                f"AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: {message}"
            )
    return None


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""
