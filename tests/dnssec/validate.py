#!/usr/bin/python3
"""Validates vane's signed answers with dnspython's dns.dnssec.

usage: validate.py HOST PORT SIGNED_ZONE... < queries   (one "name type" a line)

Each query goes over TCP with DO. Every RRset in the answer and authority
sections (but a referral's NS and a DNAME's synthesized CNAME, which are
never signed) must carry an RRSIG that validates against the zone's served
DNSKEY RRset, itself signed by one of its keys; RRSIGs in additional must
validate too. A negative answer (NODATA, or compact denial's NXDOMAIN) must
carry an NSEC at the name that matches it: owner = the name, the type asked
absent, next = \\000.<name>. Prints one JSON line of counts; exit 1 on any
failure, with the failures listed.
"""
import json
import sys

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

NXNAME = 128


def fetch(host, port, name, rdtype):
    q = dns.message.make_query(name, rdtype, want_dnssec=True, payload=1232)
    return dns.query.tcp(q, host, port=port, timeout=5)


def zone_of(name, zones):
    best = None
    for z in zones:
        if name.is_subdomain(z) and (best is None or len(z) > len(best)):
            best = z
    return best


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    zones = [dns.name.from_text(z) for z in sys.argv[3:]]
    keys = {}
    for z in zones:
        r = fetch(host, port, z, dns.rdatatype.DNSKEY)
        dnskey = r.find_rrset(r.answer, z, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        sig = r.find_rrset(r.answer, z, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
        dns.dnssec.validate(dnskey, sig, {z: dnskey})
        keys[z] = dnskey
    counts = {"queries": 0, "rrsets_validated": 0, "negative_proofs": 0, "additional_validated": 0}
    failures = []
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2:
            continue
        qname, qtype = dns.name.from_text(parts[0]), dns.rdatatype.from_text(parts[1])
        counts["queries"] += 1
        where = f"{parts[0]} {parts[1]}"
        try:
            r = fetch(host, port, qname, qtype)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{where}: no answer ({e})")
            continue
        if r.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            continue
        dnames = [rs for rs in r.answer if rs.rdtype == dns.rdatatype.DNAME]

        def check(section, label, required):
            for rs in section:
                if rs.rdtype == dns.rdatatype.RRSIG:
                    continue
                z = zone_of(rs.name, keys.keys())
                if z is None:
                    continue
                if label == "authority" and rs.rdtype == dns.rdatatype.NS and rs.name != z:
                    continue  # a referral's NS: the child's data, never signed by the parent
                if rs.rdtype == dns.rdatatype.CNAME and any(
                    rs.name.is_subdomain(d.name) and rs.name != d.name for d in dnames
                ):
                    continue  # synthesized from a DNAME (RFC 6672 §5.3.1): not signed
                sigs = [s for s in section if s.rdtype == dns.rdatatype.RRSIG and s.covers == rs.rdtype
                        and s.name == rs.name]
                if not sigs:
                    if required:
                        failures.append(f"{where}: {label} {rs.name} {dns.rdatatype.to_text(rs.rdtype)} has no RRSIG")
                    continue
                signer = sigs[0][0].signer  # DS (and its denial) at a child's apex: the parent signs
                if signer not in keys or not rs.name.is_subdomain(signer):
                    failures.append(f"{where}: {label} {rs.name} signed by {signer}")
                    continue
                try:
                    dns.dnssec.validate(rs, sigs[0], {signer: keys[signer]})
                    counts["additional_validated" if label == "additional" else "rrsets_validated"] += 1
                except dns.dnssec.ValidationFailure as e:
                    failures.append(f"{where}: {label} {rs.name} {dns.rdatatype.to_text(rs.rdtype)}: {e}")

        check(r.answer, "answer", True)
        check(r.authority, "authority", True)
        check(r.additional, "additional", False)
        # A negative answer in a signed zone: the final name of the chain.
        final = qname
        for rs in r.answer:
            if rs.rdtype == dns.rdatatype.CNAME and rs.name == final:
                final = rs[0].target
        answered = any(rs.name == final and rs.rdtype in (qtype, dns.rdatatype.CNAME) for rs in r.answer)
        has_soa = any(rs.rdtype == dns.rdatatype.SOA for rs in r.authority)
        z = zone_of(final, keys.keys())
        if qtype != dns.rdatatype.ANY and not answered and has_soa and z is not None:
            nsecs = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC and rs.name == final]
            if not nsecs:
                failures.append(f"{where}: negative answer without an NSEC at {final}")
                continue
            nsec = nsecs[0][0]
            present = set()
            for window, bitmap in nsec.windows:
                for i, byte in enumerate(bitmap):
                    for bit in range(8):
                        if byte & (0x80 >> bit):
                            present.add(window * 256 + i * 8 + bit)
            if qtype in present:
                failures.append(f"{where}: the NSEC at {final} lists the type asked for")
            if nsec.next != dns.name.Name([b"\x00"] + list(final.labels)):
                failures.append(f"{where}: the NSEC at {final} has next {nsec.next}, not \\000.{final}")
            if r.rcode() == dns.rcode.NXDOMAIN or NXNAME in present:
                if present - {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, NXNAME}:
                    failures.append(f"{where}: a nonexistent name's NSEC lists types {sorted(present)}")
            counts["negative_proofs"] += 1
    counts["failures"] = len(failures)
    print(json.dumps(counts))
    for f in failures[:40]:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
