#!/bin/bash
# The `workload` service: an unmodified aws CLI that calls STS GetCallerIdentity (answered by the emulator)
# every 20 seconds, with the credentials the bridge delivers
#   - in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE=/aws/credentials), and
#   - from the container-credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI on 127.0.0.1: this
#     container runs in the bridge's network namespace),
# and prints the access key id each one used, so that every refresh after an SVID rotation shows.
# No secret is printed.
#
# It stops at once on SIGTERM or SIGINT (docker compose stop, down, Ctrl-C): every wait is a background
# command waited for with `wait`, which a trapped signal interrupts, so the trap runs at once and not after
# the sleep or the aws call in progress. (A shell that is PID 1 without a trap ignores SIGTERM, and Docker
# would SIGKILL it after its grace period.)
set -u
trap 'echo "workload: stopping"; exit 0' TERM INT

STS=(--endpoint-url "${STS_ENDPOINT:-http://emulator:8443}" --region us-east-1)
FILE=${CREDENTIALS_FILE:-/aws/credentials}
TOKEN=${TOKEN_FILE:-/aws/container.token}
URI=${CONTAINER_URI:-http://127.0.0.1:9912/v1/credentials}

echo "workload: waiting for the bridge to write $FILE"
until [ -s "$FILE" ] && [ -s "$TOKEN" ]; do sleep 2 & wait $!; done

# report prints the role ARN STS sees and the access key id the CLI resolved, from the credentials the
# current environment points the CLI at.
report() {
  local arn key
  arn=$(aws sts get-caller-identity "${STS[@]}" --query Arn --output text 2>&1 | tail -n 1)
  key=$(aws configure export-credentials --format process 2>/dev/null |
    sed -n 's/.*"AccessKeyId": *"\([^"]*\)".*/\1/p')
  echo "$(date -u +%H:%M:%S) $1 $arn key=${key:-none}"
}

while true; do
  (
    unset AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
    export AWS_SHARED_CREDENTIALS_FILE="$FILE"
    report "file    "
  ) & wait $!
  (
    unset AWS_SHARED_CREDENTIALS_FILE
    export AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$TOKEN"
    report "endpoint"
  ) & wait $!
  sleep 20 & wait $!
done
