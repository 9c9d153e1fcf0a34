#!/usr/bin/env bash
# Regenerates the canonical-request vectors from the committed certificates (not the certificates).
set -euo pipefail
cd "$(dirname "$0")"
b64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
body='{"durationSeconds":3600}'
bodyhash=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
q='profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2Fp1&roleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp&trustAnchorArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Atrust-anchor%2Fta1'
printf 'POST\n/sessions\n%s\ncontent-type:application/json\nhost:rolesanywhere.us-east-1.amazonaws.com\nx-amz-date:20261125T053000Z\nx-amz-x509:%s\nx-amz-x509-chain:%s\n\ncontent-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain\n%s' \
  "$q" "$(b64 rsa.pem)" "$(b64 int.pem)" "$bodyhash" > rsa_chain.creq
printf 'AWS4-X509-RSA-SHA256\n20261125T053000Z\n20261125/us-east-1/rolesanywhere/aws4_request\n%s' "$(sha256sum rsa_chain.creq | cut -d' ' -f1)" > rsa_chain.sts
openssl dgst -sha256 -sign rsa.key rsa_chain.sts | xxd -p | tr -d '\n' > rsa_chain.sig.hex
printf 'POST\n/sessions\n%s\ncontent-type:application/json\nhost:127.0.0.1:8443\nx-amz-date:20261125T053000Z\nx-amz-x509:%s\n\ncontent-type;host;x-amz-date;x-amz-x509\n%s' \
  "$q" "$(b64 p256.pem)" "$bodyhash" > p256.creq
printf 'AWS4-X509-ECDSA-SHA256\n20261125T053000Z\n20261125/us-east-1/rolesanywhere/aws4_request\n%s' "$(sha256sum p256.creq | cut -d' ' -f1)" > p256.sts
