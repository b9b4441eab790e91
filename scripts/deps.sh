#!/usr/bin/env bash
# Installs the Debian packages named in $@ that are missing (apt-get update
# first, only when something is missing). Sourced by demo.sh and test.sh.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # Packaged daemons (knot, nsd, gdnsd) must not be started by the install.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  $sudo rm -f /usr/sbin/policy-rc.d
}

# What building vaned needs.
BUILD_PACKAGES=(g++ cmake make pkg-config libldns-dev libssl-dev libuv1-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev librocksdb-dev libcurl4-openssl-dev libcpp-httplib-dev prometheus-cpp-dev
  libmaxminddb-dev libfstrm-dev libprotobuf-c-dev protobuf-c-compiler liburing-dev)
# What the test suite needs on top: Knot (differential test), kdig, openssl (a test
# certificate), chromium (the status page), iproute2 (network namespaces),
# etcd (the cluster tests start a real 3-member etcd; etcdctl sets up auth).
# clang and its runtime: the libFuzzer harnesses. prometheus: promtool checks
# the shipped alert rules, and a real server scrapes vaned and fires them.
# unbound: a real caching (and validating) resolver in front of vane.
# python3-dnspython: validates every signed answer (tests/dnssec/validate.py);
# ldnsutils: ldns-keygen, whose keys vane must load.
# nsd: a real secondary of vane (zone transfers), beside Knot.
# gdnsd: the geo reference (its geoip plugin); libmaxmind-db-writer-perl
# writes the test's MaxMind databases; dnsperf loads vaned while one is swapped.
# fstrm-bin (fstrm_capture) and dnstap-ldns: a real dnstap reader and decoder.
# nftables: the partition tests cut links and drop packets inside their
# network namespaces (silently, as a real partition does; tc netem is not in
# every kernel).
TEST_PACKAGES=(libgtest-dev knot knot-dnsutils openssl chromium iproute2 etcd-server etcd-client clang libclang-rt-14-dev
  prometheus unbound python3-dnspython ldnsutils nsd gdnsd libmaxmind-db-writer-perl dnsperf fstrm-bin dnstap-ldns faketime nftables)
# What bench/run.sh needs on top.
BENCH_PACKAGES=(dnsperf knot nsd gdnsd linux-perf etcd-server)
