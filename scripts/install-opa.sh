#!/usr/bin/env bash
# install-opa.sh — build the Open Policy Agent server the authorization tests run against, once.
#
# Installs github.com/open-policy-agent/opa@v1.22.3 into <repo root>/.tools/bin/opa (git-ignored); idempotent,
# locked and atomic (scripts/install-gotool.sh). A cold build takes about 3.5 minutes, 60 MB.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-gotool.sh" opa \
	github.com/open-policy-agent/opa github.com/open-policy-agent/opa v1.22.3
