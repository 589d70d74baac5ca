"""moto's CloudFormation, made to deploy ``deploy/cloudformation/mwaa-pipelines.yaml`` as AWS does.

moto 5.2 creates buckets, security groups, endpoints, topics and IAM roles and policies from a
template, but silently skips the resource types it does not know and drops some bucket
properties, so a stack would "succeed" with half its resources missing. Here:

* a resource type neither moto nor this module creates fails the stack, as an unknown type
  fails on AWS (CloudFormation refuses a template naming an unrecognised type);
* these types are created from their properties, through the same moto backends the APIs use
  (AWS CloudFormation Template Reference for each):
  ``AWS::Glue::Connection``, ``AWS::Glue::Job``, ``AWS::EMRServerless::Application``,
  ``AWS::SNS::Subscription``, ``AWS::SES::EmailIdentity``, ``AWS::SecretsManager::Secret``;
* ``AWS::NoValue`` inside a list removes that item (the pseudo parameter "removes the
  corresponding resource property" when Fn::If returns it; moto left a null in lists, which a
  policy's ``Statement`` list then refuses as a syntax error);
* ``AWS::S3::Bucket`` also applies ``PublicAccessBlockConfiguration``,
  ``VersioningConfiguration`` and ``LifecycleConfiguration`` (moto applies only encryption and
  tags), translating CloudFormation's rule shape into S3's (``ExpirationInDays`` ->
  ``Expiration.Days``, ``Prefix`` + ``TagFilters`` -> ``Filter.And``, ...).

Each created object answers ``Ref`` and ``Fn::GetAtt`` as the template reference documents
(a Glue connection's Ref is its name, an application's GetAtt ApplicationId and Arn, a secret's
Ref its ARN...). Updates and deletes of these types are not supported: the local stack deploys
its template once, on a fresh moto.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel

_APPLIED = False
UNSUPPORTED_MESSAGE = "Template format error: Unrecognized resource types: [{}] (not created by the local stack)"


class _Created:
    """What a CloudFormation resource of ours answers: its Ref and its attributes."""

    attributes: tuple[str, ...] = ()
    cfn_type = ""
    # The property holding the resource's name (moto generates one when it is absent).
    name_property = ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.cfn_type

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.name_property

    def __init__(self, ref: str, **attributes: Any):
        self._ref = ref
        self._attributes = attributes

    @property
    def physical_resource_id(self) -> str:
        return self._ref

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name not in self._attributes:
            raise UnformattedGetAttTemplateException()
        return self._attributes[attribute_name]

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[misc]
        return cls.create(resource_name, _props(cloudformation_json), account_id, region_name)

    @classmethod
    def create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> _Created:
        raise NotImplementedError

    @classmethod
    def update_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        raise NotImplementedError("the local stack deploys its template once: no stack updates")

    @classmethod
    def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:  # type: ignore[misc]
        """Nothing to do: the local stack's moto is thrown away with its resources."""


def _props(cloudformation_json: dict) -> dict:
    return cloudformation_json.get("Properties") or {}


class GlueConnection(_Created, CloudFormationModel):
    cfn_type = "AWS::Glue::Connection"
    name_property = ""

    @classmethod
    def create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> _Created:
        from moto.glue.models import glue_backends

        connection_input = dict(props["ConnectionInput"])
        connection_input.setdefault("ConnectionProperties", {})
        glue_backends[account_id][region_name].create_connection(
            props.get("CatalogId", account_id), connection_input, {}
        )
        return cls(connection_input["Name"])


class GlueJob(_Created, CloudFormationModel):
    cfn_type = "AWS::Glue::Job"
    name_property = "Name"

    @classmethod
    def create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> _Created:
        from moto.glue.models import glue_backends

        glue_backends[account_id][region_name].create_job(
            name=resource_name,
            role=props["Role"],
            command=props["Command"],
            description=props.get("Description"),
            log_uri=props.get("LogUri"),
            execution_property=props.get("ExecutionProperty"),
            default_arguments=props.get("DefaultArguments"),
            non_overridable_arguments=props.get("NonOverridableArguments"),
            connections=props.get("Connections"),
            max_retries=props.get("MaxRetries"),
            allocated_capacity=props.get("AllocatedCapacity"),
            timeout=props.get("Timeout"),
            max_capacity=props.get("MaxCapacity"),
            security_configuration=props.get("SecurityConfiguration"),
            tags=props.get("Tags") or {},
            notification_property=props.get("NotificationProperty"),
            glue_version=props.get("GlueVersion"),
            number_of_workers=_int(props.get("NumberOfWorkers")),
            worker_type=props.get("WorkerType"),
            code_gen_configuration_nodes=None,
            execution_class=props.get("ExecutionClass"),
            source_control_details=None,
        )
        return cls(resource_name)


