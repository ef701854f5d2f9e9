"""Sets up a running moto server the way an AWS operator would set up an
account for lambdagate, and prints what the tests need as JSON.

Usage: python fixture.py URL [--lambda-docker] [--enforce-iam] [--ca-cert PEM]

Accounts: 123456789012 (the gateway's own) and 222222222222 (another
account, reached only through STS AssumeRole). Users in the first account:
  invoker   may invoke, get and list Lambda functions
  nolambda  may do nothing with Lambda
  assumer   may only call sts:AssumeRole
The second account has role `cross-invoke` (trusting `assumer`) and function
`cross-echo`. Role `gateway-instance` in the first account (trusting
`assumer`) plays an EC2/ECS instance role. Setup runs with IAM checks off; --enforce-iam switches them on
at the end, so every later request must be signed by a permitted identity.
With an https URL, --ca-cert names the certificate to trust (moto's own).
"""

import argparse
import io
import json
import ssl
import sys
import urllib.request
import zipfile

import boto3

MAIN = "123456789012"
OTHER = "222222222222"
REGION = "us-east-1"

LAMBDA_ACTIONS = [
    "lambda:InvokeFunction",
    # moto checks this name for Invoke (see shared/NOTES.md).
    "lambda:Invoke",
    "lambda:GetFunction",
    "lambda:ListFunctions",
]


def post(url, path, body, content_type="application/json", ca_cert=None):
    req = urllib.request.Request(
        url + path, data=body.encode(), method="POST", headers={"Content-Type": content_type}
    )
    context = ssl.create_default_context(cafile=ca_cert) if ca_cert else None
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        resp.read()


def clients(url, account, ca_cert=None):
    session = boto3.session.Session(
        aws_access_key_id="setup", aws_secret_access_key="setup", region_name=REGION
    )

    def add_account(request, **_):
        request.headers["x-moto-account-id"] = account

    made = {}
    for name in ("iam", "lambda", "sts"):
        client = session.client(name, endpoint_url=url, verify=ca_cert)
        client.meta.events.register("before-sign.*.*", add_account)
        made[name] = client
    return made


def policy(actions, resource="*"):
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}
    )


def user(iam, name, actions):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=name + "-policy", PolicyDocument=policy(actions))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def invoking_role(iam, name):
    """A role that `assumer` may assume and that may invoke Lambda."""
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::%s:user/assumer" % MAIN},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="invoke", PolicyDocument=policy(LAMBDA_ACTIONS))
    return arn


def function_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def function(aws, account, name):
    role = aws["iam"].create_role(
        RoleName=name + "-exec",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    made = aws["lambda"].create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": function_zip()},
    )
    return made["FunctionArn"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--lambda-docker", action="store_true",
                        help="moto's docker mode: unknown functions give 404, known ones a Handled function error")
    parser.add_argument("--enforce-iam", action="store_true")
    parser.add_argument("--ca-cert", help="the certificate an https moto presents, to trust")
    args = parser.parse_args()
    url = args.url.rstrip("/")

    post(url, "/moto-api/config", json.dumps({"lambda": {"use_docker": args.lambda_docker}}), ca_cert=args.ca_cert)

    main_aws = clients(url, MAIN, args.ca_cert)
    other_aws = clients(url, OTHER, args.ca_cert)
    users = {
        "invoker": user(main_aws["iam"], "invoker", LAMBDA_ACTIONS),
        "nolambda": user(main_aws["iam"], "nolambda", ["s3:ListBucket"]),
        "assumer": user(main_aws["iam"], "assumer", ["sts:AssumeRole"]),
    }
    functions = {
        "echo": function(main_aws, MAIN, "echo"),
        "echo-v2": function(main_aws, MAIN, "echo-v2"),
        "cross-echo": function(other_aws, OTHER, "cross-echo"),
    }
    cross_role = invoking_role(other_aws["iam"], "cross-invoke")
    # The role an EC2 instance or ECS task would carry; the tests' stand-in
    # metadata endpoints hand out sessions of it (via AssumeRole as assumer).
    instance_role = invoking_role(main_aws["iam"], "gateway-instance")

    if args.enforce_iam:
        post(url, "/moto-api/reset-auth", "0", content_type="text/plain", ca_cert=args.ca_cert)

    json.dump(
        {"url": url, "region": REGION, "users": users, "functions": functions, "roles": {"cross": cross_role, "instance": instance_role}},
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
