"""A Lambda TOKEN authorizer in Python, written for API Gateway and run on
the official runtime client (awslambdaric): it works unchanged behind
lambdagate.

It accepts one token, `Bearer demo-token` (the one `lambdagate demo`
prints), and allows that caller every method of the API it guards, with a
context the guarded function sees in `requestContext.authorizer`. Any
other token fails with "Unauthorized", API Gateway's way of saying 401.
"""

ACCEPTED = "Bearer demo-token"


def handler(event, context):
    if event.get("authorizationToken") != ACCEPTED:
        raise Exception("Unauthorized")
    # methodArn: arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}
    api = event["methodArn"].split("/", 1)[0]
    return {
        "principalId": "demo-user",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": f"{api}/*"}
            ],
        },
        "context": {"user": "demo-user", "plan": "free"},
    }