class EmrServerlessApplication(_Created, CloudFormationModel):
    attributes = ("ApplicationId", "Arn")

    cfn_type = "AWS::EMRServerless::Application"
    name_property = "Name"

    @classmethod
    def create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> _Created:
        from moto.emrserverless.models import emrserverless_backends

        auto_start = props.get("AutoStartConfiguration")
        auto_stop = props.get("AutoStopConfiguration")
        capacity = props.get("MaximumCapacity")
        app = emrserverless_backends[account_id][region_name].create_application(
            name=resource_name,
            release_label=props["ReleaseLabel"],
            application_type=props["Type"],
            client_token=None,
            initial_capacity=None,
            maximum_capacity={k.lower(): v for k, v in capacity.items()} if capacity else None,
            tags=_tag_dict(props.get("Tags")),
            auto_start_configuration={"enabled": _bool(auto_start.get("Enabled", True))} if auto_start else None,
            auto_stop_configuration=(
                {
                    "enabled": _bool(auto_stop.get("Enabled", True)),
                    "idleTimeoutMinutes": _int(auto_stop.get("IdleTimeoutMinutes", 15)),
                }
                if auto_stop
                else None
            ),
            network_configuration=None,
        )
        app.architecture = props.get("Architecture", "X86_64")
        return cls(app.id, ApplicationId=app.id, Arn=app.arn)


class SnsSubscription(_Created, CloudFormationModel):
    cfn_type = "AWS::SNS::Subscription"
    name_property = ""

    @classmethod
    def create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> _Created:
        from moto.sns.models import sns_backends

        subscription = sns_backends[account_id][region_name].subscribe(
            props["TopicArn"], props["Endpoint"], props["Protocol"]
        )
        return cls(subscription.arn)


class SesEmailIdentity(_Created, CloudFormationModel):
    cfn_type = "AWS::SES::EmailIdentity"
    name_property = ""

    @classmethod
    def create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> _Created:
        from moto.ses.models import ses_backends

        identity = props["EmailIdentity"]
        ses_backends[account_id][region_name].verify_email_identity(identity)
        return cls(identity)


class SecretsManagerSecret(_Created, CloudFormationModel):
    attributes = ("Id",)

    cfn_type = "AWS::SecretsManager::Secret"
    name_property = "Name"

    @classmethod
    def create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> _Created:
        from moto.secretsmanager.models import secretsmanager_backends

        if "GenerateSecretString" in props:
            raise NotImplementedError("GenerateSecretString is not supported by the local stack")
        backend = secretsmanager_backends[account_id][region_name]
        backend.create_secret(
            name=resource_name,
            secret_string=props.get("SecretString"),
            secret_binary=None,
            description=props.get("Description"),
            tags=props.get("Tags"),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        arn = backend.secrets[resource_name].arn
        return cls(arn, Id=arn)


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _tag_dict(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return dict(tags)
    return {t["Key"]: t["Value"] for t in tags or []}


def s3_lifecycle_rules(cfn_rules: list[dict]) -> list[dict]:
    """CloudFormation's ``LifecycleConfiguration.Rules`` in S3's own shape (as S3 parses the XML)."""
    rules = []
    for cfn in cfn_rules:
        rule: dict[str, Any] = {"ID": cfn.get("Id"), "Status": cfn["Status"]}
        prefix = cfn.get("Prefix", "")
        tags = [{"Key": t["Key"], "Value": t["Value"]} for t in cfn.get("TagFilters") or []]
        if len(tags) == 1 and not prefix:
            rule["Filter"] = {"Tag": tags[0]}
        elif tags:
            rule["Filter"] = {"And": {"Prefix": prefix, "Tag": tags}}
        else:
            rule["Filter"] = {"Prefix": prefix}
        if "ExpirationInDays" in cfn:
            rule["Expiration"] = {"Days": str(cfn["ExpirationInDays"])}
        if cfn.get("Transitions"):
            rule["Transition"] = [
                {"Days": str(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in cfn["Transitions"]
            ]
        if "NoncurrentVersionExpiration" in cfn:
            rule["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": str(cfn["NoncurrentVersionExpiration"]["NoncurrentDays"])
            }
        if "AbortIncompleteMultipartUpload" in cfn:
            rule["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": str(cfn["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            }
        rules.append(rule)
    return rules


def _bucket_properties(original):
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.s3.models import s3_backends

        bucket = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = s3_backends[account_id]["aws"]
        props = _props(cloudformation_json)
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            backend.put_public_access_block(bucket.name, {k: str(_bool(v)).lower() for k, v in block.items()})
        versioning = props.get("VersioningConfiguration")
        if versioning:
            backend.put_bucket_versioning(bucket.name, versioning["Status"])
        lifecycle = props.get("LifecycleConfiguration")
        if lifecycle:
            backend.put_bucket_lifecycle_configuration(bucket.name, s3_lifecycle_rules(lifecycle["Rules"]))
        return bucket

    return classmethod(create)


def _refuse_unknown_types(original):
    from moto.cloudformation import parsing

    def resource_class_from_type(resource_type: str):
        found = original(resource_type)
        if found is None and resource_type.startswith("AWS::") and resource_type not in parsing.NULL_MODELS:
            from moto.cloudformation.exceptions import ValidationError

            raise ValidationError(message=UNSUPPORTED_MESSAGE.format(resource_type))
        return found

    return resource_class_from_type


def _drop_novalue_items(original):
    def clean_json(resource_json, resources_map):
        cleaned = original(resource_json, resources_map)
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            return [item for item in cleaned if item is not None]
        return cleaned

    return clean_json


def apply() -> None:
    """Load the resource types above into moto's CloudFormation (idempotent)."""
    from moto.cloudformation import parsing
    from moto.s3.models import FakeBucket

    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    parsing.clean_json = _drop_novalue_items(parsing.clean_json)
    parsing.resource_class_from_type = _refuse_unknown_types(parsing.resource_class_from_type)
    FakeBucket.create_from_cloudformation_json = _bucket_properties(FakeBucket.create_from_cloudformation_json)
