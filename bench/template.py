"""The SAM template (infra/template.yaml) as data: loaded, and its intrinsics resolved offline.

One copy for the cost simulation (``bench/cost.py``, which tells the resolver the real URLs and
ARNs of what it created on moto) and for the template's tests (``tests/test_infra.py``,
``tests/test_iam.py``, which see ``<LogicalId>`` where a value exists only once deployed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench import BenchError

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "template.yaml"
ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::StackName": "spotify-charts-lake",
    "AWS::URLSuffix": "amazonaws.com",
}
# Parameters without a default, and the value given to them (as `sam deploy` would require;
# none today).
REQUIRED_PARAMETERS: dict[str, str] = {}
FUNCTIONS = {  # short name -> logical id in the template
    "extract": "ExtractFunction",
    "transform": "TransformFunction",
    "report": "ReportFunction",
}
NO_VALUE = object()  # what !Ref AWS::NoValue resolves to: the key or item is left out


def load_template(path: Path = TEMPLATE) -> dict:
    """The template as plain dicts, short tags (!Ref, !Sub...) in their long forms."""
    from cfnlint.decode import decode

    decoded, matches = decode(str(path))
    if matches:
        raise BenchError(f"{path} does not parse: {'; '.join(str(m) for m in matches)}")
    return json.loads(json.dumps(decoded))


def credentials_parameter(template: dict, resolve: Resolver) -> str:
    """The name of the SSM SecureString the extract reads the Spotify credentials from. It is
    no resource of the template (CloudFormation cannot create a SecureString): whoever stands
    the stack up creates it where the extract's environment names it."""
    extract = template["Resources"][FUNCTIONS["extract"]]["Properties"]
    return resolve(extract["Environment"]["Variables"]["SPOTIFY_ETL_CREDENTIALS_PARAMETER"])


def resources_of(template: dict, *types: str) -> dict[str, dict]:
    """The template's resources of these types, by logical id."""
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] in types
    }


class Resolver:
    """Resolves the intrinsics the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Join,
    conditions, AWS::NoValue), with the parameters' defaults, ``parameters`` over them, and
    fixed pseudo parameters.

    A reference to a resource resolves to what ``names`` holds for it ("LogicalId" or
    "LogicalId.Attribute" -> the real URL, ARN or name on moto); else a !Ref to the name the
    template sets, for the types whose !Ref is their name; else to ``<LogicalId>``
    (``<LogicalId.Attribute>`` for GetAtt)."""

    # Where each type's name is set in its properties.
    NAME_PROPERTIES = {
        "AWS::S3::Bucket": ("BucketName",),
        "AWS::Glue::Database": ("DatabaseInput", "Name"),
        "AWS::Glue::Table": ("TableInput", "Name"),
        "AWS::Athena::WorkGroup": ("Name",),
        "AWS::Serverless::Function": ("FunctionName",),
        "AWS::Logs::LogGroup": ("LogGroupName",),
        "AWS::SQS::Queue": ("QueueName",),
        "AWS::SSM::Parameter": ("Name",),
    }
    # Types whose !Ref is not their name: a queue's is its URL.
    REF_IS_NOT_NAME = {"AWS::SQS::Queue"}

    def __init__(self, template: dict, parameters: dict[str, str] | None = None) -> None:
        self.template = template
        self.values = {
            name: str(spec["Default"])
            for name, spec in template.get("Parameters", {}).items()
            if "Default" in spec
        }
        self.values.update(REQUIRED_PARAMETERS)
        self.values.update(parameters or {})
        self.values.update(PSEUDO)
        self.names: dict[str, str] = {}

    def name(self, logical_id: str) -> str:
        """The name the template gives a resource, else its logical id."""
        value = self._set_name(logical_id)
        return logical_id if value is None else value

    def _set_name(self, logical_id: str):
        resource = self.template["Resources"][logical_id]
        path = self.NAME_PROPERTIES.get(resource["Type"])
        if path is None:
            return None
        value = resource.get("Properties", {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return None if value is None else self(value)

    def condition(self, name: str) -> bool:
        return self._condition(self.template["Conditions"][name])

    def _condition(self, expression) -> bool:
        ((function, argument),) = expression.items()
        if function == "Fn::Equals":
            left, right = (self(value) for value in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._condition(argument[0])
        if function == "Fn::And":
            return all(self._condition(value) for value in argument)
        if function == "Fn::Or":
            return any(self._condition(value) for value in argument)
        if function == "Condition":
            return self.condition(argument)
        raise BenchError(f"condition function {function} is not supported by this resolver")

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        if name in self.names:
            return self.names[name]
        resource = self.template["Resources"].get(name)
        if resource is None:
            raise BenchError(f"!Ref {name}: no such parameter or resource in the template")
        if resource["Type"] not in self.REF_IS_NOT_NAME:
            value = self._set_name(name)
            if value is not None:
                return value
        return f"<{name}>"

    def get_att(self, logical_id: str, attribute: str) -> str:
        return self.names.get(f"{logical_id}.{attribute}", f"<{logical_id}.{attribute}>")

    def sub(self, text: str, variables: dict) -> str:
        def replace(match: re.Match) -> str:
            if match.group(1):  # ${!Literal}
                return "${" + match.group(2) + "}"
            name = match.group(2)
            if name in variables:
                return str(self(variables[name]))
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{(!?)([^}]+)\}", replace, text)

    def __call__(self, value):
        if isinstance(value, list):
            return [item for item in (self(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    return self.sub(argument, {})
                return self.sub(argument[0], argument[1])
            if key == "Fn::GetAtt":
                target = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(target[0], target[1])
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self(when_true if self.condition(name) else when_false)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self(items))
            if key.startswith("Fn::"):
                raise BenchError(f"{key} is not supported by this resolver")
        resolved = {key: self(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}
