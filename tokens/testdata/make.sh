#!/bin/sh
# Makes the key fixtures of kgate-tokens' tests. They sign nothing real: test keys only.
# kids.txt holds each key's kid as Kubernetes computes it (base64url, no padding, of the SHA-256
# of the DER SubjectPublicKeyInfo), computed here by openssl independently of kgate's code.
set -eu
cd "$(dirname "$0")"
openssl genrsa -traditional -out rsa-pkcs1.pem 2048 2>/dev/null      # RSA PRIVATE KEY (kubeadm's sa.key)
openssl pkcs8 -topk8 -nocrypt -in rsa-pkcs1.pem -out rsa-pkcs8.pem   # PRIVATE KEY
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-p256-pkcs8.pem
openssl ec -in ec-p256-pkcs8.pem -out ec-p256-sec1.pem 2>/dev/null  # EC PRIVATE KEY (refused)
openssl genrsa -out rsa-1024.pem 1024 2>/dev/null                   # too small (refused)
kid() { openssl pkey -in "$1" -pubout -outform DER | openssl dgst -sha256 -binary | basenc --base64url | tr -d '='; }
{
  echo "rsa $(kid rsa-pkcs1.pem)"
  echo "ec $(kid ec-p256-pkcs8.pem)"
} > kids.txt
