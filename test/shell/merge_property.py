#!/usr/bin/python3
"""Property test of identity resolution: random sequences of upsert_customer (by identities in several
spellings, or by a profile id, old or merged), merge_customers, unmerge, erase_customer and re-ingest over a
small cast of people.  The model knows which person each input came from and which profile each input was
for; after every step the database must agree:

  - every identity points to a live customer, namely the one its profile (the profile whose input brought
    it) belongs to now; no identity is lost, none is left over;
  - each live customer's contact fields and identities belong to the people of its own profiles;
  - a customer of one profile (never merged, or unmerged again) has exactly that profile's latest input.

  usage: merge_property.py [--seed N ...] [--steps N] [--seeds N (random ones)]   (needs PGHOST/PGPORT/PGUSER; a database is
  created and dropped).  Prints the seed and the last steps on failure and exits 1.
"""
import argparse
import json
import os
import random
import sys
import time

import psycopg2

DB = 'ecrm_merge_property'
FIELDS = ('first_name', 'last_name', 'email', 'phone')

PEOPLE = [
    # first names (spellings), last name, emails (two per person), phone (national part after +44 1632 960)
    (['Anna', 'Ana', 'ANNA'], 'Berg', ['anna.berg@example.org', 'aberg@mail.example.com'], '101'),
    (['Bob', 'Robert', 'Bobby'], 'Ray', ['bob.ray@example.org', 'bray@mail.example.com'], '102'),
    (['Cato', 'Cat'], 'Poe', ['cato.poe@example.org', 'cpoe@mail.example.com'], '103'),
    (['Dana', 'Dina'], 'Orr', ['dana.orr@example.org', 'dorr@mail.example.com'], '104'),
    (['Eve', 'Eva'], 'Fox', ['eve.fox@example.org', 'efox@mail.example.com'], '105'),
    (['Finn', 'Fin'], 'Gale', ['finn.gale@example.org', 'fgale@mail.example.com'], '106'),
    (['Gus', 'Gustav'], 'Holm', ['gus.holm@example.org', 'gholm@mail.example.com'], '107'),
    (['Hana', 'Hanna'], 'Ito', ['hana.ito@example.org', 'hito@mail.example.com'], '108'),
]


def email_variant(rng, e):
    local, dom = e.split('@')
    v = rng.choice([local, local.title(), local.upper()]) + '@' + rng.choice([dom, dom.upper(), dom.title()])
    return rng.choice(['', ' ', '  ']) + v + rng.choice(['', ' '])


def phone_variant(rng, n):
    return rng.choice(['+44 1632 960 %s', '+441632960%s', '0044 1632 960%s', '+44 (0)1632 960 %s']) % n


class Failure(Exception):
    pass


