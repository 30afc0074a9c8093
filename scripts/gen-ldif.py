#!/usr/bin/env python3
"""Writes a synthetic company as LDIF for the LDAP benchmark: N inetOrgPerson users under
ou=people and N/100 groupOfNames under ou=groups, nested as a tree (ten child groups per group),
every user a direct member of one group. 1% of users have no mail (left out, as the reference
does). Usage: gen-ldif.py USERS BASE_DN > file.ldif"""
import sys

users = int(sys.argv[1])
base = sys.argv[2]
groups = max(1, users // 100)
out = sys.stdout
dc = base.split(",")[0].split("=")[1]
out.write(f"dn: {base}\nobjectClass: dcObject\nobjectClass: organization\no: Bench\ndc: {dc}\n\n")
out.write(f"dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n")
out.write(f"dn: ou=groups,{base}\nobjectClass: organizationalUnit\nou: groups\n\n")
for i in range(users):
    out.write(f"dn: uid=user{i:07d},ou=people,{base}\nobjectClass: inetOrgPerson\nuid: user{i:07d}\n"
              f"cn: User {i}\nsn: {i}\n")
    if i % 100 != 99:
        out.write(f"mail: user{i:07d}@bench.example\n")
    out.write("\n")
members = [[] for _ in range(groups)]
for i in range(users):
    members[i % groups].append(f"uid=user{i:07d},ou=people,{base}")
for g in range(groups):
    out.write(f"dn: cn=group{g:05d},ou=groups,{base}\nobjectClass: groupOfNames\ncn: group{g:05d}\n")
    for c in range(g * 10 + 1, min(g * 10 + 11, groups)):
        out.write(f"member: cn=group{c:05d},ou=groups,{base}\n")
    for m in members[g]:
        out.write(f"member: {m}\n")
    out.write("\n")
