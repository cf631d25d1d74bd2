"""Shows policy.py catches each least-privilege regression (run by deploy/check.sh).

Usage: policy_test.py BASE_RENDER ARMED_RENDER. Each case breaks one promise in a copy of a
rendered manifest and expects policy.check to name it; the untouched renders must pass.
"""

import copy
import sys

import yaml

import policy


def find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def pod(docs, cronjob):
    return find(docs, "CronJob", cronjob)["spec"]["jobTemplate"]["spec"]["template"]


def secret_items(docs, cronjob):
    vols = pod(docs, cronjob)["spec"]["volumes"]
    return next(v for v in vols if "secret" in v)["secret"]["items"]


def drop_network_policy(docs):
    docs[:] = [d for d in docs if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "afk")]


def allow_ingress(docs):
    find(docs, "NetworkPolicy", "afk")["spec"]["ingress"] = [{}]


def egress_any_port(docs):
    del find(docs, "NetworkPolicy", "afk")["spec"]["egress"][1]["ports"]


def egress_anywhere(docs):
    find(docs, "NetworkPolicy", "afk")["spec"]["egress"][2]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]


def egress_to_metadata(docs):
    block = find(docs, "NetworkPolicy", "afk")["spec"]["egress"][2]["to"][0]["ipBlock"]
    block["except"] = [c for c in block.get("except", []) if c != "169.254.0.0/16"]


def no_dns(docs):
    del find(docs, "NetworkPolicy", "afk")["spec"]["egress"][0]


def poll_gets_token(docs):
    pod(docs, "afk-poll")["spec"]["automountServiceAccountToken"] = True


def account_mounts_token(docs):
    find(docs, "ServiceAccount", "afk")["automountServiceAccountToken"] = True


def poll_mounts_doorbell(docs):
    secret_items(docs, "afk-poll").append({"key": "ntfy-token", "path": "ntfy-token"})


def watch_mounts_unknown(docs):
    secret_items(docs, "afk-watch").append({"key": "kubeconfig", "path": "kubeconfig"})


def pod_unselected(docs):
    del pod(docs, "afk-watch")["metadata"]["labels"]["app.kubernetes.io/name"]


def role_lists(docs):
    find(docs, "Role", "afk-rollout-reader")["rules"][0]["verbs"].append("list")


def role_reads_pods(docs):
    find(docs, "Role", "afk-rollout-reader")["rules"][0]["resources"].append("pods")


def role_any_deployment(docs):
    del find(docs, "Role", "afk-rollout-reader")["rules"][0]["resourceNames"]


def pod_sets_fs_group(docs):
    pod(docs, "afk-watch")["spec"]["securityContext"]["fsGroup"] = 65532


CASES = [
    ("base", drop_network_policy, "no NetworkPolicy isolates"),
    ("armed", allow_ingress, "allows ingress"),
    ("armed", egress_any_port, "no ports"),
    ("armed", egress_anywhere, "every address allowed; narrow it"),
    ("base", egress_to_metadata, "169.254.0.0/16"),
    ("base", no_dns, "resolve names"),
    ("armed", poll_gets_token, "automountServiceAccountToken: false"),
    ("base", account_mounts_token, "token must not be mounted by default"),
    ("armed", poll_mounts_doorbell, "CronJob afk-poll: Secret items"),
    ("base", watch_mounts_unknown, "CronJob afk-watch: Secret items"),
    ("armed", pod_unselected, "must carry app.kubernetes.io/name=afk"),
    ("armed", role_lists, "grants"),
    ("armed", role_reads_pods, "grants"),
    ("armed", role_any_deployment, "resourceNames"),
    ("base", pod_sets_fs_group, "no fsGroup"),
]


def main():
    renders = {}
    for kind, path in (("base", sys.argv[1]), ("armed", sys.argv[2])):
        with open(path, encoding="utf-8") as f:
            renders[kind] = [d for d in yaml.safe_load_all(f) if d]
    failures = []
    for kind, docs in renders.items():
        bad = policy.check(kind, docs)
        if bad:
            failures.append(f"the untouched {kind} render fails: {bad}")
    for kind, breaks, expected in CASES:
        docs = copy.deepcopy(renders[kind])
        breaks(docs)
        bad = policy.check(kind, docs)
        if not any(expected in b for b in bad):
            failures.append(f"{breaks.__name__} ({kind}) not caught; policy said {bad}")
    for f in failures:
        print(f"policy_test: {f}")
    print(f"policy_test: {len(CASES)} regressions checked, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