class Run:
    def __init__(self, conn, seed, steps):
        self.c = conn
        self.cur = conn.cursor()
        self.rng = random.Random(seed)
        self.seed = seed
        self.steps = steps
        self.log = []
        self.person = {}       # profile id -> person index
        self.record = {}       # profile id -> {field: value}: that profile's latest input
        self.member = {}       # (kind, value) -> profile whose input brought it
        self.erased = set()
        self.norms = {}
        self.timing = {}
        self.value_person = {}
        self.name_person = {}
        for i, (firsts, last, emails, phone) in enumerate(PEOPLE):
            for e in emails:
                self.value_person[('email', e)] = i
            self.value_person[('phone', '+441632960' + phone)] = i
            for f in firsts:
                self.name_person[f] = i
            self.name_person[last] = i

    def q(self, sql, args=None):
        self.cur.execute(sql, args)
        return self.cur.fetchall() if self.cur.description else None

    def load(self):
        self.status = {}
        self.into = {}
        for cid, st, mi in self.q('SELECT customer_id, status, merged_into FROM ecrm.customer_profile'):
            self.status[cid] = st
            self.into[cid] = mi

    def resolve(self, cid):
        hops = 0
        while self.status[cid] == 'merged':
            cid = self.into[cid]
            hops += 1
            if hops > 1000:
                raise Failure('merge chain loops at %s' % cid)
        return cid

    def norm(self, kind, raw):
        if (kind, raw) not in self.norms:
            fn = 'normalize_email' if kind == 'email' else 'normalize_phone'
            self.norms[(kind, raw)] = self.q('SELECT ecrm.%s(%%s)' % fn, (raw,))[0][0]
        return self.norms[(kind, raw)]

    # ---- operations -------------------------------------------------------------------------------------
    def op_upsert(self):
        p = self.rng.randrange(len(PEOPLE))
        firsts, last, emails, phone = PEOPLE[p]
        doc = {}
        idents = []                                  # (kind, value) in the order upsert_customer reads them
        pick = [e for e in emails if self.rng.random() < 0.5]
        use_phone = self.rng.random() < 0.5
        if not pick and not use_phone:
            pick = [self.rng.choice(emails)]
        if pick:
            doc['email'] = email_variant(self.rng, pick[0])
            idents.append(('email', pick[0]))
        if use_phone:
            doc['phone'] = phone_variant(self.rng, phone)
            idents.append(('phone', '+441632960' + phone))
        if len(pick) > 1:
            doc['identities'] = [{'kind': 'email', 'value': email_variant(self.rng, pick[1])}]
            idents.append(('email', pick[1]))
        if self.rng.random() < 0.6:
            doc['first_name'] = self.rng.choice(firsts)
        if self.rng.random() < 0.4:
            doc['last_name'] = last
        named = None
        own = [cid for cid, pp in self.person.items() if pp == p and cid not in self.erased]
        if own and self.rng.random() < 0.15:
            named = self.rng.choice(own)
            doc['customer_id'] = named

        # what the model expects
        matched = [i for i in idents if i in self.member]
        conflict = False
        if named is not None:
            target = self.resolve(named)
            behalf = named
            conflict = any(self.resolve(self.member[i]) != target for i in matched)
        elif matched:
            lives = {self.resolve(self.member[i]) for i in matched}
            conflict = len(lives) > 1
            target = lives.pop()
            behalf = self.member[matched[0]]
        else:
            target = behalf = None
        self.log.append('upsert person %d %s' % (p, json.dumps(doc)))
        try:
            got = self.q('SELECT ecrm.upsert_customer(%s)', (json.dumps(doc),))[0][0]
        except psycopg2.Error as e:
            self.c.rollback()
            if conflict and e.pgcode == '23505':
                self.log[-1] += ' -> 23505 as expected'
                return
            raise Failure('upsert failed: %s %s' % (e.pgcode, e.pgerror))
        self.c.commit()
        if conflict:
            raise Failure('upsert succeeded (customer %s) although its identities belong to different customers' % got)
        self.log[-1] += ' -> %s' % got
        if target is None:
            behalf = target = got
            self.person[got] = p
            self.record[got] = {}
        elif got != target:
            raise Failure('upsert returned %s, expected the live customer %s' % (got, target))
        rec = self.record[behalf]
        for f in ('first_name', 'last_name'):
            if f in doc:
                rec[f] = doc[f]
        if 'email' in doc:
            rec['email'] = doc['email'].strip()
        if 'phone' in doc:
            rec['phone'] = '+441632960' + phone
        for i in idents:
            self.member.setdefault(i, behalf)

    def live(self):
        return sorted(c for c, s in self.status.items() if s == 'active')

    def op_merge(self):
        live = self.live()
        if len(live) < 2:
            return
        a, b = self.rng.sample(live, 2)
        self.log.append('merge %s %s' % (a, b))
        mid = self.q('SELECT ecrm.merge_customers(ARRAY[%s, %s]::bigint[])', (a, b))[0][0]
        self.c.commit()
        self.log[-1] += ' -> merge %s' % mid

    def op_unmerge(self):
        ids = [r[0] for r in self.q('SELECT merge_id FROM ecrm.merge_event WHERE unmerged_at IS NULL ORDER BY 1')]
        if not ids:
            return
        mid = self.rng.choice(ids)
        self.log.append('unmerge %s' % mid)
        got = self.q('SELECT ecrm.unmerge(%s, cascade => true)', (mid,))[0][0]
        self.c.commit()
        self.log[-1] += ' -> restored %s' % got

    def op_erase(self):
        live = self.live()
        if not live:
            return
        c = self.rng.choice(live)
        self.log.append('erase %s' % c)
        self.q("SELECT ecrm.erase_customer(%s, 'property-test')", (c,))
        self.c.commit()
        fam = {p for p in self.status if self.status[p] != 'erased' and self.resolve(p) == c}
        self.erased |= fam
        for i in [i for i, m in self.member.items() if m in fam]:
            del self.member[i]

    # ---- the invariants ---------------------------------------------------------------------------------
    def check(self):
        self.load()
        for p in self.erased:
            if self.status.get(p) != 'erased':
                raise Failure('profile %s was erased but is %s' % (p, self.status.get(p)))
        idents = {(k, v): c for k, v, c in self.q('SELECT kind::text, value, customer_id FROM ecrm.identity')}
        if set(idents) != set(self.member):
            raise Failure('identities differ from the model: extra %s, missing %s'
                          % (sorted(set(idents) - set(self.member)), sorted(set(self.member) - set(idents))))
        for i, c in idents.items():
            if self.status[c] != 'active':
                raise Failure('identity %s points to customer %s, which is %s' % (i, c, self.status[c]))
            want = self.resolve(self.member[i])
            if c != want:
                raise Failure('identity %s is on customer %s, but its profile %s belongs to customer %s'
                              % (i, c, self.member[i], want))
        groups = {}
        for p in self.status:
            if self.status[p] != 'erased':
                groups.setdefault(self.resolve(p), set()).add(p)
        rows = self.q('SELECT customer_id, first_name, last_name, email, phone FROM ecrm.customer_profile '
                      "WHERE status = 'active'")
        for cid, first, last, email, phone in rows:
            people = {self.person[p] for p in groups[cid]}
            owners = []
            for f, v in (('first_name', first), ('last_name', last)):
                if v is not None:
                    owners.append((f, v, self.name_person[v]))
            if email is not None:
                owners.append(('email', email, self.value_person[('email', self.norm('email', email))]))
            if phone is not None:
                owners.append(('phone', phone, self.value_person[('phone', phone)]))
            for i, c in idents.items():
                if c == cid:
                    owners.append(('identity', i[1], self.value_person[i]))
            for f, v, who in owners:
                if who not in people:
                    raise Failure('customer %s (profiles %s of people %s) has %s %r of person %d'
                                  % (cid, sorted(groups[cid]), sorted(people), f, v, who))
            if groups[cid] == {cid}:
                have = {'first_name': first, 'last_name': last, 'email': email, 'phone': phone}
                want = {f: self.record[cid].get(f) for f in FIELDS}
                if have != want:
                    raise Failure('customer %s of one profile has %s, but its input was %s' % (cid, have, want))

    def run(self):
        ops = [(self.op_upsert, 50), (self.op_merge, 20), (self.op_unmerge, 22), (self.op_erase, 3)]
        self.load()
        for step in range(self.steps):
            r = self.rng.uniform(0, sum(w for _, w in ops))
            for op, w in ops:
                r -= w
                if r <= 0:
                    break
            t0 = time.time()
            op()
            self.timing[op.__name__] = self.timing.get(op.__name__, 0) + time.time() - t0
            self.load()
            self.check()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int, action='append', help='a seed to run (repeatable)')
    ap.add_argument('--seeds', type=int, default=1)
    ap.add_argument('--steps', type=int, default=300)
    a = ap.parse_args()
    seeds = a.seed if a.seed else [random.randrange(1 << 30) for _ in range(a.seeds)]
    admin = psycopg2.connect(dbname='postgres')
    admin.autocommit = True
    failed = 0
    for seed in seeds:
        with admin.cursor() as c:
            c.execute('DROP DATABASE IF EXISTS ' + DB)
            c.execute('CREATE DATABASE ' + DB)
        conn = psycopg2.connect(dbname=DB, options='-c ecrm.realtime_resolution=off -c client_min_messages=warning')
        conn.cursor().execute('CREATE EXTENSION ecrm')
        if os.environ.get('ECRM_PROPERTY_SETUP'):        # e.g. break a function to see the test catch it
            conn.cursor().execute(os.environ['ECRM_PROPERTY_SETUP'])
        conn.commit()
        r = Run(conn, seed, a.steps)
        try:
            r.run()
            print('ok: seed %d, %d steps, %d profiles, %d merges (seconds: %s)' % (
                seed, a.steps, len(r.status), r.q('SELECT count(*) FROM ecrm.merge_event')[0][0],
                ', '.join('%s %.1f' % (k[3:], v) for k, v in sorted(r.timing.items()))))
        except (Failure, psycopg2.Error) as e:
            failed += 1
            print('FAIL: seed %d after %d steps: %s' % (seed, len(r.log), e))
            for line in r.log[-12:]:
                print('    ' + line)
            print('  reproduce: %s --seed %d --steps %d' % (sys.argv[0], seed, a.steps))
        conn.close()
    with admin.cursor() as c:
        c.execute('DROP DATABASE IF EXISTS ' + DB)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
