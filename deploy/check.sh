#!/usr/bin/env bash
# Checks afk's deploy files offline: renders the kustomize base and the example overlay,
# validates every rendered object against the Kubernetes schemas, checks the hardening and the
# closed/armed gates and least privilege (policy.py, whose own regression cases
# policy_test.py runs), validates the example manifests, and lints the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.33.0

if ! command -v kubectl >/dev/null 2>&1; then
    echo "deploy/check.sh: kubectl not found on PATH; install kubectl (it renders deploy/ with its built-in kustomize)" >&2
    exit 1
fi

# Pinned tools in a venv cached under ~/.cache, keyed by the requirements file's content.
req=deploy/check-requirements.txt
key=$(sha256sum "$req" | cut -c1-16)
venv="$HOME/.cache/afk-deploy-check/venv-$key"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
    echo "== installing the pinned check tools into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "$req"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

render() { # name dir mode
    echo "== kubectl kustomize $2"
    kubectl kustomize "$2" >"$out/$1.yaml"
    echo "== kubernetes-validate $2 (Kubernetes $K8S_VERSION, strict)"
    "$venv/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet "$out/$1.yaml"
    echo "== policy $2 ($3)"
    "$venv/bin/python" deploy/policy.py "$3" "$out/$1.yaml"
}

render base deploy/ base
render example deploy/overlays/example armed
echo "== policy regressions (policy_test.py)"
"$venv/bin/python" deploy/policy_test.py "$out/base.yaml" "$out/example.yaml"

echo "== kubernetes-validate deploy/examples (Kubernetes $K8S_VERSION, strict)"
"$venv/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet deploy/examples/*.yaml

echo "== hadolint Dockerfile"
"$venv/bin/hadolint" --no-color Dockerfile
echo "deploy checks passed"
